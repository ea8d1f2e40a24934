"""Lines of the core at one or more commits: physical lines, and lines of code (Python's tokenizer: no blank lines,
comments or docstrings). The core: every module directly in ``genai_sdk/`` but the CLI (``cli.py``, the package
``cli/`` since, left out as well), all of ``genai_sdk/credits/``, and ``providers/{__init__,base,_options,_specs}.py``.

    python benchmarks/core_lines.py ef775fe HEAD
"""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import tokenize

PROVIDERS_CORE = {"__init__.py", "base.py", "_options.py", "_specs.py"}
NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


def core_files(rev: str) -> list[str]:
    listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "genai_sdk"], capture_output=True, text=True,
                            check=True).stdout.split()  # fmt: skip
    keep = []
    for name in listed:
        parts = name.split("/")
        if not name.endswith(".py"):
            continue
        if (len(parts) == 2 and parts[1] != "cli.py") or (len(parts) == 3 and parts[1] == "credits"):
            keep.append(name)
        elif len(parts) == 3 and parts[1] == "providers" and parts[2] in PROVIDERS_CORE:
            keep.append(name)
    return keep


def code_lines(source: str) -> int:
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in NOT_CODE:
            lines.update(n for n in range(token.start[0], token.end[0] + 1) if n not in docstrings)
    return len(lines)


def main() -> None:
    for rev in sys.argv[1:] or ["HEAD"]:
        physical = code = 0
        for name in core_files(rev):
            source = subprocess.run(["git", "show", f"{rev}:{name}"], capture_output=True, text=True, check=True).stdout
            physical += len(source.splitlines())
            code += code_lines(source)
        print(f"{rev}: {physical:,} lines, {code:,} lines of code")


if __name__ == "__main__":
    main()
