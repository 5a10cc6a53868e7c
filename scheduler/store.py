"""The durable ledger's SQL side: opening (creating, migrating) and queries (SQLAlchemy 2
Core, async). Tables live in schema.py; shared-mode (lease) operations in leases.py.

SQLite (aiosqlite) is the embedded default; the same statements run on PostgreSQL. Every write
is an idempotent upsert of a whole row, so replaying writes after an outage is harmless.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from scheduler.errors import StoreError  # defined there so the CLI need not import us
from scheduler.leases import LeaseOps
from scheduler.ledger import Entry, State
from scheduler.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    calls,
    from_row,
    meta,
    metadata,
    row_values,
    to_row,
)

__all__ = ["SCHEMA_VERSION", "Store", "StoreError", "from_row", "sqlite_path", "to_row"]

#: How long SQLite waits for a lock before failing a write (a failing write never blocks
#: firing for longer than this; later writes are queued while the store is unhealthy).
BUSY_TIMEOUT_S = 0.5

#: The columns `to_row` fills: every column but the shared-mode lease, which only leases.py
#: writes (an upsert must leave it as it is).
ROW_COLUMNS = tuple(c.name for c in calls.columns if c.name != "lease_until")

#: PostgreSQL advisory lock held while creating or migrating the schema ("recsched" in ASCII).
MIGRATION_LOCK_ID = 0x72656373636865


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


class Store(LeaseOps):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        insert = self._insert(calls)
        #: Claims, many at once: each row inserted unless its key exists; RETURNING names the
        #: keys that were inserted (atomic, unlike a SELECT first).
        self._claim_many = insert.on_conflict_do_nothing(index_elements=["key"]).returning(
            calls.c.key
        )
        #: Whole rows, many at once: insert, or overwrite every column a row carries.
        self._upsert_many = insert.on_conflict_do_update(
            index_elements=["key"],
            set_={name: insert.excluded[name] for name in ROW_COLUMNS if name != "key"},
        )

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
                pool_reset_on_return=None,  # _rollback_if_open instead
                connect_args={"timeout": BUSY_TIMEOUT_S},
            )

            @event.listens_for(engine.sync_engine, "reset")
            def _rollback_if_open(dbapi_connection: Any, record: Any, state: Any) -> None:
                """The pool's rollback on check-in, only when a transaction is still open (a
                cancelled write): after the commit that ends every write it was one more
                round trip to aiosqlite's thread, on the path of a burst's `sent` commit."""
                if state.asyncio_safe and record.driver_connection.in_transaction:
                    dbapi_connection.rollback()

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

    async def write(
        self,
        entries: Sequence[Entry],
        meta_values: dict[str, str],
        claims: Sequence[Entry] = (),
    ) -> set[str]:
        """In one transaction: insert each claim unless its key exists, then upsert whole rows
        (and meta values). Returns the keys of the claims that were inserted."""
        inserted: set[str] = set()
        async with self._begin() as conn:
            if self.engine.dialect.name == "sqlite":
                driver = (await conn.get_raw_connection()).driver_connection
                try:
                    inserted = await _write_sqlite(driver, entries, claims)
                except sqlite3.Error as exc:
                    raise StoreError(_reason(exc)) from None
                for name, value in meta_values.items():
                    await self._set_meta(conn, name, value)
                return inserted
            # One executemany per kind of row, not one statement per row: building, caching
            # and running a statement for each row of a 1,000-call burst took ~1 ms of the
            # event loop per row (py-spy, docs/benchmarks.md).
            if claims:
                result = await conn.execute(self._claim_many, [to_row(c) for c in claims])
                inserted.update(key for (key,) in result.all())
            if entries:
                await conn.execute(self._upsert_many, [to_row(e) for e in entries])
            for name, value in meta_values.items():
                await self._set_meta(conn, name, value)
        return inserted

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


#: SQLite's side of write(), as plain SQL through the driver: the same statements as the
#: SQLAlchemy ones above (tests/test_ledger_contract.py runs both stores over one suite), at
#: a tenth of the cost per row. SQLAlchemy's parameter processing took 50 µs a row, a fifth of
#: a 1,000-call burst's time on the event loop (docs/benchmarks.md).
_COLUMNS = ", ".join(ROW_COLUMNS)
_ROW = "(" + ", ".join("?" * len(ROW_COLUMNS)) + ")"
_UPSERT_SQL = f"INSERT INTO calls ({_COLUMNS}) VALUES {_ROW} ON CONFLICT (key) DO UPDATE SET " + (
    ", ".join(f"{name} = excluded.{name}" for name in ROW_COLUMNS if name != "key")
)
#: Claims per INSERT ... RETURNING, within the parameters SQLite accepts: 32,766 since 3.32
#: (a burst of 1,500 in one statement; each statement is a round trip to aiosqlite's thread).
_MAX_PARAMETERS = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
_CLAIMS_PER_STATEMENT = _MAX_PARAMETERS // len(ROW_COLUMNS)


_values = row_values(ROW_COLUMNS)


async def _write_sqlite(driver: Any, entries: Sequence[Entry], claims: Sequence[Entry]) -> set[str]:
    """Claims (each inserted unless its key exists; RETURNING names those inserted, atomic as
    one statement), then whole rows upserted, in the caller's transaction, on aiosqlite's
    connection (`driver`) itself: one round trip to its thread per statement. Through
    SQLAlchemy's adapter each statement was three (cursor, execute, close), and in a burst
    each round trip waits for a turn of the busy event loop: a burst's `sent` commit took
    25-30 ms for 10 ms of work (docs/benchmarks.md). sqlite3 errors become StoreError."""
    inserted: set[str] = set()
    for first in range(0, len(claims), _CLAIMS_PER_STATEMENT):
        chunk = claims[first : first + _CLAIMS_PER_STATEMENT]
        statement = (
            f"INSERT INTO calls ({_COLUMNS}) VALUES {', '.join([_ROW] * len(chunk))} "
            "ON CONFLICT (key) DO NOTHING RETURNING key"
        )
        values = tuple(value for entry in chunk for value in _values(entry))
        inserted.update(key for (key,) in await driver.execute_fetchall(statement, values))
    if entries:
        await driver.executemany(_UPSERT_SQL, [_values(entry) for entry in entries])
    return inserted


def _reason(exc: BaseException) -> str:
    """The first line of the database's own message (the error's name if it has none)."""
    original = getattr(exc, "orig", None) or exc
    return (str(original).splitlines() or [type(original).__name__])[0]
