"""The SQL side of the durable ledger: schema, the unique key as the only duplicate guard,
exact round-trips, and the queries recovery and `recsched status` rely on."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import store as store_module
from scheduler.calls import Call
from scheduler.config import CST, Config, parse_config
from scheduler.ledger import Entry, State
from scheduler.planner import plan
from scheduler.store import SCHEMA_VERSION, Store, StoreError

T0 = datetime(2026, 12, 1, 20, 0, tzinfo=CST)
TASK_ID = "18446744073709000123"  # > 2**63: a float or int64 would change it


def _config(recordings: str) -> Config:
    text = f"""
providers:
  lvb: {{endpoint: "http://127.0.0.1:9/common_access", appid: 1234, key: "${{LVB_KEY}}"}}
recordings:
{recordings}
"""
    return parse_config(text, "recsched.yaml", env={"LVB_KEY": "k"})


def _calls(start: datetime = T0, *, name: str = "news", seconds: int = 30) -> list[Call]:
    """One window of `seconds` cut into 10 s chunks, planned as of its start."""
    config = _config(
        f"  - {{name: {name}, channel_id: c, start: '{start.astimezone(CST):%Y-%m-%d %H:%M:%S}', "
        f"duration: {seconds}s, chunk: 10s}}"
    )
    return plan(config, start, timedelta(seconds=seconds))


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/x/recsched.db"


def _db(tmp_path: Path) -> Path:
    return tmp_path / "x" / "recsched.db"


async def _open(tmp_path: Path) -> Store:
    return await Store.open(_url(tmp_path))


async def test_a_fresh_file_gets_the_schema_and_reopening_keeps_rows_without_migrating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await _open(tmp_path)
    assert _db(tmp_path).is_file()
    assert await store.get_meta("schema") == str(SCHEMA_VERSION)
    call = _calls()[0]
    assert await store.insert_claim(Entry.claimed(call, T0))
    assert await store.count() == 1
    await store.close()

    def must_not_run(_: object) -> None:
        raise AssertionError("an up-to-date ledger was migrated again")

    monkeypatch.setitem(store_module.MIGRATIONS, SCHEMA_VERSION, must_not_run)
    store = await _open(tmp_path)
    try:
        assert await store.get_meta("schema") == str(SCHEMA_VERSION)
        assert await store.count() == 1
        kept = await store.get(call.key)
        assert kept is not None and kept.state == State.CLAIMED
    finally:
        await store.close()


async def test_a_key_is_claimed_once_even_by_a_second_store_on_the_same_file(
    tmp_path: Path,
) -> None:
    first, second = await _open(tmp_path), await _open(tmp_path)
    try:
        one, two, three = _calls()
        assert await first.insert_claim(Entry.claimed(one, T0)) is True
        assert await first.insert_claim(Entry.claimed(one, T0)) is False
        # another process (or an earlier run) on the same file: the unique key decides
        assert await second.insert_claim(Entry.claimed(one, T0)) is False
        assert await second.insert_claim(Entry.claimed(two, T0)) is True
        assert await first.insert_claim(Entry.claimed(two, T0)) is False
        # both at once: exactly one wins
        results = await asyncio.gather(
            first.insert_claim(Entry.claimed(three, T0)),
            second.insert_claim(Entry.claimed(three, T0)),
        )
        assert sorted(results) == [False, True]
        assert await first.count() == 3
        # the loser did not overwrite the winner's row
        stored = await first.get(one.key)
        assert stored is not None and stored.state == State.CLAIMED
    finally:
        await first.close()
        await second.close()


async def test_write_upserts_whole_rows_exactly(tmp_path: Path) -> None:
    store = await _open(tmp_path)
    try:
        call = _calls()[0]
        claimed = Entry.claimed(call, T0)
        assert await store.insert_claim(claimed)
        sent_at = T0 + timedelta(microseconds=123457)
        done = replace(
            claimed,
            state=State.OK,
            attempts=2,
            task_id=TASK_ID,
            detail="re-sent after a crash",
            sent_at=sent_at,
            uncertain=True,
            updated_at=T0 + timedelta(seconds=1, microseconds=1),
        )
        await store.write([done], {})
        await store.write([done], {})  # replaying a queued write is harmless
        stored = await store.get(call.key)
        assert stored == done  # every field, times compared as instants
        assert stored is not None
        assert stored.task_id == TASK_ID and isinstance(stored.task_id, str)
        assert stored.sent_at == sent_at and stored.sent_at.tzinfo is not None
        assert stored.uncertain is True and stored.attempts == 2
        assert await store.count() == 1
        # a later write replaces the whole row, including flags going back to their default
        failed = replace(done, state=State.FAILED, task_id="", uncertain=False, attempts=3)
        await store.write([failed], {"last_seen": "1.5"})
        assert await store.get(call.key) == failed
        assert await store.get_meta("last_seen") == "1.5"
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return _url(tmp_path)
    return str(request.getfixturevalue("pg_url"))


async def test_a_batch_inserts_only_new_claims_and_upserts_whole_rows(any_url: str) -> None:
    """One `write` with many claims and rows (a burst's group commit): exactly the claims whose
    key was free are inserted and reported, existing rows are left alone by a claim, every row
    is written whole, and the shared-mode lease column is not touched by an upsert."""
    store = await Store.open(any_url)
    try:
        calls = _calls(seconds=60) + _calls(name="sport", seconds=60)
        held = [Entry.claimed(c, T0, owner="peer") for c in calls[:3]]
        assert await store.claim_leased(held[0], 30, 3) == (True, None)  # has a lease
        assert await store.write([], {}, held[1:]) == {e.key for e in held[1:]}
        fresh = [Entry.claimed(c, T0) for c in calls[3:]]
        again = [Entry.claimed(c, T0 + timedelta(seconds=1)) for c in calls[:3]]
        inserted = await store.write([], {}, [*again, *fresh])
        assert inserted == {e.key for e in fresh}
        for entry in held[1:]:  # a refused claim did not overwrite the row
            assert await store.get(entry.key) == entry
        assert await store.count() == len(calls)

        sent_at = T0 + timedelta(microseconds=250001)
        done = [
            replace(
                e,
                state=State.OK,
                attempts=1,
                task_id=str(int(TASK_ID) + i),
                sent_at=sent_at,
                uncertain=i % 2 == 0,
                updated_at=T0 + timedelta(seconds=2),
            )
            for i, e in enumerate([held[0], *fresh])
        ]
        new_call = _calls(name="late", seconds=10)[0]
        brand_new = replace(Entry.claimed(new_call, T0), state=State.SENT, sent_at=sent_at)
        assert await store.write([*done, brand_new], {"last_seen": "2.5"}) == set()
        for entry in [*done, brand_new]:
            assert await store.get(entry.key) == entry
        assert await store.get_meta("last_seen") == "2.5"
        async with store.engine.connect() as conn:
            lease = (
                await conn.execute(
                    store_module.select(store_module.calls.c.lease_until).where(
                        store_module.calls.c.key == held[0].key
                    )
                )
            ).scalar_one()
        assert lease is not None  # the upsert left the lease to leases.py
    finally:
        await store.close()


async def test_times_from_any_zone_round_trip_as_the_same_instant(tmp_path: Path) -> None:
    store = await _open(tmp_path)
    zones = [UTC, CST, ZoneInfo("America/New_York"), ZoneInfo("Europe/London")]
    try:
        base = Entry.claimed(_calls()[0], T0)
        for index, zone in enumerate(zones):
            moment = datetime(2026, 11, 1, 1, 30, 0, 999999, tzinfo=zone)  # NY: ambiguous hour
            entry = replace(base, key=f"k{index}", span_start=moment, sent_at=moment)
            await store.write([entry], {})
            stored = await store.get(entry.key)
            assert stored is not None and stored.sent_at is not None
            assert stored.span_start.astimezone(UTC) == moment.astimezone(UTC)
            assert stored.sent_at.astimezone(UTC) == moment.astimezone(UTC)
    finally:
        await store.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, CST, ZoneInfo("America/New_York")]),
    ),
    task_id=st.integers(min_value=0, max_value=2**64 - 1).map(str),
)
def test_any_instant_and_task_id_survive_the_file(
    tmp_path: Path, moment: datetime, task_id: str
) -> None:
    async def round_trip() -> Entry | None:
        store = await _open(tmp_path)
        try:
            entry = replace(
                Entry.claimed(_calls()[0], T0), state=State.OK, task_id=task_id, sent_at=moment
            )
            await store.write([entry], {})
            return await store.get(entry.key)
        finally:
            await store.close()

    stored = asyncio.run(round_trip())
    assert stored is not None and stored.sent_at is not None
    assert stored.sent_at.astimezone(UTC) == moment.astimezone(UTC)
    assert stored.task_id == task_id


async def test_load_returns_open_spans_and_every_unfinished_row_however_old(
    tmp_path: Path,
) -> None:
    store = await _open(tmp_path)
    try:
        old = T0 - timedelta(days=10)
        old_ok, old_claimed, old_sent = (Entry.claimed(c, old) for c in _calls(old, name="old"))
        recent = [Entry.claimed(c, T0) for c in _calls(T0, name="recent")]
        await store.write(
            [
                replace(old_ok, state=State.OK),
                old_claimed,  # claimed 10 days ago, never finished
                replace(old_sent, state=State.SENT, attempts=1, sent_at=old),
                *(replace(e, state=State.OK) for e in recent),
            ],
            {},
        )
        since = T0 + timedelta(seconds=15)  # recent chunk 1 ended at +10 s, chunk 2 ends +20 s
        keys = {e.key for e in await store.load(since)}
        assert keys == {old_claimed.key, old_sent.key, recent[1].key, recent[2].key}
    finally:
        await store.close()


async def test_window_returns_one_windows_rows_sorted_by_chunk(tmp_path: Path) -> None:
    store = await _open(tmp_path)
    try:
        news = [Entry.claimed(c, T0) for c in _calls(T0, name="news")]
        later = [Entry.claimed(c, T0) for c in _calls(T0 + timedelta(hours=1), name="news")]
        other = [Entry.claimed(c, T0) for c in _calls(T0, name="other")]
        await store.write([*reversed(news), *later, *other], {})
        rows = await store.window("news", T0)
        assert [(e.recording, e.chunk) for e in rows] == [("news", 1), ("news", 2), ("news", 3)]
        assert [e.key for e in rows] == [e.key for e in news]
        assert await store.window("news", T0 + timedelta(minutes=30)) == []
    finally:
        await store.close()


async def test_active_lists_only_ok_tasks_recording_now(tmp_path: Path) -> None:
    store = await _open(tmp_path)
    try:
        one, two, three = (Entry.claimed(c, T0) for c in _calls(T0, name="news"))
        (failed,) = (Entry.claimed(c, T0) for c in _calls(T0, name="broken", seconds=10))
        (sent,) = (Entry.claimed(c, T0) for c in _calls(T0, name="pending", seconds=10))
        await store.write(
            [
                replace(one, state=State.OK),  # [T0, T0+10s)
                replace(two, state=State.OK, task_id=TASK_ID),  # [T0+10s, T0+20s)
                replace(three, state=State.OK),  # [T0+20s, T0+30s)
                replace(failed, state=State.FAILED),
                replace(sent, state=State.SENT),
            ],
            {},
        )
        now = T0 + timedelta(seconds=15)
        (active,) = await store.active(now)
        assert active.key == two.key and active.task_id == TASK_ID
        # the end of a span is exclusive, its start inclusive
        assert [e.key for e in await store.active(T0 + timedelta(seconds=10))] == [two.key]
        assert await store.active(T0 + timedelta(seconds=30)) == []
        assert [e.key for e in await store.active(T0)] == [one.key]  # not the failed one
    finally:
        await store.close()


async def test_prune_deletes_rows_last_updated_before_the_cutoff(tmp_path: Path) -> None:
    store = await _open(tmp_path)
    try:
        calls = _calls(T0, name="news")
        ages = [timedelta(days=40), timedelta(days=31), timedelta(days=1)]
        entries = [
            replace(Entry.claimed(c, T0 - age), state=State.OK)
            for c, age in zip(calls, ages, strict=True)
        ]
        await store.write(entries, {})
        assert await store.prune(T0 - timedelta(days=30)) == 2
        assert [e.key for e in await store.recent(10)] == [entries[2].key]
        assert await store.prune(T0 - timedelta(days=30)) == 0
        assert await store.count() == 1
    finally:
        await store.close()


async def test_a_ledger_from_a_newer_recsched_is_refused_untouched(tmp_path: Path) -> None:
    store = await _open(tmp_path)
    await store.insert_claim(Entry.claimed(_calls()[0], T0))
    await store.close()
    with sqlite3.connect(_db(tmp_path)) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE name = 'schema'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError, match="newer recsched"):
        await _open(tmp_path)
    gc.collect()  # Store.open leaves the refused engine undisposed: finalize it on this loop
    with sqlite3.connect(_db(tmp_path)) as conn:  # neither downgraded nor emptied
        (schema,) = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        (rows,) = conn.execute("SELECT count(*) FROM calls").fetchone()
    assert (schema, rows) == (str(SCHEMA_VERSION + 1), 1)


async def test_opening_without_create_never_creates_a_ledger(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no ledger at"):
        await Store.open(_url(tmp_path), create=False)
    assert not _db(tmp_path).exists()
    assert not _db(tmp_path).parent.exists()


async def test_a_connection_given_back_inside_a_transaction_is_rolled_back(
    tmp_path: Path,
) -> None:
    # The pool no longer rolls back after every write's commit (a round trip to aiosqlite's
    # thread); a connection given back with a transaction still open (a write cancelled
    # between its statement and its commit) is rolled back, or the next write would commit
    # the half-done one with its own.
    store = await _open(tmp_path)
    orphan, kept = (Entry.claimed(call, T0) for call in _calls()[:2])
    try:
        conn = await store.engine.connect()
        driver = (await conn.get_raw_connection()).driver_connection
        await driver.execute(
            f"INSERT INTO calls ({store_module._COLUMNS}) VALUES {store_module._ROW}",
            store_module._values(orphan),
        )
        assert driver.in_transaction
        await conn.close()  # no commit
        await store.write([kept], {})
        assert await store.get(kept.key) is not None
        assert await store.get(orphan.key) is None
    finally:
        await store.close()
    with sqlite3.connect(_db(tmp_path)) as db:  # and not on disk either
        assert [k for (k,) in db.execute("SELECT key FROM calls")] == [kept.key]


def test_a_database_error_without_a_message_still_names_itself() -> None:
    # StoreError's text goes into `store.error`: an empty driver message must not break it
    assert store_module._reason(sqlite3.OperationalError()) == "OperationalError"
    assert store_module._reason(sqlite3.OperationalError("disk I/O error\nmore")) == (
        "disk I/O error"
    )
