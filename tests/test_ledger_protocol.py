"""One contract for every Ledger: the memory ledger (--dry-run), the durable SQLite ledger and
the shared PostgreSQL ledger answer the Ledger protocol the same way (issue 16)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.calls import Call
from scheduler.config import parse_config
from scheduler.durable import DurableLedger
from scheduler.ledger import Ledger, MemoryLedger, State
from scheduler.planner import plan
from scheduler.shared import SharedLedger

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _calls() -> list[Call]:
    config = parse_config(
        "providers:\n  lvb: {appid: 1, key: '${K}'}\nrecordings:\n"
        "  - {name: a, channel_id: ca, start: 2030-01-01 20:00:00, duration: 6s, chunk: 3s}\n",
        "t.yaml",
        env={"K": "k"},
    )
    return plan(config, T0)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "memory":
        return "memory", ""
    if request.param == "sqlite":
        return "sqlite", f"sqlite:///{tmp_path}/ledger/recsched.db"
    return "postgresql", str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def ledger(where: tuple[str, str]) -> AsyncIterator[Ledger]:
    kind, url = where
    made: Ledger
    if kind == "memory":
        made = MemoryLedger()
    elif kind == "sqlite":
        durable = await DurableLedger.open(url, T0)
        durable.start()
        made = durable
    else:
        made = await SharedLedger.open(url, owner="me", lease=timedelta(0), config_hash="h")
    try:
        yield made
    finally:
        await made.close()


async def test_a_key_is_claimed_once(ledger: Ledger) -> None:
    first, _ = _calls()
    assert await ledger.claim(first, T0)
    assert not await ledger.claim(first, T0)
    entry = await ledger.get(first.key)
    assert entry is not None and entry.state == State.CLAIMED
    assert await ledger.peer_lease(first.key) is None  # our own claim holds no one back


async def test_sent_then_ok_keeps_the_task_id_and_the_attempts(ledger: Ledger) -> None:
    first, _ = _calls()
    assert await ledger.claim(first, T0)
    assert await ledger.mark_sent(first.key, T0, attempts=1, uncertain=False, hold_s=10)
    sent = await ledger.get(first.key)
    assert sent is not None and sent.state == State.SENT and sent.attempts == 1
    await ledger.update(
        first.key, State.OK, T0 + timedelta(seconds=1), task_id="18446744073709551615"
    )
    done = await ledger.get(first.key)
    assert done is not None and done.state == State.OK
    assert done.task_id == "18446744073709551615"  # > 2**53: kept as text
    assert done.sent_at is not None and abs((done.sent_at - T0).total_seconds()) < 1


async def test_a_window_lists_its_chunks_in_order(ledger: Ledger) -> None:
    calls = _calls()
    for call in reversed(calls):
        assert await ledger.claim(call, T0)
    entries = await ledger.window(calls[0].recording, calls[0].window_start)
    assert [e.chunk for e in entries] == [1, 2]


async def test_unsettled_calls_are_those_a_crash_left_claimed_or_sent(ledger: Ledger) -> None:
    first, second = _calls()
    for call in (first, second):
        assert await ledger.claim(call, T0)
    # hold_s=0: its sender died at once (a shared ledger leaves out calls a live lease holds)
    assert await ledger.mark_sent(first.key, T0, attempts=1, uncertain=False, hold_s=0)
    await ledger.update(second.key, State.OK, T0)
    after = second.deadline + timedelta(seconds=1)
    assert [e.key for e in await ledger.unsettled(after)] == [first.key]
    assert await ledger.unsettled(first.start) == []  # its span has not ended yet


async def test_heartbeat_is_what_recovery_looks_back_to(ledger: Ledger) -> None:
    assert await ledger.last_seen() is None
    await ledger.heartbeat(T0)
    seen = await ledger.last_seen()
    assert seen is not None and abs((seen - T0).total_seconds()) < 1
    assert ledger.healthy


async def test_prune_forgets_what_is_older_than_the_retention(ledger: Ledger) -> None:
    first, _ = _calls()
    assert await ledger.claim(first, T0)
    await ledger.update(first.key, State.OK, T0)
    await ledger.prune(T0 + timedelta(days=1), timedelta(days=30))
    assert await ledger.get(first.key) is not None
    await ledger.prune(T0 + timedelta(days=31), timedelta(days=30))
    assert await ledger.get(first.key) is None


async def test_open_tasks_are_ok_calls_with_a_task_id_whose_span_is_open(ledger: Ledger) -> None:
    first, second = _calls()
    for call in (first, second):
        assert await ledger.claim(call, T0)
    await ledger.update(first.key, State.OK, T0, task_id="T1")
    await ledger.update(second.key, State.FAILED, T0, task_id="T2")
    action = first.action
    assert [e.key for e in await ledger.open_tasks([action], first.start)] == [first.key]
    (entry,) = await ledger.open_tasks([action], first.start)
    assert entry.task_id == "T1" and entry.span_end == first.deadline
    assert await ledger.open_tasks(["CreateRecordTask"], first.start) == []  # other actions
    assert await ledger.open_tasks([action], first.deadline) == []  # its span has ended
