"""User errors: one line naming the file, the line or key, and the rule; exit status 2, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


class UserError(Exception):
    """Bad input from the user (a file, a flag, a key): reported as one line, never as a traceback."""

    def __init__(self, source: str | Path, rule: str, line: int | None = None, key: str | None = None):
        self.source = str(source)
        self.rule = rule
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
        if self.key is not None:
            where += f": key '{self.key}'"
        return f"{where}: {self.rule}"


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run a command's main; a UserError becomes one line on stderr and exit status 2."""
    try:
        return main(argv) or 0
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
