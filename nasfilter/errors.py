"""Typed errors. The CLI turns each into one line on stderr and its exit code.

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations


class NasfilterError(Exception):
    """Base class: a user-facing problem with a one-line message."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class UsageError(NasfilterError):
    """Bad option values or combinations."""

    exit_code = 2


class UnknownSpaceError(UsageError):
    pass


class UnknownMetricError(UsageError):
    pass


class InvalidArchitectureError(UsageError):
    pass


class SampleSizeError(UsageError):
    pass


class UnknownRunError(UsageError):
    """A run id that is not in the database (a usage error: exit 2)."""


class StoreError(NasfilterError):
    """The database cannot be opened, is locked, or is from a newer nasfilter."""

    exit_code = 3


class RunNotFoundError(StoreError):
    pass


class DataError(NasfilterError):
    """Input data (images, benchmark files, truth tables) missing or corrupt."""

    exit_code = 4


class DeviceError(NasfilterError):
    """Device selection or out-of-memory problems."""

    exit_code = 5


class RunInterrupted(NasfilterError):
    """A run stopped by Ctrl-C or SIGTERM; what was committed is kept."""

    exit_code = 130
