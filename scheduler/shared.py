"""The shared ledger: several recsched instances, one PostgreSQL database, no duplicates.

Every instance plans the same calls; the database decides who sends each one. A claim is a row
inserted under the call's unique key, with an owner and a lease measured on the database's
clock (host clocks may disagree). The 3 s duplicate rule is a row per provider target, checked
in the same transaction. Marking a call `sent` is a compare-and-swap on the owner, so an
instance that was paused (SIGSTOP, a frozen VM) and lost its lease cannot send afterwards. A
peer takes over an unsettled call only after its lease has expired; a call found `sent` is then
handled like one interrupted by a crash (uncertain, not re-sent unless `resend_after_crash`).

Unlike the single-instance ledger there is no in-memory authority: every read and decision
goes to the database. If the database is unreachable, calls are not sent (another instance may
own them); `call.failed` says why.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from scheduler.calls import Call
from scheduler.config import DUPLICATE_WINDOW
from scheduler.ledger import Entry, State, advance
from scheduler.logs import get_logger
from scheduler.store import Store

log = get_logger("recsched.shared")


def default_instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class SharedLedger:
    def __init__(
        self, store: Store, *, url: str, owner: str, lease: timedelta, config_hash: str
    ) -> None:
        self.store = store
        self.url = url
        self.owner = owner
        self.lease_s = lease.total_seconds()
        self.config_hash = config_hash
        self._divergent: frozenset[str] = frozenset()

    @classmethod
    async def open(
        cls, url: str, *, owner: str, lease: timedelta, config_hash: str
    ) -> SharedLedger:
        return cls(
            await Store.open(url), url=url, owner=owner, lease=lease, config_hash=config_hash
        )

    @property
    def healthy(self) -> bool:
        """The database answers or the call fails: there is no degraded mode to report."""
        return True

    def start(self) -> None:
        return None

    async def claim(self, call: Call, now: datetime) -> bool:
        entry = Entry.claimed(call, now, owner=self.owner)
        inserted, previous = await self.store.claim_leased(
            entry, self.lease_s, DUPLICATE_WINDOW.total_seconds()
        )
        return inserted and previous is None

    async def get(self, key: str) -> Entry | None:
        return await self.store.get(key)

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
        entry = await self.store.get(key)
        if entry is None:
            raise KeyError(key)
        await self.store.settle(
            advance(
                entry,
                state,
                now,
                attempts=attempts,
                task_id=task_id,
                detail=detail,
                sent_at=sent_at,
                uncertain=uncertain,
            )
        )

    async def mark_sent(
        self, key: str, now: datetime, *, attempts: int, uncertain: bool, hold_s: float
    ) -> bool:
        entry = await self.store.get(key)
        if entry is None:
            return False
        sent = advance(entry, State.SENT, now, attempts=attempts, sent_at=now, uncertain=uncertain)
        return await self.store.mark_sent(sent, self.owner, max(hold_s, self.lease_s))

    async def peer_lease(self, key: str) -> tuple[str, float] | None:
        held = await self.store.lease_left(key)
        if held is None or held[0] == self.owner or held[1] <= 0:
            return None
        return held

    async def take_over(self, key: str) -> bool:
        return await self.store.take_over(key, self.owner, self.lease_s)

    async def window(self, recording: str, window_start: datetime) -> list[Entry]:
        return await self.store.window(recording, window_start)

    async def unsettled(self, before: datetime) -> list[Entry]:
        return await self.store.unsettled(before)

    async def open_tasks(self, actions: Collection[str], now: datetime) -> list[Entry]:
        return await self.store.open_tasks(actions, now)

    async def heartbeat(self, now: datetime) -> None:
        """Record this instance as alive; warn loudly when peers run another config."""
        peers = await self.store.beat(
            self.owner, socket.gethostname(), os.getpid(), self.config_hash
        )
        await self.store.write([], {"last_seen": str(now.timestamp())})
        divergent = frozenset(
            f"{row.id} ({row.config_hash[:12]})"
            for row in peers
            if row.id != self.owner and row.config_hash != self.config_hash
        )
        if divergent and divergent != self._divergent:
            log.error(
                "config.divergent",
                instance=self.owner,
                config_hash=self.config_hash[:12],
                peers=sorted(divergent),
                message="instances sharing this ledger run different configurations: each "
                "plans different calls, so some may be missed or recorded twice. Deploy the "
                "same YAML everywhere",
            )
        self._divergent = divergent

    async def last_seen(self) -> datetime | None:
        value = await self.store.get_meta("last_seen")
        return None if value is None else datetime.fromtimestamp(float(value), UTC)

    async def prune(self, now: datetime, retention: timedelta) -> None:
        await self.store.prune(now - retention)

    async def close(self) -> None:
        await self.store.close()
