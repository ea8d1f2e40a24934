"""``python -m genai_sdk.cli``: the ``genai`` command."""

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
