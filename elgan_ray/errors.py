"""User errors: one line naming the file, the line or key, and the rule; exit status 2, no traceback."""

from __future__ import annotations

import reprlib
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

MAX_MESSAGE_CHARS = 2000  # an error line never grows past this, whatever value or path it quotes
QUOTE_CHARS = 60  # a quoted value (quoted()) shows at most about this many characters

_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxlist, _QUOTE.maxtuple, _QUOTE.maxdict, _QUOTE.maxset = 2, 4, 4, 4, 4
_QUOTE.maxstring = _QUOTE.maxother = _QUOTE.maxlong = QUOTE_CHARS


def quoted(value: object) -> str:
    """repr(value) for an error message, bounded: nested and long values are cut short with '...'.

    A plain repr of a YAML 'billion laughs' value (a few hundred bytes of aliases) would need gigabytes.
    """
    try:
        return _QUOTE.repr(value)
    except ValueError:  # an integer past Python's 4300-digit limit for str()
        return f"<an integer of {value.bit_length()} bits>" if isinstance(value, int) else "<a value>"


class UserError(Exception):
    """Bad input from the user (a file, a flag, a key): reported as one line, never as a traceback."""

    def __init__(self, source: str | Path, rule: str, line: int | None = None, key: str | None = None):
        self.source = str(source)
        self.rule = rule
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __reduce__(self):
        # Pickled whole: Ray sends an error raised in a Train worker back to the trial that launched it, and a
        # UserError that could not be rebuilt there would look like a lost worker (and be retried).
        return (UserError, (self.source, self.rule, self.line, self.key))

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
        if self.key is not None:  # a key from a user's file may be long: cut short, so that the rule still shows
            key = self.key if len(self.key) <= QUOTE_CHARS else self.key[: QUOTE_CHARS - 3] + "..."
            where += f": key '{key}'"
        return _one_line(f"{where}: {self.rule}")


def _one_line(text: str) -> str:
    # A path or a value may hold a newline; the contract is one line on stderr, of a bounded length.
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup (finally, except BaseException) runs as for Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def handle_sigterm() -> None:
    """Make SIGTERM raise Terminated in the main thread (run_cli's handler), again after a library replaced it:
    ray.init installs a handler of its own, which ends the process from inside whatever it interrupts."""
    signal.signal(signal.SIGTERM, _terminate)


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run a command's main; a UserError becomes one line on stderr and exit status 2.

    SIGTERM (a scheduler, `kill`, a closing terminal) is turned into an exception like Ctrl-C, so that
    staging folders and temporary files are removed instead of left behind.
    """
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    if main_thread:
        handle_sigterm()
    try:
        return main(argv) or 0
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
