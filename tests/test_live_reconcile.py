"""Issue 17, "Reload and removal": a LIVE API 3.0 task the YAML no longer has is deleted (not
started yet) or stopped (running: now, or at its shortened window's new end), once, whether the
edit is applied by a reload or found at the next start (the ledger keeps the TaskIds)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler import live_plan
from scheduler.calls import Call
from scheduler.clock import wall_clock
from scheduler.config import CST, load_config, parse_config
from scheduler.durable import DurableLedger
from scheduler.fakes.live import FakeLive, Received
from scheduler.ledger import Entry, Ledger, MemoryLedger, State
from scheduler.planner import plan
from scheduler.providers import live
from scheduler.recovery import recover
from scheduler.service import Service
from tests.conftest import LogCapture

WriteConfig = Callable[[str], Path]
SECRET_ID, SECRET_KEY = "AKIDreconcile0001", "live-reconcile-key-41aa"
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

# -- the pure decision ------------------------------------------------------------------------


def _plan(recordings: str, now: datetime = T0) -> list[Call]:
    config = parse_config(
        "providers:\n  tc: {type: live, secret_id: '${I}', secret_key: '${K}'}\n"
        f"recordings:\n{recordings}",
        "t.yaml",
        env={"I": "AKIDx", "K": "k"},
    )
    return plan(config, now)


def _rec(start: datetime, duration: str, name: str = "news") -> str:
    return (
        f"  - {{name: {name}, provider: tc, start: '{start.astimezone(CST):%Y-%m-%d %H:%M:%S}',"
        f" duration: {duration}, domain: d.example.com, app: live, stream: {name}}}\n"
    )


def _created(call: Call, task_id: str = "T1") -> Entry:
    return replace(Entry.claimed(call, call.at), state=State.OK, task_id=task_id)


def test_a_task_still_planned_as_it_is_is_kept() -> None:
    (call,) = _plan(_rec(T0 + timedelta(hours=1), "1h"))
    assert live_plan.reconcile([_created(call)], [call], T0) == []


def test_a_future_task_no_longer_planned_is_deleted_once() -> None:
    (call,) = _plan(_rec(T0 + timedelta(hours=1), "1h"))
    entry = _created(call)
    (decision,) = live_plan.reconcile([entry], [], T0)
    assert (decision.action, decision.at, decision.key) == (
        live.DELETE,
        T0,
        f"{call.key}/{live.DELETE}",
    )
    deleted = _created(live_plan.follow_up_call(decision), "T1")
    assert live_plan.reconcile([entry, deleted], [], T0) == []  # done already


def test_a_running_task_removed_is_stopped_now() -> None:
    (call,) = _plan(_rec(T0 - timedelta(minutes=5), "1h"))
    (decision,) = live_plan.reconcile([_created(call)], [], T0)
    assert (decision.action, decision.at) == (live.STOP, T0)


def test_a_task_starting_within_the_margin_is_stopped_not_deleted() -> None:
    (call,) = _plan(_rec(T0 + timedelta(seconds=10), "1h"))
    (decision,) = live_plan.reconcile([_created(call)], [], T0)
    assert decision.action == live.STOP


def test_a_shortened_window_is_stopped_at_its_new_end_or_now() -> None:
    (old,) = _plan(_rec(T0 - timedelta(minutes=5), "1h"))
    (new,) = _plan(_rec(T0 - timedelta(minutes=5), "30m"))
    assert new.key == old.key and new.deadline < old.deadline
    (decision,) = live_plan.reconcile([_created(old)], [new], T0)
    assert (decision.action, decision.at) == (live.STOP, new.deadline)
    stop = live_plan.follow_up_call(decision)
    assert (stop.at, stop.deadline, stop.data) == (new.deadline, old.deadline, '{"TaskId": "T1"}')
    assert stop.target != old.target  # no 3 s rule against the stream's creates
    later = T0 + timedelta(minutes=40)  # the new end has passed: stop at once
    (decision,) = live_plan.reconcile([_created(old)], [new], later)
    assert decision.at == later
    stopped = replace(_created(stop), span_start=new.deadline)
    assert live_plan.reconcile([_created(old), stopped], [new], later) == []


def test_a_lengthened_window_and_ended_or_other_tasks_are_left_alone() -> None:
    (old,) = _plan(_rec(T0 - timedelta(minutes=5), "30m"))
    (new,) = _plan(_rec(T0 - timedelta(minutes=5), "1h"))
    assert live_plan.reconcile([_created(old)], [new], T0) == []
    ended = T0 + timedelta(minutes=30)
    assert live_plan.reconcile([_created(old)], [], ended) == []
    failed = replace(_created(old), state=State.FAILED)
    no_id = replace(_created(old), task_id="")
    assert live_plan.reconcile([failed, no_id], [], T0) == []


# -- against the fake, in process -------------------------------------------------------------


@pytest.fixture
async def fake_live(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeLive]:
    monkeypatch.setenv("TC_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TC_SECRET_KEY", SECRET_KEY)
    fake = FakeLive(SECRET_ID, SECRET_KEY)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def _yaml(fake: FakeLive, tmp_path: Path, *recordings: str) -> str:
    far = datetime.now(UTC) + timedelta(days=1)  # never created in a test: keeps the file valid
    return f"""
