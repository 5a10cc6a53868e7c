"""The SQLite store's fast write path (plain SQL through the driver) writes what the
SQLAlchemy statements write: the same row values, every claim of a burst larger than one
statement holds, and only free keys inserted."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from scheduler import store as store_module
from scheduler.ledger import Entry, State
from scheduler.schema import to_row
from scheduler.store import ROW_COLUMNS, Store
from tests.test_store import T0, TASK_ID, _calls


def test_row_values_are_to_row_in_column_order() -> None:
    entry = Entry.claimed(_calls()[0], T0)
    done = replace(
        entry,
        state=State.OK,
        attempts=2,
        task_id=TASK_ID,
        detail="d",
        sent_at=T0 + timedelta(microseconds=1),
        uncertain=True,
        updated_at=T0 + timedelta(seconds=1),
        owner="o",
    )
    for e in (entry, done):
        row = to_row(e)
        assert store_module._values(e) == tuple(row[name] for name in ROW_COLUMNS)


async def test_a_burst_larger_than_one_statement_is_claimed_whole(tmp_path: Path) -> None:
    size = store_module._CLAIMS_PER_STATEMENT * 2 + 7  # three statements
    calls = [c for i in range(size // 3 + 1) for c in _calls(name=f"r{i}")][:size]
    assert len({c.key for c in calls}) == size
    store = await Store.open(f"sqlite:///{tmp_path}/recsched.db")
    try:
        first = [Entry.claimed(c, T0) for c in calls[: size // 2]]
        assert await store.write([], {}, first) == {e.key for e in first}
        everything = [Entry.claimed(c, T0 + timedelta(seconds=1)) for c in calls]
        inserted = await store.write([], {}, everything)
        assert inserted == {e.key for e in everything[size // 2 :]}
        assert await store.count() == size
        assert await store.get(first[0].key) == first[0]  # a refused claim left the row alone
    finally:
        await store.close()
