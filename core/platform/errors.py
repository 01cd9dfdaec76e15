"""The one shape of a user-facing error.

Every bad-input error the product raises carries an English ``msgid`` with ``{named}``
placeholders and its values, so the CLI prints ``str(e)`` and a page shows
``e.translated(_)`` in the operator's language — one message either way, no traceback.

Example:
    >>> e = UserError("Target must be at least {min}.", min=1)
    >>> str(e)
    'Target must be at least 1.'
    >>> e.translated(lambda s: s.replace("Target must be at least", "Target minimal"))
    'Target minimal 1.'
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, NoReturn


class UserError(ValueError):
    def __init__(self, msgid: str, **args: Any):
        self.msgid = msgid
        self.args_ = args
        super().__init__(msgid.format(**args))

    def translated(self, _: Callable[[str], str]) -> str:
        return _(self.msgid).format(**self.args_)


class CliParser(argparse.ArgumentParser):
    """argparse that reports bad input as ONE line on stderr and exit code 2 (the default
    prints the whole usage block first)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)