providers:
  tencent:
    type: live
    endpoint: {fake.url}
    secret_id: ${{TC_SECRET_ID}}
    secret_key: ${{TC_SECRET_KEY}}
    timeout: 4s
    retry_spacing: 3s
state: {{url: "sqlite:///{tmp_path}/state/recsched.db"}}
recordings:
  - {{name: other, provider: tencent, start: '{far.astimezone(CST):%Y-%m-%d %H:%M:%S}',
     duration: 1h, lead: 1m, domain: push.example.com, app: live, stream: other}}
{"".join(recordings)}"""


def _news(start: datetime, duration: str, lead: str = "1m") -> str:
    return (
        f"  - {{name: news, provider: tencent, start: '{start.astimezone(CST):%Y-%m-%d %H:%M:%S}'"
        f", duration: {duration}, lead: {lead}, domain: push.example.com, app: live,"
        " stream: news}\n"
    )


def _actions(fake: FakeLive, action: str) -> list[Received]:
    return [r for r in fake.received if r.action == action and r.ok]


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 (the fake's state, seen from this test)
            await asyncio.sleep(0.02)


async def _service(path: Path, ledger: Ledger) -> Service:
    service = Service(load_config(path), ledger, dry_run=False, clock=wall_clock)
    await service.start()
    return service


async def _created_task(fake: FakeLive, ledger: Ledger) -> str:
    await fake.wait_for_tasks(1)
    (task,) = fake.live_tasks()

    async def stored() -> bool:
        entries = await ledger.open_tasks([live.CREATE], datetime.now(UTC))
        return any(e.task_id == task.task_id for e in entries)

    async with asyncio.timeout(5):
        while not await stored():  # noqa: ASYNC110 (the ledger's state, seen from this test)
            await asyncio.sleep(0.02)
    return task.task_id


async def test_a_reload_that_removes_a_future_recording_deletes_its_task(
    fake_live: FakeLive, write_config: WriteConfig, tmp_path: Path, captured_logs: LogCapture
) -> None:
    start = datetime.now(UTC) + timedelta(minutes=10)
    path = write_config(_yaml(fake_live, tmp_path, _news(start, "1h", lead="15m")))
    ledger = MemoryLedger()
    service = await _service(path, ledger)
    try:
        task_id = await _created_task(fake_live, ledger)
        path.write_text(_yaml(fake_live, tmp_path))
        assert (await service.reloader.request()).ok
        await _until(lambda: bool(_actions(fake_live, live.DELETE)))
    finally:  # stop() drains in-flight calls: a second Delete would be counted below
        await service.stop(None)
    (delete,) = _actions(fake_live, live.DELETE)
    assert delete.body == {"TaskId": task_id}
    assert fake_live.live_tasks() == [] and not _actions(fake_live, live.STOP)
    (ok,) = [e for e in captured_logs.events("call.ok") if e["action"] == live.DELETE]
    assert ok["task_id"] == task_id and ok["recording"] == "news"
    assert not captured_logs.events("recording.kept_running")


async def test_a_reload_that_shortens_a_running_recording_stops_it_at_the_new_end(
    fake_live: FakeLive, write_config: WriteConfig, tmp_path: Path
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    path = write_config(_yaml(fake_live, tmp_path, _news(start, "1h")))
    ledger = MemoryLedger()
    service = await _service(path, ledger)
    try:
        task_id = await _created_task(fake_live, ledger)
        path.write_text(_yaml(fake_live, tmp_path, _news(start, "7s")))
        assert (await service.reloader.request()).ok
        assert not _actions(fake_live, live.STOP)  # armed at the new end, not sent yet
        await _until(lambda: bool(_actions(fake_live, live.STOP)))
    finally:
        await service.stop(None)
    (stop,) = _actions(fake_live, live.STOP)
    new_end = start.timestamp() + 7
    assert stop.body == {"TaskId": task_id} and stop.at >= new_end
    assert fake_live.tasks[task_id].stopped >= int(new_end)
    assert not _actions(fake_live, live.DELETE)


async def test_a_reload_that_changes_nothing_sends_nothing(
    fake_live: FakeLive, write_config: WriteConfig, tmp_path: Path
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    path = write_config(_yaml(fake_live, tmp_path, _news(start, "1h")))
    ledger = MemoryLedger()
    service = await _service(path, ledger)
    try:
        task_id = await _created_task(fake_live, ledger)
        path.write_text(_yaml(fake_live, tmp_path, _news(start, "1h")) + "\n# touched\n")
        assert (await service.reloader.request()).ok
        await asyncio.sleep(0.3)
        assert [r.action for r in fake_live.received] == [live.CREATE]
        path.write_text(_yaml(fake_live, tmp_path, _news(start, "1s")))  # over: stop it now
        assert (await service.reloader.request()).ok
        await _until(lambda: bool(_actions(fake_live, live.STOP)))
        for _ in range(2):  # the same file again: the Stop is not sent twice
            assert (await service.reloader.request()).ok
        await asyncio.sleep(0.3)
    finally:
        await service.stop(None)
    assert [r.action for r in fake_live.received] == [live.CREATE, live.STOP]
    assert fake_live.tasks[task_id].stopped


async def test_a_removal_while_the_daemon_was_down_is_reconciled_at_the_next_start(
    fake_live: FakeLive, write_config: WriteConfig, tmp_path: Path
) -> None:
    future = datetime.now(UTC) + timedelta(minutes=10)
    running = datetime.now(UTC) - timedelta(minutes=1)
    both = _news(future, "1h", lead="15m") + _news(running, "1h").replace(
        "name: news", "name: begun"
    ).replace("stream: news", "stream: begun")
    path = write_config(_yaml(fake_live, tmp_path, both))
    url = f"sqlite:///{tmp_path}/state/recsched.db"
    ledger = await DurableLedger.open(url, datetime.now(UTC))
    ledger.start()
    service = await _service(path, ledger)
    try:
        await fake_live.wait_for_tasks(2)
        await _until(lambda: len(fake_live.creates()) == 2)

        async def both_stored() -> bool:
            entries = await ledger.open_tasks([live.CREATE], datetime.now(UTC))
            return len([e for e in entries if e.task_id]) == 2

        async with asyncio.timeout(5):  # the TaskIds the next start must act on
            while not await both_stored():  # noqa: ASYNC110 (the ledger's state)
                await asyncio.sleep(0.02)
    finally:
        await service.stop(None)
        await ledger.close()
    by_stream = {t.stream: t.task_id for t in fake_live.live_tasks()}
    path.write_text(_yaml(fake_live, tmp_path))  # both removed while the daemon is down
    for restart in range(2):  # a second restart sends nothing again
        ledger = await DurableLedger.open(url, datetime.now(UTC))
        ledger.start()
        await recover(load_config(path), ledger, datetime.now(UTC))
        service = await _service(path, ledger)
        try:
            await _until(lambda: bool(_actions(fake_live, live.DELETE)))
            await _until(lambda: bool(_actions(fake_live, live.STOP)))
            await asyncio.sleep(0.3 if restart else 0.1)
        finally:
            await service.stop(None)
            await ledger.close()
    (delete,) = _actions(fake_live, live.DELETE)
    (stop,) = _actions(fake_live, live.STOP)
    assert delete.body == {"TaskId": by_stream["news"]}
    assert stop.body == {"TaskId": by_stream["begun"]}
    assert fake_live.tasks[by_stream["news"]].deleted
    assert fake_live.tasks[by_stream["begun"]].stopped
