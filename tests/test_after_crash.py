"""The dispatcher after a restart: a key found `sent` was interrupted mid-request, so it is not
re-sent (default) or re-sent only after the provider's 3 s duplicate window; a key only
`claimed` never reached the wire and is sent; a final outcome is never sent again."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.calls import Call
from scheduler.config import CST, DUPLICATE_WINDOW, Config, load_config
from scheduler.dispatch import Dispatcher
from scheduler.durable import DurableLedger
from scheduler.fakes.lvb import Delay, FakeLvb
from scheduler.ledger import Entry, Ledger, MemoryLedger, State
from scheduler.planner import plan
from scheduler.provider_senders import provider_senders
from scheduler.transport import Transport
from tests.conftest import LogCapture

WriteConfig = Callable[[str], Path]
pytestmark = pytest.mark.usefixtures("lvb_env")


def _config(write_config: WriteConfig, endpoint: str, *, resend: bool = False) -> Config:
    start = datetime.now(UTC).astimezone(CST)
    text = f"""
providers:
  lvb:
    endpoint: {endpoint}
    appid: 1234
    key: ${{LVB_KEY}}
    timeout: 4s
    retry_spacing: 3s
    resend_after_crash: {"true" if resend else "false"}
recordings:
  - {{name: news, channel_id: 8888_news, start: '{start:%Y-%m-%d %H:%M:%S}', duration: 60s}}
