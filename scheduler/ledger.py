"""The call ledger: what was claimed, sent and answered, keyed by idempotency key.

The ledger is the only guard against duplicate recording tasks: the provider has no
idempotency token and no way to ask whether a timed-out call created a task. A key can be
claimed once; a second claim fails. This module holds the interface and an in-memory store;
a durable store (SQLite/PostgreSQL) implements the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class State(StrEnum):
    CLAIMED = "claimed"  # reserved for sending; nothing on the wire yet
    SENT = "sent"  # on the wire, answer not known yet
    OK = "ok"
    FAILED = "failed"
    MISSED = "missed"  # its chunk was over before it could be sent
    SUPPRESSED = "suppressed"  # another call hit the same target inside the duplicate window


FINAL = frozenset({State.OK, State.FAILED, State.MISSED, State.SUPPRESSED})


@dataclass(frozen=True)
class Entry:
    key: str
    state: State
    attempts: int = 0
    task_id: str = ""
    detail: str = ""
    updated_at: datetime | None = None


class Ledger(Protocol):
    async def claim(self, key: str, now: datetime) -> bool:
        """Reserve `key` for sending; False if it was ever claimed before."""

    async def update(
        self,
        key: str,
        state: State,
        now: datetime,
        *,
        attempts: int | None = None,
        task_id: str = "",
        detail: str = "",
    ) -> None: ...

    async def get(self, key: str) -> Entry | None: ...


class MemoryLedger:
    """Ledger kept in this process only (lost on restart)."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    async def claim(self, key: str, now: datetime) -> bool:
        if key in self._entries:
            return False
        self._entries[key] = Entry(key, State.CLAIMED, updated_at=now)
        return True

    async def update(
        self,
        key: str,
        state: State,
        now: datetime,
        *,
        attempts: int | None = None,
        task_id: str = "",
        detail: str = "",
    ) -> None:
        entry = self._entries.get(key) or Entry(key, state)
        self._entries[key] = replace(
            entry,
            state=state,
            attempts=entry.attempts if attempts is None else attempts,
            task_id=task_id or entry.task_id,
            detail=detail,
            updated_at=now,
        )

    async def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())
