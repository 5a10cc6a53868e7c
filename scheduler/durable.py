"""The durable ledger: the in-memory ledger, written through to the SQL store.

Memory is authoritative inside the process (one process per state directory, see lock.py); the
store makes it survive a crash. A claim is inserted into the store before the call is sent (the
database's unique key decides), and `sent` is written before the request goes out. When the
store fails (disk full, read-only, locked), recsched keeps firing from memory: it logs
`store.error` once per outage, queues the rows, retries every few seconds and logs
`store.recovered` when the queue is written. A recording is never skipped because of the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from scheduler.calls import Call
from scheduler.ledger import Entry, MemoryLedger, State
from scheduler.logs import get_logger
from scheduler.store import Store, StoreError

log = get_logger("recsched.store")
RETRY_SECONDS = 5.0
#: Entries whose span ended longer ago than this are not loaded at start (nothing can plan them).
LOAD_LOOKBACK = timedelta(days=2)


class DurableLedger:
    def __init__(self, store: Store, memory: MemoryLedger, *, url: str) -> None:
        self.store = store
        self.memory = memory
        self.url = url
        self._pending: dict[str, Entry] = {}
        self._claims: dict[str, Entry] = {}  # claims waiting for the next group commit
        self._claim_results: dict[str, bool] = {}  # key -> inserted (False: key existed)
        self._batch: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._meta: dict[str, str] = {}
        self._healthy = True
        self._lock = asyncio.Lock()
        self._retrier: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, now: datetime) -> DurableLedger:
        """Open the store and load what recovery needs; StoreError if it cannot be opened."""
        store = await Store.open(url)
        entries = await store.load(now - LOAD_LOOKBACK)
        return cls(store, MemoryLedger(entries), url=url)

    def start(self) -> None:
        self._retrier = asyncio.create_task(self._retry_forever(), name="recsched-store-retry")

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def claim(self, call: Call, now: datetime) -> bool:
        if not self.memory.claim_now(call, now):
            return False
        entry = await self.memory.get(call.key)
        assert entry is not None
        if not self._healthy:
            self._pending[call.key] = entry
            return True
        self._claims[call.key] = entry
        await self._commit()
        if self._claim_results.pop(call.key, True):  # True also when the store failed
            return True
        stored = await self._stored(call.key)  # the database has seen this key before
        if stored is not None:
            self.memory.put(stored)
        return False

    async def _commit(self) -> None:
        """Wait until everything queued so far is durable. Callers that arrive together share
        one transaction (group commit): a burst of calls costs a few fsyncs, not three each."""
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write_batches(), name="recsched-commit")
        await asyncio.shield(self._batch)

    async def _write_batches(self) -> None:
        while self._batch is not None:
            batch, self._batch = self._batch, None  # later callers join the next batch
            await self.flush(force=False)
            batch.set_result(None)

    async def _stored(self, key: str) -> Entry | None:
        try:
            async with self._lock:
                return await self.store.get(key)
        except StoreError as exc:
            self._failed(exc)
            return None

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
        self._pending[key] = self.memory.update_now(
            key,
            state,
            now,
            attempts=attempts,
            task_id=task_id,
            detail=detail,
            sent_at=sent_at,
            uncertain=uncertain,
        )
        if self._healthy:
            await self._commit()

    owner = ""  # one daemon per state directory: no peers

    async def mark_sent(
        self, key: str, now: datetime, *, attempts: int, uncertain: bool, hold_s: float
    ) -> bool:
        await self.update(key, State.SENT, now, attempts=attempts, sent_at=now, uncertain=uncertain)
        return True

    async def peer_lease(self, key: str) -> tuple[str, float] | None:
        return None

    async def take_over(self, key: str) -> bool:
        return True

    async def unsettled(self, before: datetime) -> list[Entry]:
        """Claimed/sent entries whose span ended before `before` (left by a crash)."""
        states = (State.CLAIMED, State.SENT)
        return [e for e in self.memory.entries() if e.span_end <= before and e.state in states]

    async def open_tasks(self, actions: Collection[str], now: datetime) -> list[Entry]:
        """From memory: it holds every entry whose span ends after start-up less two days."""
        return await self.memory.open_tasks(actions, now)

    async def heartbeat(self, now: datetime) -> None:
        """Record that the daemon was alive at `now` (recovery looks back to here)."""
        self._meta["last_seen"] = str(now.timestamp())
        await self.flush(force=False)

    async def last_seen(self) -> datetime | None:
        try:
            value = await self.store.get_meta("last_seen")
        except StoreError as exc:
            self._failed(exc)
            return None
        return None if value is None else datetime.fromtimestamp(float(value), UTC)

    async def get(self, key: str) -> Entry | None:
        return await self.memory.get(key)

    async def window(self, recording: str, window_start: datetime) -> list[Entry]:
        return await self.memory.window(recording, window_start)

    async def prune(self, now: datetime, retention: timedelta) -> None:
        self.memory.forget_before(now - LOAD_LOOKBACK)
        try:
            async with self._lock:
                removed = await self.store.prune(now - retention)
        except StoreError as exc:
            self._failed(exc)
            return
        if removed:
            log.info("store.pruned", rows=removed, older_than_days=retention.days)

    async def flush(self, *, force: bool = True) -> bool:
        """Write queued rows now; False (and the rows stay queued) if the store fails.

        While the store is unhealthy only the retrier (and close) touch the disk: firing never
        waits on a failing store more than once per outage."""
        if not self._pending and not self._meta and not self._claims:
            return True
        if not self._healthy and not force:
            self._park_claims()
            return False
        async with self._lock:
            if not self._healthy and not force:
                self._park_claims()
                return False
            claims, self._claims = self._claims, {}
            rows, values = dict(self._pending), dict(self._meta)
            try:
                inserted = await self.store.write(
                    list(rows.values()), values, list(claims.values())
                )
            except StoreError as exc:
                self._claims = claims
                self._park_claims()
                self._failed(exc)
                return False
            self._claim_results.update({key: key in inserted for key in claims})
        for key, entry in rows.items():
            if self._pending.get(key) is entry:  # not changed again while we wrote
                del self._pending[key]
        for name, value in values.items():
            if self._meta.get(name) == value:
                del self._meta[name]
        if not self._healthy:
            self._healthy = True
            log.warning("store.recovered", written=len(rows), url=self.url)
        return True

    def _park_claims(self) -> None:
        """The store is down: claims are decided by memory and saved later like any row."""
        for key, entry in self._claims.items():
            self._claim_results[key] = True
            self._pending.setdefault(key, entry)
        self._claims = {}

    def _failed(self, exc: StoreError) -> None:
        if self._healthy:
            log.error(
                "store.error",
                url=self.url,
                message=str(exc),
                queued=len(self._pending),
                action=f"firing continues from memory; writes are retried every {RETRY_SECONDS:g}s",
            )
        self._healthy = False

    async def _retry_forever(self) -> None:
        while True:
            await asyncio.sleep(RETRY_SECONDS)
            if not self._healthy or self._pending:
                await self.flush()

    async def close(self) -> None:
        if self._retrier is not None:
            self._retrier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrier
        if not await self.flush():
            log.error("store.unsaved", rows=len(self._pending), url=self.url)
        await self.store.close()
