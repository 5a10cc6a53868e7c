"""The ledger contract, run against SQLite and PostgreSQL alike: one code path, one suite."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.config import parse_config
from scheduler.ledger import Entry, State
from scheduler.planner import plan
from scheduler.store import SCHEMA_VERSION, Store

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger/recsched.db"
    return str(request.getfixturevalue("pg_url"))


def _entries(channel_for: dict[str, str] | None = None) -> list[Entry]:
    recs = "".join(
        f"  - {{name: {name}, channel_id: {channel}, start: 2030-01-01 20:00:00, duration: 6s,"
        f" chunk: 3s}}\n"
        for name, channel in (channel_for or {"a": "ca"}).items()
    )
    config = parse_config(
        "providers:\n  lvb: {appid: 1, key: '${K}'}\nrecordings:\n" + recs, "t.yaml", env={"K": "k"}
    )
    return [Entry.claimed(c, T0, owner="me") for c in plan(config, T0)]


async def test_a_key_is_claimed_once_even_by_racing_stores(url: str) -> None:
    first, second = await Store.open(url), await Store.open(url)
    entry = _entries()[0]
    try:
        results = await asyncio.gather(
            *(
                store.claim_leased(replace(entry, owner=f"i{n}"), 10, 3)
                for n, store in enumerate([first, second] * 5)
            )
        )
        assert [inserted for inserted, _ in results].count(True) == 1
        stored = await first.get(entry.key)
        assert stored is not None and stored.state == State.CLAIMED
    finally:
        await first.close()
        await second.close()


async def test_takeover_only_after_the_lease_expires_and_the_loser_is_fenced(url: str) -> None:
    store = await Store.open(url)
    entry = replace(_entries()[0], owner="paused")
    try:
        assert await store.claim_leased(entry, 0.3, 3) == (True, None)
        owner, left = await store.lease_left(entry.key) or ("", 0.0)
        assert owner == "paused" and 0 < left <= 0.3
        assert not await store.take_over(entry.key, "peer", 10)  # lease still running
        await asyncio.sleep(left + 0.05)  # the behaviour under test: the lease running out
        assert await store.take_over(entry.key, "peer", 10)
        assert not await store.take_over(entry.key, "third", 10)  # the peer's lease now runs
        sent = replace(entry, state=State.SENT, attempts=1, sent_at=T0)
        assert not await store.mark_sent(sent, "paused", 15)  # resumed: it must not send
        assert await store.mark_sent(sent, "peer", 15)
        stored = await store.get(entry.key)
        assert stored is not None and stored.state == State.SENT and stored.owner == "peer"
    finally:
        await store.close()


async def test_the_3s_window_spans_instances_for_overlapping_spans_only(url: str) -> None:
    store = await Store.open(url)
    same = _entries({"a": "shared", "b": "shared"})
    a1, a2, b1, _ = sorted(same, key=lambda e: (e.recording, e.chunk))
    try:
        assert await store.claim_leased(a1, 10, 3) == (True, None)
        inserted, previous = await store.claim_leased(b1, 10, 3)  # same channel, same span
        assert inserted and previous == a1.key
        suppressed = await store.get(b1.key)
        assert suppressed is not None and suppressed.state == State.SUPPRESSED
        assert await store.claim_leased(a2, 10, 3) == (True, None)  # next chunk: no overlap
    finally:
        await store.close()


async def test_the_window_closes_after_its_length(url: str) -> None:
    store = await Store.open(url)
    a1, b1 = (e for e in _entries({"a": "shared", "b": "shared"}) if e.chunk == 1)
    try:
        assert await store.claim_leased(a1, 10, 0.2) == (True, None)
        await asyncio.sleep(0.25)  # the behaviour under test: the window passing
        assert await store.claim_leased(b1, 10, 0.2) == (True, None)
    finally:
        await store.close()


async def test_outcomes_are_written_whoever_owns_the_call(url: str) -> None:
    store = await Store.open(url)
    entry = _entries()[0]
    try:
        await store.claim_leased(entry, 10, 3)
        done = replace(entry, state=State.OK, task_id=str(2**64 - 1), owner="someone-else")
        await store.settle(done)
        stored = await store.get(entry.key)
        assert stored is not None and stored.task_id == str(2**64 - 1)
        assert stored.owner == "me"  # the claim's owner stays recorded: who sent it
        assert await store.lease_left(entry.key) is None  # settled calls hold no lease
    finally:
        await store.close()


async def test_instances_heartbeat_on_the_database_clock(url: str) -> None:
    store = await Store.open(url)
    try:
        await store.beat("host-a:1", "host-a", 1, "hash-a")
        peers = await store.beat("host-b:2", "host-b", 2, "hash-b")
        assert sorted(row.id for row in peers) == ["host-a:1", "host-b:2"]
        seen = {row.id: age for row, age in await store.instances()}
        assert all(0 <= age < 5 for age in seen.values())
    finally:
        await store.close()


async def test_a_version_1_sqlite_ledger_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the schema recsched 0.1 wrote
        db.executescript(
            "CREATE TABLE meta (name VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema', '1');"
            "CREATE TABLE calls (key VARCHAR(512) PRIMARY KEY, recording VARCHAR(200) NOT NULL,"
            " provider VARCHAR(200) NOT NULL, action VARCHAR(64) NOT NULL,"
            " target VARCHAR(1024) NOT NULL, chunk INTEGER NOT NULL, chunks INTEGER NOT NULL,"
            " window_start FLOAT NOT NULL, window_end FLOAT NOT NULL, span_start FLOAT NOT NULL,"
            " span_end FLOAT NOT NULL, scheduled_at FLOAT NOT NULL, state VARCHAR(16) NOT NULL,"
            " attempts INTEGER NOT NULL, task_id VARCHAR(64) NOT NULL, detail TEXT NOT NULL,"
            " sent_at FLOAT, uncertain BOOLEAN NOT NULL, updated_at FLOAT NOT NULL);"
            "INSERT INTO calls VALUES ('k', 'r', 'lvb', 'Live_Tape_Start', 't', 1, 1, 0, 1, 0, 1,"
            " 0, 'ok', 1, '42', '', NULL, 0, 0);"
        )
    store = await Store.open(f"sqlite:///{path}")
    try:
        assert await store.get_meta("schema") == str(SCHEMA_VERSION)
        kept = await store.get("k")
        assert kept is not None and kept.task_id == "42" and kept.owner == ""
    finally:
        await store.close()
