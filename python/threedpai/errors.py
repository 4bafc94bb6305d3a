"""Exceptions. Each subclasses the stdlib class callers already catch."""

from __future__ import annotations


class ThreedpaiError(Exception):
    """Base class of threedpai's errors."""


class GcodeParseError(ThreedpaiError, ValueError):
    """G-code that cannot be read, or (in strict mode) a line with a problem.

    ``file`` and ``line`` name where, when known; ``code`` is the diagnostic's short code.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, code: str | None = None):
        where = ":".join(str(p) for p in (file, line) if p is not None)
        super().__init__(f"{where}: {message}" if where else message)
        self.file = file
        self.line = line
        self.code = code
