"""The ledger's tables, their migrations, and the mapping between rows and `Entry` values.

Times are stored as UNIX seconds (floats, UTC), which every engine compares the same way.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, datetime
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
)

from scheduler.ledger import Entry, State

SCHEMA_VERSION = 2
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


#: The columns copied as they are: worked out once (a burst writes three rows per call, and
#: walking SQLAlchemy's column collection for each was a sixth of the event loop's time).
_PLAIN = tuple(
    c.name for c in calls.columns if c.name not in _TIMES and c.name not in _NOT_IN_ENTRY
)


def to_row(entry: Entry) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(entry, name) for name in _PLAIN}
    for name in _TIMES:
        row[name] = _epoch(getattr(entry, name))
    row["sent_at"] = _epoch(entry.sent_at)
    row["state"] = str(entry.state)
    return row


def row_values(columns: tuple[str, ...]) -> Callable[[Entry], tuple[Any, ...]]:
    """A function giving what to_row() gives for `columns`, as a tuple in their order, at a
    third of its cost (attrgetter reads them in one call): the SQLite store's hot path."""
    get = operator.attrgetter(*columns)
    times = tuple(i for i, name in enumerate(columns) if name in (*_TIMES, "sent_at"))
    state = columns.index("state")

    def values(entry: Entry) -> tuple[Any, ...]:
        found = list(get(entry))
        for index in times:
            moment = found[index]
            found[index] = None if moment is None else moment.timestamp()
        found[state] = str(found[state])
        return tuple(found)

    return values


def from_row(row: Any) -> Entry:
    values = {k: v for k, v in row._mapping.items() if k not in _NOT_IN_ENTRY}
    for name in (*_TIMES, "sent_at"):
        values[name] = _moment(values[name])
    values["state"] = State(values["state"])
    return Entry(**values)
