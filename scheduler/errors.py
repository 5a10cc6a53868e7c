"""The exception tree: configuration problems vs provider failures (transient vs permanent)."""

from __future__ import annotations

from dataclasses import dataclass


class RecschedError(Exception):
    """Base of every error recsched raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration file, located as precisely as we can."""

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    path: str  # YAML key path, e.g. "recordings[1].chunk"
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(RecschedError):
    """The configuration is invalid; `problems` lists every problem found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))


class StoreError(RecschedError):
    """The ledger database could not be read or written."""


class ProviderError(RecschedError):
    """A provider call did not succeed."""

    def __init__(self, message: str, *, ret: int | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.ret = ret
        self.status = status


class PermanentError(ProviderError):
    """The provider refused the call; sending it again would be refused again. Do not retry."""


class TransientError(ProviderError):
    """The call may succeed if tried again later (5xx, connection refused, timeout)."""

    #: True when the request may have reached the provider and been acted upon, so a retry could
    #: create a duplicate task (timeout or connection dropped after sending).
    outcome_unknown: bool = False


class OutcomeUnknown(TransientError):
    """The request was sent but no answer came back: the provider may have created the task."""

    outcome_unknown = True
