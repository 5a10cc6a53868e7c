"""An answer's bookkeeping waits for the requests still on the wire (wire.py): never longer
than its cap, never forever, and with the outcome still durable before the call's task ends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.calls import Call
from scheduler.config import Config, load_config
from scheduler.dispatch import Dispatcher
from scheduler.durable import DurableLedger
from scheduler.fakes.lvb import Delay, FakeLvb, Ret
from scheduler.ledger import MemoryLedger, State
from scheduler.planner import plan
from scheduler.provider_senders import provider_senders
from scheduler.transport import Transport
from scheduler.wire import Wire
from tests.conftest import LogCapture
from tests.test_early_hand_over import _start


def _lines(logs: LogCapture, recording: str) -> list[str]:
    """The events logged about one recording's calls, in order."""
    return [e["event"] for e in logs.events() if e.get("recording") == recording]


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)  # one turn of the event loop each (no clock involved)


async def test_with_nothing_on_the_wire_an_answer_is_recorded_at_once() -> None:
    wire = Wire(wait_max=60)
    waiter = asyncio.ensure_future(wire.quiet())
    await _turns(1)
    assert waiter.done()


async def test_an_answer_waits_until_every_open_request_is_answered() -> None:
    wire = Wire(wait_max=60)
    with wire.request():
        with wire.request():
            waiter = asyncio.ensure_future(wire.quiet())
            await _turns()
            assert not waiter.done() and wire.waiting == 1
        await _turns()
        assert not waiter.done()  # one request is still open
    await _turns()
    assert waiter.done() and wire.waiting == 0 and wire.open == 0


async def test_a_request_that_raises_still_leaves_the_wire() -> None:
    wire = Wire(wait_max=60)
    with pytest.raises(TimeoutError), wire.request():
        raise TimeoutError
    assert wire.open == 0
    async with asyncio.timeout(10):
        await wire.quiet()


async def test_a_request_that_never_ends_holds_no_answer_past_the_cap() -> None:
    wire = Wire(wait_max=0.02)
    with wire.request():  # hung: answered only when the test is over
        async with asyncio.timeout(10):  # a hang here is the failure, not a slow machine
            await asyncio.gather(wire.quiet(), wire.quiet())
        assert wire.open == 1 and wire.waiting == 0
        async with asyncio.timeout(10):
            await wire.quiet()  # a new wave gets a new cap


async def test_a_cancelled_waiter_is_skipped_and_the_others_are_woken() -> None:
    wire = Wire(wait_max=60)
    with wire.request():
        first = asyncio.ensure_future(wire.quiet())
        second = asyncio.ensure_future(wire.quiet())
        await _turns()
        first.cancel()  # its call was cancelled (a forced stop) while it waited
    await _turns()
    assert first.cancelled() and second.done() and not second.cancelled()


async def test_a_cap_of_zero_never_waits() -> None:
    wire = Wire(wait_max=0)
    with wire.request():
        waiter = asyncio.ensure_future(wire.quiet())
        await _turns(1)
        assert waiter.done()


async def test_an_action_runs_at_once_when_nothing_is_on_the_wire() -> None:
    wire, done = Wire(wait_max=60), []
    wire.later(lambda: done.append("line"))
    assert done == ["line"]


async def test_actions_wait_for_the_wire_and_run_in_order_before_any_waiter_goes_on() -> None:
    wire, order = Wire(wait_max=60), []

    async def record() -> None:
        await wire.quiet()
        order.append("recorded")

    with wire.request():
        wire.later(lambda: order.append("sent 1"))
        wire.later(lambda: order.append("sent 2"))
        waiter = asyncio.ensure_future(record())
        await _turns()
        assert order == []  # a request is still on the wire
    await _turns()
    assert waiter.done() and order == ["sent 1", "sent 2", "recorded"]


async def test_an_actions_handle_runs_it_now_and_only_once() -> None:
    wire, done = Wire(wait_max=60), []
    with wire.request():
        run_now = wire.later(lambda: done.append("line"))
        run_now()  # its call failed: its call.sent line must come before call.failed
        run_now()
        assert done == ["line"]
    assert done == ["line"]


async def test_a_hung_request_holds_no_action_past_the_cap() -> None:
    wire, done = Wire(wait_max=0.02), asyncio.Event()
    with wire.request():
        wire.later(done.set)
        async with asyncio.timeout(10):  # a hang here is the failure
            await done.wait()


def _broken_line() -> None:
    raise ZeroDivisionError


async def test_an_action_that_raises_stops_neither_the_others_nor_the_waiters() -> None:
    loop = asyncio.get_running_loop()
    reported: list[BaseException] = []
    loop.set_exception_handler(lambda _, context: reported.append(context["exception"]))
    wire, done = Wire(wait_max=60), []
    try:
        with wire.request():
            wire.later(_broken_line)
            wire.later(lambda: done.append("next"))
            waiter = asyncio.ensure_future(wire.quiet())
            await _turns()
        await _turns()
    finally:
        loop.set_exception_handler(None)
    assert done == ["next"] and waiter.done()
    assert [type(e) for e in reported] == [ZeroDivisionError]


