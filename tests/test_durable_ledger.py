"""The durable ledger: what was sent survives a restart, and a failing disk never stops firing
(one `store.error` per outage, writes queued in memory, one `store.recovered` when written)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler import durable
from scheduler.calls import Call
from scheduler.config import CST, Config, load_config, parse_config
from scheduler.dispatch import Dispatcher
from scheduler.durable import DurableLedger
from scheduler.fakes.lvb import FakeLvb
from scheduler.ledger import Entry, State
from scheduler.planner import plan
from scheduler.provider_senders import provider_senders
from scheduler.store import Store
from scheduler.transport import Transport
from tests.conftest import LogCapture

T0 = datetime(2026, 12, 1, 20, 0, tzinfo=CST)
TASK_ID = "18446744073709000007"


def _calls(start: datetime = T0, *, name: str = "news", seconds: int = 30) -> list[Call]:
    """One window of `seconds` cut into 10 s chunks, planned as of its start."""
    text = f"""
providers:
  lvb: {{endpoint: "http://127.0.0.1:9/common_access", appid: 1234, key: "${{LVB_KEY}}"}}
recordings:
  - {{name: {name}, channel_id: c, start: '{start.astimezone(CST):%Y-%m-%d %H:%M:%S}',
      duration: {seconds}s, chunk: 10s}}
