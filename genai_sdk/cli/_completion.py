"""``genai completion SHELL``: bash, zsh and fish completion scripts made from the parser itself."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence

SHELLS = ("bash", "zsh", "fish")


def _command_tree(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], list[argparse.Action], dict[str, str]]]:
    """Every command of the parser, depth first: its path of names, its flags, its sub-commands with their help."""
    flags: list[argparse.Action] = []
    subcommands: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                subcommands[name] = helps.get(name, "")
                yield from _command_tree(sub, (*path, name))
        elif action.option_strings:
            flags.append(action)
        elif action.choices:  # a positional with a fixed set of values completes like sub-commands
            subcommands.update(dict.fromkeys(map(str, action.choices), action.help or ""))
    yield path, flags, subcommands


def _subparsers(parser: argparse.ArgumentParser, path: Sequence[str]) -> list[tuple[str, argparse.ArgumentParser]]:
    """The sub-commands (name and parser) of the command at ``path``."""
    for name in path:
        parser = dict(_subparsers(parser, ()))[name]
    return [
        (name, sub)
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
    ]


def _completion_table(parser: argparse.ArgumentParser) -> tuple[list[str], list[str], list[str], list[str]]:
    """Shell ``case`` arms, shared by bash and zsh: moving into a sub-command, the values of a flag with choices,
    the flags of a command, the sub-commands of a command. Each arm's body is ``WORDS``, filled in per shell."""
    moves, choices, flags, subcommands = [], [], [], []
    for path, actions, subs in _command_tree(parser):
        key = " ".join(path)
        nested = {name for name, sub in _subparsers(parser, path)}
        moves += [f'"{key}/{name}") cmd="{" ".join((*path, name))}" ;;' for name in subs if name in nested]
        for action in actions:
            if action.choices:
                values = " ".join(str(choice) for choice in action.choices)
                choices += [f'"{key}/{flag}") WORDS {values} ;;' for flag in action.option_strings]
        flags.append(f'"{key}") WORDS {" ".join(flag for action in actions for flag in action.option_strings)} ;;')
        if subs:
            subcommands.append(f'"{key}") WORDS {" ".join(subs)} ;;')
    return moves, choices, flags, subcommands


def _case(arms: Sequence[str], body: Callable[[str], str], indent: str) -> str:
    """``case`` arms whose body is made from the arm's words."""
    lines = []
    for arm in arms:
        if ") WORDS " in arm:
            label, words = arm.split(") WORDS ", 1)
            lines.append(f"{indent}{label}) {body(words.removesuffix(' ;;'))} ;;")
        else:
            lines.append(indent + arm)
    return "\n".join(lines)


def bash_completion(parser: argparse.ArgumentParser) -> str:
    moves, choices, flags, subcommands = _completion_table(parser)
    words = lambda values: f'words="{values}"'  # noqa: E731
    return f"""# bash completion for genai: eval "$(genai completion bash)" in ~/.bashrc
_genai() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" cmd="" words="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "$cmd/${{COMP_WORDS[i]}}" in
{_case(moves, words, " " * 12)}
        esac
    done
    case "$cmd/$prev" in
{_case(choices, words, " " * 8)}
    esac
    if [[ -z "$words" && "$cur" == -* ]]; then
        case "$cmd" in
{_case(flags, words, " " * 12)}
        esac
    elif [[ -z "$words" ]]; then
        case "$cmd" in
{_case(subcommands, words, " " * 12)}
        esac
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _genai genai
"""


def zsh_completion(parser: argparse.ArgumentParser) -> str:
    moves, choices, flags, subcommands = _completion_table(parser)
    add = lambda values: f"compadd -- {values}; return"  # noqa: E731
    return f"""#compdef genai
# zsh completion for genai: save as _genai in a folder of $fpath, or eval "$(genai completion zsh)" after compinit
_genai() {{
    local cmd="" i
    for ((i = 2; i < CURRENT; i++)); do
        case "$cmd/${{words[i]}}" in
{_case(moves, lambda values: values, " " * 12)}
        esac
    done
    case "$cmd/${{words[CURRENT-1]}}" in
{_case(choices, add, " " * 8)}
    esac
    if [[ "${{words[CURRENT]}}" == -* ]]; then
        case "$cmd" in
{_case(flags, add, " " * 12)}
        esac
    else
        case "$cmd" in
{_case(subcommands, add, " " * 12)}
        esac
        _files
    fi
}}
if [[ "${{funcstack[1]}}" == "_genai" ]]; then
    _genai "$@"
else
    compdef _genai genai
fi
"""


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_completion(parser: argparse.ArgumentParser) -> str:
    moves, _, _, _ = _completion_table(parser)
    switch = "\n".join(
        f"            case {arm.split(')', 1)[0]}\n                set cmd {arm.split('cmd=', 1)[1].removesuffix(' ;;')}"
        for arm in moves
    )
    lines = [
        "# fish completion for genai: genai completion fish > ~/.config/fish/completions/genai.fish",
        "function __genai_command",
        '    set -l cmd ""',
        "    for word in (commandline -opc)[2..-1]",
        '        switch "$cmd/$word"',
        switch,
        "        end",
        "    end",
        '    echo "$cmd"',
        "end",
        "function __genai_at",
        "    set -l cmd (__genai_command)",
        '    test "$cmd" = "$argv[1]"',
        "end",
    ]
    for path, actions, subs in _command_tree(parser):
        at = "-n " + _fish_quote(f'__genai_at "{" ".join(path)}"')
        for name, about in subs.items():
            lines.append(f"complete -c genai {at} -f -a {_fish_quote(name)} -d {_fish_quote(about)}")
        for action in actions:
            spec = " ".join(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}" for flag in action.option_strings)
            if action.choices:
                spec += " -x -a " + _fish_quote(" ".join(str(choice) for choice in action.choices))
            elif action.nargs != 0:
                spec += " -r"
            lines.append(f"complete -c genai {at} {spec} -d {_fish_quote(action.help or '')}")
    return "\n".join(lines) + "\n"


def cmd_completion(args: argparse.Namespace) -> int:
    """``genai completion SHELL``: a completion script made from the parser itself, so it never falls behind."""
    from . import build_parser  # here, not at the top: the package imports this module to build its parser

    write = {"bash": bash_completion, "zsh": zsh_completion, "fish": fish_completion}[args.shell]
    sys.stdout.write(write(build_parser()))
    return 0