def _two_calls(
    write_config: Callable[[str], Path], url: str, first: str, second: str
) -> tuple[Config, dict[str, Call]]:
    """Two LVB recordings whose one chunk each is due now, by name."""
    config = load_config(
        write_config(
            f"providers:\n  lvb: {{endpoint: '{url}', appid: 1234, key: '${{LVB_KEY}}'}}\n"
            "recordings:\n"
            + "".join(
                f"  - {{name: {name}, channel_id: {name}, start: '{_start(-1)}', duration: 60s}}\n"
                for name in (first, second)
            )
        )
    )
    return config, {c.recording: c for c in plan(config, datetime.now(UTC))}


class Watched(Wire):
    """The real Wire, which also says when an answer first waits to be recorded."""

    def __init__(self, wait_max: float) -> None:
        super().__init__(wait_max)
        self.answered = asyncio.Event()

    async def quiet(self) -> None:
        if self.open:
            self.answered.set()
        await super().quiet()


@pytest.mark.usefixtures("lvb_env")
async def test_a_call_answered_while_another_waits_is_recorded_once_that_one_is_answered(
    fake_lvb: FakeLvb,
    write_config: Callable[[str], Path],
    tmp_path: Path,
    captured_logs: LogCapture,
) -> None:
    config, calls = _two_calls(write_config, fake_lvb.url, "slow", "quick")
    ledger = await DurableLedger.open(f"sqlite:///{tmp_path}/recsched.db", datetime.now(UTC))
    wire = Watched(wait_max=60)
    dispatcher = Dispatcher(config, Transport(), ledger, senders=provider_senders, wire=wire)
    fake_lvb.inject(Delay(60))  # the first request is answered when the fake stops
    try:
        async with asyncio.timeout(30):
            slow = asyncio.ensure_future(dispatcher.fire(calls["slow"]))
            await fake_lvb.wait_for_requests(1, timeout=30)
            quick = asyncio.ensure_future(dispatcher.fire(calls["quick"]))
            await wire.answered.wait()  # quick's answer is read; its record waits
            entry = await ledger.get(calls["quick"].key)
            assert entry is not None and entry.state == State.SENT
            assert wire.waiting == 1 and not quick.done()
            assert _lines(captured_logs, "quick") == []  # its call.sent line waits too
            await fake_lvb.stop()  # slow is answered now
            assert await asyncio.gather(slow, quick) == [State.OK, State.OK]
        assert _lines(captured_logs, "quick") == ["call.sent", "call.ok"]
        (sent,) = (e for e in captured_logs.events("call.sent") if e["recording"] == "quick")
        assert sent["sent_at"] <= sent["ts_cst"]  # written after it went, saying when it went
        for call in calls.values():  # both outcomes durable when fire() returned
            stored = await ledger.store.get(call.key)
            assert stored is not None and stored.state == State.OK and stored.task_id
    finally:
        await dispatcher.transport.close()
        await ledger.close()


@pytest.mark.usefixtures("lvb_env")
async def test_a_hung_request_delays_another_calls_outcome_no_longer_than_the_cap(
    fake_lvb: FakeLvb, write_config: Callable[[str], Path]
) -> None:
    config, calls = _two_calls(write_config, fake_lvb.url, "hung", "quick")
    dispatcher = Dispatcher(
        config, Transport(), MemoryLedger(), senders=provider_senders, wire=Wire(wait_max=0.05)
    )
    fake_lvb.inject(Delay(60))
    try:
        hung = asyncio.ensure_future(dispatcher.fire(calls["hung"]))
        await fake_lvb.wait_for_requests(1, timeout=30)
        async with asyncio.timeout(30):
            assert await dispatcher.fire(calls["quick"]) == State.OK
        assert not hung.done() and dispatcher.wire.open == 1
        await fake_lvb.stop()
        assert await hung == State.OK
    finally:
        await dispatcher.transport.close()


@pytest.mark.usefixtures("lvb_env")
async def test_a_failed_call_logs_call_sent_before_its_failure_while_others_are_on_the_wire(
    fake_lvb: FakeLvb, write_config: Callable[[str], Path], captured_logs: LogCapture
) -> None:
    config, calls = _two_calls(write_config, fake_lvb.url, "hung", "refused")
    dispatcher = Dispatcher(
        config, Transport(), MemoryLedger(), senders=provider_senders, wire=Wire(wait_max=60)
    )
    fake_lvb.inject(Delay(60), Ret(20601, "stream not live"))
    try:
        hung = asyncio.ensure_future(dispatcher.fire(calls["hung"]))
        await fake_lvb.wait_for_requests(1, timeout=30)
        async with asyncio.timeout(30):
            assert await dispatcher.fire(calls["refused"]) == State.FAILED
        assert dispatcher.wire.open == 1  # hung is still on the wire
        assert _lines(captured_logs, "refused") == ["call.sent", "call.failed"]
        await fake_lvb.stop()
        assert await hung == State.OK
    finally:
        await dispatcher.transport.close()