"""
    return plan(parse_config(text, "recsched.yaml", env={"LVB_KEY": "k"}), start)


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/x/recsched.db"


@pytest.fixture
def blocker(tmp_path: Path) -> Iterator[Callable[[], sqlite3.Connection]]:
    """Lock the ledger file from another connection (BEGIN EXCLUSIVE) on demand."""
    held: list[sqlite3.Connection] = []

    def lock() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "x" / "recsched.db", isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        held.append(conn)
        return conn

    yield lock
    for conn in held:
        conn.close()  # rolls back a lock a test left held


async def test_what_was_sent_survives_a_restart_and_is_never_claimed_again(
    tmp_path: Path, captured_logs: LogCapture
) -> None:
    call = _calls()[0]
    ledger = await DurableLedger.open(_url(tmp_path), T0)
    assert await ledger.claim(call, T0)
    sent_at = T0 + timedelta(milliseconds=3)
    await ledger.update(call.key, State.SENT, sent_at, attempts=1, sent_at=sent_at)
    await ledger.update(call.key, State.OK, T0 + timedelta(seconds=1), task_id=TASK_ID)
    await ledger.close()

    # a restart a few seconds later, then one two days later (outside the load lookback)
    for now in (T0 + timedelta(seconds=5), T0 + timedelta(days=3)):
        reopened = await DurableLedger.open(_url(tmp_path), now)
        try:
            if now == T0 + timedelta(seconds=5):
                entry = await reopened.get(call.key)
                assert entry is not None
                assert (entry.state, entry.task_id, entry.attempts) == (State.OK, TASK_ID, 1)
                assert entry.sent_at == sent_at
            assert await reopened.claim(call, now) is False
        finally:
            await reopened.close()
    store = await Store.open(_url(tmp_path))
    try:
        stored = await store.get(call.key)
        assert stored is not None and stored.state == State.OK and stored.task_id == TASK_ID
    finally:
        await store.close()
    assert not [e for e in captured_logs.events() if e["event"].startswith("store.")]


async def test_a_locked_store_never_stops_firing_and_catches_up_when_it_recovers(
    tmp_path: Path,
    blocker: Callable[[], sqlite3.Connection],
    captured_logs: LogCapture,
) -> None:
    one, two, three, four = _calls(seconds=40)
    ledger = await DurableLedger.open(_url(tmp_path), T0)
    try:
        lock = blocker()
        # the insert fails (after the busy timeout): the claim stands in memory and is queued
        assert await ledger.claim(three, T0) is True
        assert not ledger.healthy
        assert await ledger.claim(one, T0) is True
        await ledger.update(one.key, State.SENT, T0, attempts=1, sent_at=T0)
        await ledger.update(one.key, State.OK, T0, task_id=TASK_ID)
        t2 = T0 + timedelta(seconds=10)
        assert await ledger.claim(two, t2) is True
        await ledger.update(two.key, State.SENT, t2, attempts=1, sent_at=t2)
        await ledger.update(two.key, State.FAILED, t2, detail="stream not live")
        await ledger.heartbeat(t2)
        assert await ledger.claim(one, t2) is False  # memory still guards the key
        assert not ledger.healthy
        entry = await ledger.get(one.key)
        assert entry is not None and (entry.state, entry.task_id) == (State.OK, TASK_ID)
        entry = await ledger.get(two.key)
        assert entry is not None and entry.state == State.FAILED

        (error,) = captured_logs.events("store.error")
        assert error["level"] == "error"
        assert "database is locked" in error["message"]
        assert "firing continues" in error["action"]
        assert not captured_logs.events("store.recovered")

        lock.execute("COMMIT")
        lock.close()
        assert await ledger.flush() is True
        assert ledger.healthy
        (recovered,) = captured_logs.events("store.recovered")
        assert recovered["written"] == 3
        assert len(captured_logs.events("store.error")) == 1
        # after the outage, writes go straight through again, and quietly
        t4 = T0 + timedelta(seconds=30)
        assert await ledger.claim(four, t4) is True
        await ledger.update(four.key, State.SENT, t4, attempts=1, sent_at=t4)
        assert len(captured_logs.events("store.recovered")) == 1
        assert len(captured_logs.events("store.error")) == 1
    finally:
        await ledger.close()

    store = await Store.open(_url(tmp_path))
    try:
        rows = {e.key: e for e in await store.window("news", T0)}
        assert (rows[one.key].state, rows[one.key].task_id) == (State.OK, TASK_ID)
        assert rows[one.key].attempts == 1 and rows[one.key].sent_at == T0
        assert (rows[two.key].state, rows[two.key].detail) == (State.FAILED, "stream not live")
        assert rows[three.key].state == State.CLAIMED
        assert rows[four.key].state == State.SENT
        assert await store.get_meta("last_seen") == str(t2.timestamp())
    finally:
        await store.close()


async def test_each_outage_is_reported_once(
    tmp_path: Path, blocker: Callable[[], sqlite3.Connection], captured_logs: LogCapture
) -> None:
    calls = _calls(seconds=60)
    ledger = await DurableLedger.open(_url(tmp_path), T0)
    try:
        for outage in range(2):
            lock = blocker()
            for call in calls[outage * 3 : outage * 3 + 3]:
                assert await ledger.claim(call, T0)
                await ledger.update(call.key, State.OK, T0)
            lock.execute("COMMIT")
            assert await ledger.flush()
        assert [e["event"] for e in captured_logs.events() if e["event"].startswith("store.")] == [
            "store.error",
            "store.recovered",
            "store.error",
            "store.recovered",
        ]
    finally:
        await ledger.close()
    store = await Store.open(_url(tmp_path))
    try:
        assert {e.state for e in await store.window("news", T0)} == {State.OK}
        assert await store.count() == 6
    finally:
        await store.close()


async def test_close_writes_what_is_still_queued(
    tmp_path: Path, blocker: Callable[[], sqlite3.Connection], captured_logs: LogCapture
) -> None:
    call = _calls()[0]
    ledger = await DurableLedger.open(_url(tmp_path), T0)
    lock = blocker()
    assert await ledger.claim(call, T0)
    await ledger.update(call.key, State.OK, T0, task_id=TASK_ID)
    lock.execute("COMMIT")
    await ledger.close()  # the daemon stops after the disk came back
    assert not captured_logs.events("store.unsaved")
    store = await Store.open(_url(tmp_path))
    try:
        stored = await store.get(call.key)
        assert stored is not None and (stored.state, stored.task_id) == (State.OK, TASK_ID)
    finally:
        await store.close()


async def test_heartbeat_is_what_last_seen_reads_back(tmp_path: Path) -> None:
    ledger = await DurableLedger.open(_url(tmp_path), T0)
    try:
        assert await ledger.last_seen() is None  # a first run
        now = T0 + timedelta(seconds=42, microseconds=250000)
        await ledger.heartbeat(now)
        seen = await ledger.last_seen()
        assert seen is not None and abs((seen - now).total_seconds()) < 1
    finally:
        await ledger.close()
    reopened = await DurableLedger.open(_url(tmp_path), T0 + timedelta(minutes=5))
    try:
        seen = await reopened.last_seen()
        assert seen is not None and abs((seen - now).total_seconds()) < 1
    finally:
        await reopened.close()


async def test_prune_removes_old_rows_from_the_file_and_keeps_recent_ones(
    tmp_path: Path, captured_logs: LogCapture
) -> None:
    old_calls = _calls(T0 - timedelta(days=45), name="old")
    new_calls = _calls(T0 - timedelta(days=1), name="new")
    ledger = await DurableLedger.open(_url(tmp_path), T0 - timedelta(days=45))
    try:
        for call in old_calls:
            assert await ledger.claim(call, call.at)
            await ledger.update(call.key, State.OK, call.at)
        for call in new_calls:
            assert await ledger.claim(call, call.at)
            await ledger.update(call.key, State.OK, call.at)
        await ledger.prune(T0, timedelta(days=30))
    finally:
        await ledger.close()
    (pruned,) = captured_logs.events("store.pruned")
    assert pruned["rows"] == 3 and pruned["older_than_days"] == 30
    store = await Store.open(_url(tmp_path))
    try:
        assert {e.recording for e in await store.recent(100)} == {"new"}
        assert await store.count() == 3
    finally:
        await store.close()


def _live_config(write_config: Callable[[str], Path], endpoint: str, names: list[str]) -> Config:
    start = datetime.now(UTC).astimezone(CST)
    recordings = "\n".join(
        f"  - {{name: {n}, channel_id: {n}, start: '{start:%Y-%m-%d %H:%M:%S}', duration: 60s}}"
        for n in names
    )
    text = f"""
