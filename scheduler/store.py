"""The durable ledger's SQL side: schema, migrations and queries (SQLAlchemy 2 Core, async).

SQLite (aiosqlite) is the embedded default; the same statements run on PostgreSQL. Times are
stored as UNIX seconds (floats, UTC), which every engine compares the same way. Every write is
an idempotent upsert of a whole row, so replaying writes after an outage is harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from scheduler.errors import RecschedError
from scheduler.ledger import Entry, State

SCHEMA_VERSION = 2
#: How long SQLite waits for a lock before failing a write (a failing write never blocks
#: firing for longer than this; later writes are queued while the store is unhealthy).
BUSY_TIMEOUT_S = 0.5

#: PostgreSQL advisory lock held while creating or migrating the schema ("recsched" in ASCII).
MIGRATION_LOCK_ID = 0x72656373636865
metadata = MetaData()
calls = Table(
    "calls",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("recording", String(200), nullable=False),
    Column("provider", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(1024), nullable=False),
    Column("chunk", Integer, nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("window_start", Float, nullable=False),
    Column("window_end", Float, nullable=False),
    Column("span_start", Float, nullable=False),
    Column("span_end", Float, nullable=False),
    Column("scheduled_at", Float, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("task_id", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("sent_at", Float),
    Column("uncertain", Boolean, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("owner", String(200), nullable=False, server_default=""),  # instance that holds it
    Column("lease_until", Float),  # database clock; a peer may take over after this
    Index("calls_window", "recording", "window_start"),
    Index("calls_updated", "updated_at"),
    Index("calls_span_end", "span_end"),
)
#: Running instances (PostgreSQL mode), for `status` and config-divergence checks.
instances = Table(
    "instances",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("config_hash", String(64), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)
#: The last call that hit each provider target: the 3 s duplicate window across instances.
targets = Table(
    "targets",
    metadata,
    Column("target", String(1024), primary_key=True),
    Column("call_key", String(512), nullable=False),
    Column("span_start", Float, nullable=False),
    Column("span_end", Float, nullable=False),
    Column("hit_at", Float, nullable=False),
)
meta = Table(
    "meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


class StoreError(RecschedError):
    """The ledger database could not be read or written."""


def _migrate_to_2(conn: Connection) -> None:
    conn.exec_driver_sql("ALTER TABLE calls ADD COLUMN owner VARCHAR(200) NOT NULL DEFAULT ''")
    conn.exec_driver_sql("ALTER TABLE calls ADD COLUMN lease_until FLOAT")
    metadata.create_all(conn, tables=[instances, targets])


#: schema version -> step that brings version-1 up to it. Append, never edit. A new ledger is
#: created at the latest version directly.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _migrate_to_2}
_TIMES = ("window_start", "window_end", "span_start", "span_end", "scheduled_at", "updated_at")
_NOT_IN_ENTRY = ("lease_until",)


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _moment(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def to_row(entry: Entry) -> dict[str, Any]:
    row: dict[str, Any] = {
        c.name: getattr(entry, c.name)
        for c in calls.columns
        if c.name not in _TIMES and c.name not in _NOT_IN_ENTRY
    }
    row.update({name: _epoch(getattr(entry, name)) for name in _TIMES})
    row["sent_at"] = _epoch(entry.sent_at)
    row["state"] = str(entry.state)
    return row


def from_row(row: Any) -> Entry:
    values = {k: v for k, v in row._mapping.items() if k not in _NOT_IN_ENTRY}
    for name in (*_TIMES, "sent_at"):
        values[name] = _moment(values[name])
    values["state"] = State(values["state"])
    return Entry(**values)


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    @classmethod
    async def open(cls, url: str, *, create: bool = True) -> Store:
        """Open (and create or migrate) the ledger at `url`; StoreError if it cannot."""
        if url.startswith("sqlite:///"):
            path = sqlite_path(url)
            if create:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            elif not path.exists():
                raise StoreError(f"no ledger at {path} (has the daemon run with this config?)")
            engine = create_async_engine(
                f"sqlite+aiosqlite:///{path}",
                pool_size=1,
                max_overflow=0,
                connect_args={"timeout": BUSY_TIMEOUT_S},
            )

            @event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_connection: Any, _: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged claim survives a crash
                cursor.close()
        else:
            driver = url.replace("postgresql://", "postgresql+asyncpg://", 1)
            engine = create_async_engine(driver, pool_size=4, max_overflow=2, pool_pre_ping=True)
        store = cls(engine)
        try:
            await store._migrate()
        except SQLAlchemyError as exc:
            await engine.dispose()
            raise StoreError(f"cannot open ledger: {_reason(exc)}") from None
        except StoreError:
            await engine.dispose()
            raise
        return store

    async def _migrate(self) -> None:
        async with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # instances starting together would race on CREATE TABLE: one at a time
                await conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_ID)))
            await conn.run_sync(lambda c: meta.create(c, checkfirst=True))
            found = (
                await conn.execute(select(meta.c.value).where(meta.c.name == "schema"))
            ).scalar()
            version = int(found or 0)
            fresh = version == 0 and not await conn.run_sync(
                lambda c: c.dialect.has_table(c, "calls")
            )
            if fresh:
                await conn.run_sync(metadata.create_all)
                version = SCHEMA_VERSION
                await self._set_meta(conn, "schema", str(version))
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"ledger schema v{version} was written by a newer recsched "
                    f"(this one knows v{SCHEMA_VERSION}); upgrade recsched"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                await conn.run_sync(MIGRATIONS[target])
            if version != SCHEMA_VERSION:
                await self._set_meta(conn, "schema", str(SCHEMA_VERSION))

    async def _set_meta(self, conn: Any, name: str, value: str) -> None:
        stmt = self._insert(meta).values(name=name, value=value)
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=["name"], set_={"value": value})
        )

    async def insert_claim(self, entry: Entry) -> bool:
        """INSERT the claim unless the key exists; True if this call inserted it."""
        stmt = (
            self._insert(calls)
            .values(**to_row(entry))
            .on_conflict_do_nothing(index_elements=["key"])
        )
        async with self._begin() as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount == 1)

    async def write(self, entries: Sequence[Entry], meta_values: dict[str, str]) -> None:
        """Upsert whole rows (and meta values) in one transaction."""
        async with self._begin() as conn:
            for entry in entries:
                row = to_row(entry)
                stmt = self._insert(calls).values(**row)
                update = {k: v for k, v in row.items() if k != "key"}
                await conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_=update))
            for name, value in meta_values.items():
                await self._set_meta(conn, name, value)

    # -- shared mode (several instances on one database) ------------------------------------
    def _now(self) -> Any:
        """The database's clock in UNIX seconds: leases never depend on the hosts' clocks."""
        if self.engine.dialect.name == "postgresql":
            return func.extract("epoch", func.clock_timestamp())
        return (func.julianday("now") - 2440587.5) * 86400.0

    async def db_now(self) -> float:
        async with self._begin() as conn:
            return float((await conn.execute(select(self._now()))).scalar_one())

    async def claim_leased(
        self, entry: Entry, lease_s: float, window_s: float
    ) -> tuple[bool, str | None]:
        """In one transaction: insert the claim (with owner and a lease on the database clock)
        unless the key exists, then reserve the provider target. Returns (inserted, key of the
        call that already hit the target inside `window_s` for an overlapping span, if any);
        such a claim is recorded `suppressed` at once."""
        insert = self._insert(calls).values(**to_row(entry), lease_until=self._now() + lease_s)
        async with self._begin() as conn:
            result = await conn.execute(insert.on_conflict_do_nothing(index_elements=["key"]))
            if result.rowcount != 1:
                return False, None
            previous = await self._reserve_target(conn, entry, window_s)
            if previous is not None:
                await conn.execute(
                    update(calls)
                    .where(calls.c.key == entry.key)
                    .values(state=str(State.SUPPRESSED), detail=previous, lease_until=None)
                )
            return True, previous

    async def _reserve_target(self, conn: Any, entry: Entry, window_s: float) -> str | None:
        stmt = self._insert(targets).values(
            target=entry.target,
            call_key=entry.key,
            span_start=entry.span_start.timestamp(),
            span_end=entry.span_end.timestamp(),
            hit_at=self._now(),
        )
        fresh = stmt.excluded
        allowed = or_(
            targets.c.call_key == fresh.call_key,
            targets.c.hit_at < fresh.hit_at - window_s,
            targets.c.span_end <= fresh.span_start,
            targets.c.span_start >= fresh.span_end,
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=["target"],
            set_={k: getattr(fresh, k) for k in ("call_key", "span_start", "span_end", "hit_at")},
            where=allowed,
        ).returning(targets.c.call_key)
        if (await conn.execute(upsert)).first() is not None:
            return None
        holder = select(targets.c.call_key).where(targets.c.target == entry.target)
        return str((await conn.execute(holder)).scalar_one())

    async def lease_left(self, key: str) -> tuple[str, float] | None:
        """(owner, seconds its lease still runs) for an unsettled call, or None."""
        query = select(calls.c.owner, calls.c.lease_until - self._now()).where(
            (calls.c.key == key) & calls.c.state.in_([str(State.CLAIMED), str(State.SENT)])
        )
        async with self._begin() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None or row[1] is None else (str(row[0]), float(row[1]))

    async def take_over(self, key: str, owner: str, lease_s: float) -> bool:
        """Become the owner of an unsettled call whose lease has expired (compare-and-swap)."""
        stmt = (
            update(calls)
            .where(
                (calls.c.key == key)
                & calls.c.state.in_([str(State.CLAIMED), str(State.SENT)])
                & (calls.c.lease_until < self._now())
            )
            .values(owner=owner, lease_until=self._now() + lease_s)
        )
        async with self._begin() as conn:
            return bool((await conn.execute(stmt)).rowcount == 1)

    async def mark_sent(self, entry: Entry, owner: str, hold_s: float) -> bool:
        """Record `sent` only if we still own the call, extend the lease over the request and
        mark the target hit: the fence a paused instance cannot pass after a takeover."""
        values = to_row(entry)
        values.pop("key")
        values["owner"] = owner  # whatever the entry says, the fence decides who owns it
        stmt = (
            update(calls)
            .where((calls.c.key == entry.key) & (calls.c.owner == owner))
            .values(**values, lease_until=self._now() + hold_s)
        )
        async with self._begin() as conn:
            if (await conn.execute(stmt)).rowcount != 1:
                return False
            await conn.execute(
                update(targets)
                .where((targets.c.target == entry.target) & (targets.c.call_key == entry.key))
                .values(hit_at=self._now())
            )
        return True

    async def settle(self, entry: Entry) -> None:
        """Write an outcome, whoever owns the call now: the provider's answer is the truth."""
        values = to_row(entry)
        values.pop("key")
        values.pop("owner")
        async with self._begin() as conn:
            await conn.execute(
                update(calls).where(calls.c.key == entry.key).values(**values, lease_until=None)
            )

    async def unsettled(self, before: datetime) -> list[Entry]:
        """Claimed/sent calls whose span ended before `before` and whose lease has expired."""
        query = select(calls).where(
            calls.c.state.in_([str(State.CLAIMED), str(State.SENT)])
            & (calls.c.span_end <= before.timestamp())
            & (calls.c.lease_until.is_(None) | (calls.c.lease_until < self._now()))
        )
        return await self._select(query)

    async def beat(self, instance: str, host: str, pid: int, config_hash: str) -> list[Any]:
        """Upsert this instance's heartbeat; return the instances seen in the last minute."""
        stmt = self._insert(instances).values(
            id=instance,
            host=host,
            pid=pid,
            config_hash=config_hash,
            started_at=self._now(),
            heartbeat_at=self._now(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={"heartbeat_at": stmt.excluded.heartbeat_at, "config_hash": config_hash},
        )
        async with self._begin() as conn:
            await conn.execute(stmt)
            recent = select(instances).where(instances.c.heartbeat_at > self._now() - 60)
            return list((await conn.execute(recent)).all())

    async def instances(self) -> list[tuple[Any, float]]:
        """Every instance ever seen, with seconds since its last heartbeat."""
        async with self._begin() as conn:
            now = float((await conn.execute(select(self._now()))).scalar_one())
            rows = (await conn.execute(select(instances).order_by(instances.c.id))).all()
        return [(row, now - float(row.heartbeat_at)) for row in rows]

    async def get(self, key: str) -> Entry | None:
        rows = await self._select(select(calls).where(calls.c.key == key))
        return rows[0] if rows else None

    async def load(self, since: datetime) -> list[Entry]:
        """Entries whose span ends at or after `since`, plus any still without an outcome."""
        unfinished = calls.c.state.in_([str(State.CLAIMED), str(State.SENT)])
        return await self._select(
            select(calls).where((calls.c.span_end >= since.timestamp()) | unfinished)
        )

    async def window(self, recording: str, window_start: datetime) -> list[Entry]:
        query = select(calls).where(
            (calls.c.recording == recording) & (calls.c.window_start == window_start.timestamp())
        )
        return sorted(await self._select(query), key=lambda e: e.chunk)

    async def recent(self, limit: int, states: Iterable[State] | None = None) -> list[Entry]:
        query = select(calls)
        if states is not None:
            query = query.where(calls.c.state.in_([str(s) for s in states]))
        return await self._select(query.order_by(calls.c.updated_at.desc()).limit(limit))

    async def active(self, now: datetime) -> list[Entry]:
        t = now.timestamp()
        query = select(calls).where(
            (calls.c.state == str(State.OK)) & (calls.c.span_start <= t) & (calls.c.span_end > t)
        )
        return await self._select(query.order_by(calls.c.span_end))

    async def get_meta(self, name: str) -> str | None:
        async with self._begin() as conn:
            value = (await conn.execute(select(meta.c.value).where(meta.c.name == name))).scalar()
        return None if value is None else str(value)

    async def prune(self, before: datetime) -> int:
        """Delete rows last updated before `before`; return how many."""
        async with self._begin() as conn:
            result = await conn.execute(
                sql_delete(calls).where(calls.c.updated_at < before.timestamp())
            )
        return int(result.rowcount)

    async def count(self) -> int:
        async with self._begin() as conn:
            return int((await conn.execute(select(func.count()).select_from(calls))).scalar_one())

    async def close(self) -> None:
        await self.engine.dispose()

    async def _select(self, query: Any) -> list[Entry]:
        async with self._begin() as conn:
            return [from_row(row) for row in (await conn.execute(query)).all()]

    def _begin(self) -> Any:
        return _Guard(self.engine)


class _Guard:
    """`engine.begin()` whose database errors surface as StoreError with a short reason."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._context = engine.begin()

    async def __aenter__(self) -> Any:
        try:
            return await self._context.__aenter__()
        except SQLAlchemyError as exc:
            raise StoreError(_reason(exc)) from None

    async def __aexit__(self, *exc_info: Any) -> bool:
        try:
            await self._context.__aexit__(*exc_info)
        except SQLAlchemyError as exc:
            raise StoreError(_reason(exc)) from None
        if exc_info[0] is not None and issubclass(exc_info[0], SQLAlchemyError):
            raise StoreError(_reason(exc_info[1])) from None
        return False


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None)
    return str(original or exc).splitlines()[0]
