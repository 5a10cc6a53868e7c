"""The call ledger: what was claimed, sent and answered, keyed by idempotency key.

The ledger is the only guard against duplicate recording tasks: the provider has no
idempotency token and no way to ask whether a timed-out call created a task. A key can be
claimed once; a second claim fails. This module holds the interface and the in-memory store
(used by --dry-run and as the authoritative copy inside `DurableLedger`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from scheduler.calls import Call


class State(StrEnum):
    CLAIMED = "claimed"  # reserved for sending; nothing on the wire yet
    SENT = "sent"  # (possibly) on the wire, answer not known yet
    OK = "ok"
    FAILED = "failed"
    MISSED = "missed"  # its chunk was over before it could be sent
    SUPPRESSED = "suppressed"  # another call recorded the same span of the target < 3 s ago
    UNCERTAIN = "uncertain"  # sent, never answered (crash mid-request): a task may exist


FINAL = frozenset({State.OK, State.FAILED, State.MISSED, State.SUPPRESSED, State.UNCERTAIN})
PROBLEMS = frozenset({State.FAILED, State.MISSED, State.UNCERTAIN})


@dataclass(frozen=True)
class Entry:
    key: str
    recording: str
    provider: str
    action: str
    target: str
    chunk: int
    chunks: int
    window_start: datetime
    window_end: datetime
    span_start: datetime
    span_end: datetime
    scheduled_at: datetime
    state: State
    attempts: int = 0
    task_id: str = ""
    detail: str = ""
    sent_at: datetime | None = None  # when the latest attempt went on the wire
    uncertain: bool = False  # some attempt's outcome was unknown: a duplicate task may exist
    updated_at: datetime | None = None
    owner: str = ""  # the instance that claimed it (PostgreSQL mode)

    @classmethod
    def claimed(cls, call: Call, now: datetime, owner: str = "") -> Entry:
        return cls(
            key=call.key,
            recording=call.recording,
            provider=call.provider,
            action=call.action,
            target=call.target,
            chunk=call.chunk,
            chunks=call.chunks,
            window_start=call.window_start,
            window_end=call.window_end,
            span_start=call.start,
            span_end=call.deadline,
            scheduled_at=call.at,
            state=State.CLAIMED,
            updated_at=now,
            owner=owner,
        )


def advance(
    entry: Entry,
    state: State,
    now: datetime,
    *,
    attempts: int | None = None,
    task_id: str = "",
    detail: str = "",
    sent_at: datetime | None = None,
    uncertain: bool = False,
) -> Entry:
    """`entry` moved to `state`; fields not given keep their value, `uncertain` only turns on.

    Equal to `dataclasses.replace(entry, ...)` (tests/test_ledger_advance.py), at a sixth of its
    cost: a call advances two or three times at the instant of a burst. The new entry's fields
    are written into its `__dict__`, as `replace` would through `__init__`; Entry has no
    `__post_init__` to skip."""
    moved = object.__new__(Entry)
    fields = moved.__dict__
    fields.update(entry.__dict__)
    fields["state"] = state
    if attempts is not None:
        fields["attempts"] = attempts
    if task_id:
        fields["task_id"] = task_id
    if detail:
        fields["detail"] = detail
    if sent_at:
        fields["sent_at"] = sent_at
    if uncertain:
        fields["uncertain"] = True
    fields["updated_at"] = now
    return moved


class Ledger(Protocol):
    #: This instance's id in a shared ledger ("" when the ledger has a single owner).
    owner: str

    async def claim(self, call: Call, now: datetime) -> bool:
        """Reserve `call.key` for sending; False if it was ever claimed before."""

    async def update(
        self,
        key: str,
        state: State,
        now: datetime,
        *,
        attempts: int | None = None,
        task_id: str = "",
        detail: str = "",
        sent_at: datetime | None = None,
        uncertain: bool = False,
    ) -> None: ...

    async def mark_sent(
        self, key: str, now: datetime, *, attempts: int, uncertain: bool, hold_s: float
    ) -> bool:
        """Record `sent` (durably, before the request exists); False if another instance has
        taken the call over meanwhile: then it must not be sent."""

    async def peer_lease(self, key: str) -> tuple[str, float] | None:
        """(peer, seconds left) while another live instance holds this unsettled call."""

    async def take_over(self, key: str) -> bool:
        """Become the owner of an unsettled call nobody holds any more."""

    async def get(self, key: str) -> Entry | None: ...

    async def window(self, recording: str, window_start: datetime) -> list[Entry]:
        """Every entry of one recording window."""

    async def unsettled(self, before: datetime) -> list[Entry]:
        """Claimed or sent entries whose span ended before `before` (left by a crash); a
        shared ledger leaves out those whose lease a live instance still holds."""

    async def open_tasks(self, actions: Collection[str], now: datetime) -> list[Entry]:
        """`ok` entries of `actions` with a task id whose span has not ended at `now` (the
        created tasks a reload or a restart may have to delete or stop), ordered by key."""

    async def heartbeat(self, now: datetime) -> None:
        """Record that this daemon was alive at `now` (recovery looks back to it)."""

    async def last_seen(self) -> datetime | None:
        """The latest heartbeat, or None on a first run."""

    async def prune(self, now: datetime, retention: timedelta) -> None:
        """Forget entries last updated more than `retention` before `now`."""

    @property
    def healthy(self) -> bool:
        """False while the ledger cannot be written (calls still fire from memory)."""

    async def close(self) -> None: ...


class MemoryLedger:
    """Ledger kept in this process only (lost on restart). It has no peers: it never waits on a
    lease and every takeover succeeds.

    Entries are also indexed by window (recording, window start): each window's close reads its
    entries, and when a large schedule's windows end together (1,000 at the top of an hour) a
    scan of every entry per window held the event loop for about a second (docs/benchmarks.md)."""

    owner = ""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._entries: dict[str, Entry] = {}
        #: (recording, window start) -> its keys, in the order of _entries (a dict as an ordered
        #: set): window() sorts by chunk, and a window's calls of one chunk keep that order.
        self._windows: dict[tuple[str, datetime], dict[str, None]] = {}
        self._last_seen: datetime | None = None
        for entry in entries:
            self.put(entry)

    def _keep(self, entries: dict[str, Entry]) -> None:
        """Keep only `entries` (a filtered copy of _entries), the window index with them."""
        self._entries = entries
        self._windows = {}
        for entry in entries.values():
            self._windows.setdefault((entry.recording, entry.window_start), {})[entry.key] = None

    @property
    def healthy(self) -> bool:
        return True

    async def unsettled(self, before: datetime) -> list[Entry]:
        states = (State.CLAIMED, State.SENT)
        return [e for e in self._entries.values() if e.span_end <= before and e.state in states]

    async def open_tasks(self, actions: Collection[str], now: datetime) -> list[Entry]:
        return sorted(
            (
                e
                for e in self._entries.values()
                if e.action in actions and e.state == State.OK and e.task_id and e.span_end > now
            ),
            key=lambda e: e.key,
        )

    async def heartbeat(self, now: datetime) -> None:
        self._last_seen = now

    async def last_seen(self) -> datetime | None:
        return self._last_seen

    async def prune(self, now: datetime, retention: timedelta) -> None:
        cutoff = now - retention
        self._keep(
            {k: e for k, e in self._entries.items() if (e.updated_at or e.scheduled_at) >= cutoff}
        )

    async def mark_sent(
        self, key: str, now: datetime, *, attempts: int, uncertain: bool, hold_s: float
    ) -> bool:
        self.update_now(key, State.SENT, now, attempts=attempts, sent_at=now, uncertain=uncertain)
        return True

    async def peer_lease(self, key: str) -> tuple[str, float] | None:
        return None

    async def take_over(self, key: str) -> bool:
        return True

    def put(self, entry: Entry) -> None:
        old = self._entries.get(entry.key)
        self._entries[entry.key] = entry
        window = (entry.recording, entry.window_start)
        if old is not None and (old.recording, old.window_start) != window:
            self._windows[old.recording, old.window_start].pop(old.key, None)
        self._windows.setdefault(window, {})[entry.key] = None

    async def claim(self, call: Call, now: datetime) -> bool:
        return self.claim_now(call, now)

    def claim_now(self, call: Call, now: datetime) -> bool:
        if call.key in self._entries:
            return False
        self.put(Entry.claimed(call, now))
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
        sent_at: datetime | None = None,
        uncertain: bool = False,
    ) -> None:
        self.update_now(
            key,
            state,
            now,
            attempts=attempts,
            task_id=task_id,
            detail=detail,
            sent_at=sent_at,
            uncertain=uncertain,
        )

    def update_now(
        self,
        key: str,
        state: State,
        now: datetime,
        *,
        attempts: int | None = None,
        task_id: str = "",
        detail: str = "",
        sent_at: datetime | None = None,
        uncertain: bool = False,
    ) -> Entry:
        entry = advance(
            self._entries[key],
            state,
            now,
            attempts=attempts,
            task_id=task_id,
            detail=detail,
            sent_at=sent_at,
            uncertain=uncertain,
        )
        self._entries[key] = entry
        return entry

    async def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    async def window(self, recording: str, window_start: datetime) -> list[Entry]:
        keys = self._windows.get((recording, window_start), ())
        return sorted((self._entries[k] for k in keys), key=lambda e: e.chunk)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def forget_before(self, moment: datetime) -> None:
        """Drop entries whose span ended before `moment` (they can no longer be planned)."""
        self._keep({k: e for k, e in self._entries.items() if e.span_end >= moment})

    async def close(self) -> None:
        return None