providers:
  lvb: {{endpoint: "{endpoint}", appid: 1234, key: "${{LVB_KEY}}", timeout: 4s}}
recordings:
{recordings}
"""
    return load_config(write_config(text))


@pytest.mark.usefixtures("lvb_env")
async def test_calls_due_together_during_an_outage_are_not_held_up_by_the_disk(
    tmp_path: Path,
    fake_lvb: FakeLvb,
    write_config: Callable[[str], Path],
    blocker: Callable[[], sqlite3.Connection],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first write to fail may wait out the busy timeout; nothing may wait behind it (the
    bug: each call's writes waited it out in turn, four calls 2.5-4 s late). Counted, not
    timed: firing tries the failing store once for the whole outage."""
    monkeypatch.setattr(durable, "RETRY_SECONDS", 3600.0)  # the retrier stays out of it
    names = [f"show{i}" for i in range(4)]
    config = _live_config(write_config, fake_lvb.url, names)
    ledger = await DurableLedger.open(_url(tmp_path), datetime.now(UTC))
    dispatcher = Dispatcher(config, Transport(), ledger, senders=provider_senders)
    real_write, writes = ledger.store.write, []

    async def counted_write(*args: Any, **kwargs: Any) -> Any:
        writes.append(args)
        return await real_write(*args, **kwargs)

    monkeypatch.setattr(ledger.store, "write", counted_write)
    lock = blocker()
    try:
        now = datetime.now(UTC)
        calls = [c for c in plan(config, now, timedelta(seconds=5)) if c.at <= now]
        assert len(calls) == len(names)
        states = await asyncio.gather(*(dispatcher.fire(c) for c in calls))
        assert states == [State.OK] * len(names)
        assert len(fake_lvb.received) == len(names)
        assert len(writes) == 1, f"firing tried the locked store {len(writes)} times"
    finally:
        lock.execute("ROLLBACK")
        await dispatcher.transport.close()
        await ledger.close()


async def test_a_claim_the_database_already_holds_is_refused_and_adopted(
    tmp_path: Path,
) -> None:
    """A key in the file but not in memory (claimed by a peer on the same file): refused, and
    the stored outcome is what `get` shows afterwards."""
    call = _calls()[0]
    ledger = await DurableLedger.open(_url(tmp_path), T0)
    try:
        peer = await Store.open(_url(tmp_path))
        try:
            done = replace(Entry.claimed(call, T0), state=State.OK, task_id=TASK_ID, attempts=1)
            assert await peer.insert_claim(done)
        finally:
            await peer.close()
        assert await ledger.claim(call, T0) is False
        entry = await ledger.get(call.key)
        assert entry is not None and (entry.state, entry.task_id) == (State.OK, TASK_ID)
    finally:
        await ledger.close()