"""
    return load_config(write_config(text))


def _due(config: Config) -> Call:
    now = datetime.now(UTC)
    (call,) = [c for c in plan(config, now, timedelta(seconds=5)) if c.at <= now]
    return call


def _sent_before_crash(call: Call, sent_at: datetime) -> Entry:
    """What the ledger holds when the daemon died while the request was in flight."""
    return replace(Entry.claimed(call, call.at), state=State.SENT, attempts=1, sent_at=sent_at)


async def _fire(config: Config, ledger: Ledger, call: Call) -> State:
    dispatcher = Dispatcher(config, Transport(), ledger, senders=provider_senders)
    try:
        return await dispatcher.fire(call)
    finally:
        await dispatcher.transport.close()


async def test_by_default_a_call_found_sent_is_not_sent_again_but_flagged(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_lvb.url)
    call = _due(config)
    sent_at = datetime.now(UTC) - timedelta(seconds=5)
    ledger = MemoryLedger([_sent_before_crash(call, sent_at)])
    assert await _fire(config, ledger, call) == State.UNCERTAIN
    assert fake_lvb.received == []
    entry = await ledger.get(call.key)
    assert entry is not None
    assert (entry.state, entry.uncertain, entry.attempts) == (State.UNCERTAIN, True, 1)
    assert entry.sent_at == sent_at
    (line,) = captured_logs.events("call.uncertain")
    assert line["level"] == "error" and line["resent"] is False
    assert line["call_key"] == call.key and line["attempt"] == 1
    assert line["sent_at"] == sent_at.astimezone(CST).isoformat(timespec="milliseconds")
    assert "check the console" in line["message"]
    assert not captured_logs.events("call.sent")
    # fired again (a re-applied plan): now a final outcome, still nothing sent
    assert await _fire(config, ledger, call) == State.UNCERTAIN
    assert fake_lvb.received == []


async def test_resend_after_crash_waits_out_the_duplicate_window(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_lvb.url, resend=True)
    call = _due(config)
    sent_at = datetime.now(UTC) - timedelta(seconds=1)
    ledger = MemoryLedger([_sent_before_crash(call, sent_at)])
    assert await _fire(config, ledger, call) == State.OK
    (received,) = fake_lvb.received
    assert received.ok
    assert received.arrived_at >= (sent_at + DUPLICATE_WINDOW).timestamp()
    (line,) = captured_logs.events("call.uncertain")
    assert line["resent"] is True and line["level"] == "warning"
    assert "duplicate task may result" in line["message"]
    entry = await ledger.get(call.key)
    assert entry is not None
    assert (entry.state, entry.uncertain, entry.attempts) == (State.OK, True, 2)
    assert entry.task_id == str(received.task_id)
    (ok,) = captured_logs.events("call.ok")
    assert ok["attempt"] == 2


async def test_resend_after_crash_long_after_the_first_send_goes_out_at_once(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_lvb.url, resend=True)
    call = _due(config)
    ledger = MemoryLedger([_sent_before_crash(call, datetime.now(UTC) - timedelta(seconds=10))])
    began = datetime.now(UTC)
    assert await _fire(config, ledger, call) == State.OK
    (received,) = fake_lvb.received
    # nothing left to wait for: not another duplicate window (3 s) after the restart
    assert received.arrived_at - began.timestamp() < 3.0


async def test_a_call_only_claimed_before_the_restart_is_sent(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_lvb.url)
    call = _due(config)
    ledger = MemoryLedger([Entry.claimed(call, call.at)])
    assert await _fire(config, ledger, call) == State.OK
    (received,) = fake_lvb.received
    assert received.ok and received.params["Param.s.channel_id"] == "8888_news"
    (recovered,) = captured_logs.events("call.recovered")
    assert recovered["call_key"] == call.key
    assert not captured_logs.events("call.uncertain")
    entry = await ledger.get(call.key)
    assert entry is not None and (entry.state, entry.uncertain) == (State.OK, False)
    assert entry.task_id == str(received.task_id)


@pytest.mark.parametrize("final", [State.OK, State.FAILED, State.SUPPRESSED, State.MISSED])
async def test_a_call_with_a_final_outcome_is_never_sent_again(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture, final: State
) -> None:
    config = _config(write_config, fake_lvb.url, resend=True)
    call = _due(config)
    done = replace(Entry.claimed(call, call.at), state=final, attempts=1, task_id="7")
    ledger = MemoryLedger([done])
    assert await _fire(config, ledger, call) == final
    assert fake_lvb.received == []
    (line,) = captured_logs.events("call.duplicate_suppressed")
    assert line["reason"] == f"already {final}"
    assert await ledger.get(call.key) == done  # untouched


@pytest.mark.parametrize("durable", [False, True], ids=["memory", "durable"])
async def test_the_same_call_fired_twice_at_once_is_sent_once(
    fake_lvb: FakeLvb,
    write_config: WriteConfig,
    captured_logs: LogCapture,
    tmp_path: Path,
    durable: bool,
) -> None:
    config = _config(write_config, fake_lvb.url)
    call = _due(config)
    ledger: MemoryLedger | DurableLedger = (
        await DurableLedger.open(f"sqlite:///{tmp_path}/x/recsched.db", datetime.now(UTC))
        if durable
        else MemoryLedger()
    )
    dispatcher = Dispatcher(config, Transport(), ledger, senders=provider_senders)
    try:
        states = await asyncio.gather(dispatcher.fire(call), dispatcher.fire(call))
    finally:
        await dispatcher.transport.close()
        await ledger.close()
    assert len(fake_lvb.received) == 1
    assert State.OK in states
    assert len(captured_logs.events("call.ok")) == 1
    assert len(captured_logs.events("call.duplicate_suppressed")) == 1


async def test_a_real_restart_with_a_request_in_flight_is_not_resent_by_default(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture, tmp_path: Path
) -> None:
    """The whole path through the file: the daemon dies while the provider holds the request;
    the next run finds the key `sent` and does not create a second task."""
    url = f"sqlite:///{tmp_path}/x/recsched.db"
    config = _config(write_config, fake_lvb.url)
    call = _due(config)
    fake_lvb.inject(Delay(30))  # the answer never comes before the "crash"
    ledger = await DurableLedger.open(url, datetime.now(UTC))
    first = Dispatcher(config, Transport(), ledger, senders=provider_senders)
    task = asyncio.create_task(first.fire(call))
    await fake_lvb.wait_for_requests(1, timeout=10)
    task.cancel()  # the process dies: nothing after this point runs
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await first.transport.close()
    await ledger.store.close()  # no close(): a crash writes nothing more

    reopened = await DurableLedger.open(url, datetime.now(UTC))
    try:
        entry = await reopened.get(call.key)
        assert entry is not None and entry.state == State.SENT
        assert await _fire(config, reopened, call) == State.UNCERTAIN
    finally:
        await reopened.close()
    assert len(fake_lvb.received) == 1
    (line,) = captured_logs.events("call.uncertain")
    assert line["resent"] is False and line["level"] == "error"


async def test_a_resend_after_crash_is_3s_after_the_real_first_request(
    fake_lvb: FakeLvb, write_config: WriteConfig, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/x/recsched.db"
    config = _config(write_config, fake_lvb.url, resend=True)
    call = _due(config)
    fake_lvb.inject(Delay(30))
    ledger = await DurableLedger.open(url, datetime.now(UTC))
    blocker = sqlite3.connect(tmp_path / "x" / "recsched.db", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # the disk is slow/locked as the call fires
        first = Dispatcher(config, Transport(), ledger, senders=provider_senders)
        task = asyncio.create_task(first.fire(call))
        await fake_lvb.wait_for_requests(1, timeout=10)
        blocker.execute("COMMIT")  # the disk comes back; the queued `sent` row is written
        assert await ledger.flush()
        task.cancel()  # then the daemon dies with the request still unanswered
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await first.transport.close()
        await ledger.store.close()
    finally:
        blocker.close()

    reopened = await DurableLedger.open(url, datetime.now(UTC))
    try:
        entry = await reopened.get(call.key)
        assert entry is not None and entry.state == State.SENT
        assert await _fire(config, reopened, call) == State.OK
    finally:
        await reopened.close()
    first_arrival, resend_arrival = (r.arrived_at for r in fake_lvb.received)
    assert resend_arrival - first_arrival >= DUPLICATE_WINDOW.total_seconds()
