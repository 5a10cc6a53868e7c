"""Sending calls against the fake provider: at most once, retries spaced, outcomes logged."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scheduler.calls import Call
from scheduler.config import CST, Config, load_config
from scheduler.dispatch import Dispatcher
from scheduler.fakes.lvb import Drop, FakeLvb, HttpStatus, Ret
from scheduler.ledger import MemoryLedger, State
from scheduler.planner import plan
from scheduler.provider_senders import provider_senders
from scheduler.transport import Transport
from tests.conftest import LVB_KEY, LogCapture

WriteConfig = Callable[[str], Path]


def _config(write_config: WriteConfig, endpoint: str, recordings: str) -> Config:
    text = f"""
providers:
  lvb:
    endpoint: {endpoint}
    appid: 1234
    key: ${{LVB_KEY}}
    timeout: 4s
    retry_spacing: 3s
recordings:
{recordings}
"""
    return load_config(write_config(text))


def _window(seconds: int = 60, offset: int = 0) -> str:
    start = (datetime.now(UTC) + timedelta(seconds=offset)).astimezone(CST)
    return f"start: {start:%Y-%m-%d %H:%M:%S}, duration: {seconds}s"


async def _dispatcher(config: Config) -> tuple[Dispatcher, MemoryLedger]:
    ledger = MemoryLedger()
    return Dispatcher(config, Transport(), ledger, senders=provider_senders), ledger


def _due(config: Config) -> list[Call]:
    now = datetime.now(UTC)
    return [c for c in plan(config, now, timedelta(seconds=5)) if c.at <= now]


@pytest.mark.usefixtures("lvb_env")
async def test_a_call_is_signed_sent_once_and_logged(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(
        write_config, fake_lvb.url, f"  - {{name: news, channel_id: 8888_news, {_window()}}}"
    )
    dispatcher, ledger = await _dispatcher(config)
    (call,) = _due(config)
    assert await dispatcher.fire(call) == State.OK
    assert await dispatcher.fire(call) == State.OK  # fired again (a re-applied plan): not sent
    await dispatcher.transport.close()
    (received,) = fake_lvb.received
    assert received.ok and received.params["Param.s.channel_id"] == "8888_news"
    (ok,) = captured_logs.events("call.ok")
    assert ok["task_id"] == str(received.task_id)  # > 2**53, still exact
    assert ok["chunk"] == "1/1" and ok["attempt"] == 1 and ok["recording"] == "news"
    assert ok["scheduled_at"].endswith("+08:00") and ok["lateness_ms"] >= 0
    assert captured_logs.events("call.duplicate_suppressed")[0]["reason"] == "already ok"
    entry = await ledger.get(call.key)
    assert entry is not None and entry.task_id == str(received.task_id)


@pytest.mark.usefixtures("lvb_env")
async def test_same_channel_from_two_entries_inside_3s_is_sent_once(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    window = _window()
    config = _config(
        write_config,
        fake_lvb.url,
        f"  - {{name: news, channel_id: 8888_news, {window}}}\n"
        f"  - {{name: news-copy, channel_id: 8888_news, {window}}}\n"
        f"  - {{name: other, channel_id: 8888_other, {window}}}",
    )
    dispatcher, _ = await _dispatcher(config)
    states = await asyncio.gather(*(dispatcher.fire(c) for c in _due(config)))
    await dispatcher.transport.close()
    assert sorted(states) == sorted([State.OK, State.OK, State.SUPPRESSED])
    channels = sorted(r.params["Param.s.channel_id"] for r in fake_lvb.received)
    assert channels == ["8888_news", "8888_other"]
    (suppressed,) = captured_logs.events("call.duplicate_suppressed")
    assert suppressed["reason"] == "same target within 3s"
    assert suppressed["recording"] in {"news", "news-copy"}


@pytest.mark.usefixtures("lvb_env")
async def test_transient_failures_are_retried_at_least_3s_apart(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_lvb.url, f"  - {{name: news, channel_id: c, {_window()}}}")
    fake_lvb.inject(HttpStatus(502), HttpStatus(503))
    dispatcher, _ = await _dispatcher(config)
    (call,) = _due(config)
    assert await dispatcher.fire(call) == State.OK
    await dispatcher.transport.close()
    arrivals = [r.arrived_at for r in fake_lvb.received]
    assert len(arrivals) == 3
    assert all(b - a >= 3.0 for a, b in itertools.pairwise(arrivals))
    assert [e["status"] for e in captured_logs.events("call.retry")] == [502, 503]
    assert captured_logs.events("call.ok")[0]["attempt"] == 3
    assert len(fake_lvb.tasks) == 1


@pytest.mark.usefixtures("lvb_env")
async def test_ret_nonzero_is_permanent_and_not_retried(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_lvb.url, f"  - {{name: news, channel_id: c, {_window()}}}")
    fake_lvb.inject(Ret(-505, "stream not live"))
    dispatcher, _ledger = await _dispatcher(config)
    (call,) = _due(config)
    assert await dispatcher.fire(call) == State.FAILED
    await dispatcher.transport.close()
    assert len(fake_lvb.received) == 1
    (failed,) = captured_logs.events("call.failed")
    assert failed["level"] == "error" and failed["retryable"] is False
    assert failed["ret"] == -505 and failed["message"] == "stream not live"
    assert not captured_logs.events("call.retry")


@pytest.mark.usefixtures("lvb_env")
async def test_dropped_reply_is_uncertain_and_never_silently_resent(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_lvb.url, f"  - {{name: news, channel_id: c, {_window()}}}")
    fake_lvb.inject(Drop())
    dispatcher, _ = await _dispatcher(config)
    (call,) = _due(config)
    assert await dispatcher.fire(call) == State.OK  # retried 3 s later, answered
    await dispatcher.transport.close()
    arrivals = [r.arrived_at for r in fake_lvb.received]
    # aiohttp would have re-sent the dropped GET at once, by itself: exactly 2 requests, and
    # the second one no sooner than 3 s after the first.
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 3.0
    (uncertain,) = captured_logs.events("call.uncertain")
    assert "may have created a task" in uncertain["message"]


@pytest.mark.usefixtures("lvb_env")
async def test_no_retry_that_would_land_within_3s_of_the_chunk_end(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_lvb.url, f"  - {{name: news, channel_id: c, {_window(5)}}}")
    fake_lvb.inject(HttpStatus(500))
    dispatcher, _ = await _dispatcher(config)
    (call,) = _due(config)
    assert await dispatcher.fire(call) == State.FAILED
    await dispatcher.transport.close()
    assert len(fake_lvb.received) == 1
    (failed,) = captured_logs.events("call.failed")
    assert failed["retryable"] is True and failed["reason"] == "chunk ending"


@pytest.mark.usefixtures("lvb_env")
async def test_a_call_whose_chunk_is_over_is_missed_not_sent(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_lvb.url, f"  - {{name: news, channel_id: c, {_window()}}}")
    (call,) = _due(config)
    clock = lambda: call.deadline + timedelta(seconds=1)  # noqa: E731 - the daemon woke up late
    dispatcher = Dispatcher(
        config, Transport(), MemoryLedger(), clock=clock, senders=provider_senders
    )
    assert await dispatcher.fire(call) == State.MISSED
    await dispatcher.transport.close()
    assert fake_lvb.received == []
    (missed,) = captured_logs.events("call.missed")
    assert missed["level"] == "error" and missed["lateness_ms"] > 0


@pytest.mark.usefixtures("lvb_env")
async def test_dry_run_sends_nothing_and_logs_the_params(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_lvb.url, f"  - {{name: news, channel_id: c, {_window()}}}")
    dispatcher = Dispatcher(
        config, Transport(), MemoryLedger(), dry_run=True, senders=provider_senders
    )
    (call,) = _due(config)
    await dispatcher.fire(call)
    await dispatcher.transport.close()
    assert fake_lvb.received == []
    (dry,) = captured_logs.events("call.dry_run")
    assert dry["params"]["Param.s.channel_id"] == "c" and "sign" not in dry["params"]


@pytest.mark.usefixtures("lvb_env")
async def test_no_key_or_signature_in_any_log_line(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(
        write_config,
        fake_lvb.url,
        f"  - {{name: a, channel_id: a, {_window()}}}\n"
        f"  - {{name: b, channel_id: b, {_window()}}}\n"
        f"  - {{name: c, channel_id: c, {_window()}}}",
    )
    fake_lvb.inject(Ret(-100, "bad sign"), Drop(), HttpStatus(403))
    dispatcher, _ = await _dispatcher(config)
    await asyncio.gather(*(dispatcher.fire(c) for c in _due(config)))
    await dispatcher.transport.close()
    signs = {hashlib.md5((LVB_KEY + r.t).encode()).hexdigest() for r in fake_lvb.received}
    assert signs and captured_logs.events("call.failed")
    for secret in (LVB_KEY, *signs):
        assert secret not in captured_logs.text


@pytest.mark.usefixtures("lvb_env")
async def test_back_to_back_chunks_closer_than_3s_by_jitter_are_both_sent(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    # 3 s chunks: chunk 1 fires 6 ms late, chunk 2 on time, so they reach the wire 2.994 s
    # apart. They record different spans, so neither duplicates the other: both must be sent.
    config = _config(
        write_config, fake_lvb.url, f"  - {{name: news, channel_id: c, chunk: 3s, {_window(6)}}}"
    )
    first, second = plan(config, datetime.now(UTC))
    ticks = iter([100.006, 100.006, 103.0, 103.0])  # monotonic reads: reserve + send, twice
    dispatcher = Dispatcher(
        config,
        Transport(),
        MemoryLedger(),
        clock=lambda: first.start,
        monotonic=lambda: next(ticks, 200.0),
        senders=provider_senders,
    )
    assert await dispatcher.fire(first) == State.OK
    assert await dispatcher.fire(second) == State.OK
    await dispatcher.transport.close()
    assert [r.params["Param.s.start_time"] for r in fake_lvb.received] == [
        first.param("Param.s.start_time"),
        second.param("Param.s.start_time"),
    ]
    assert not captured_logs.events("call.duplicate_suppressed")


@pytest.mark.usefixtures("lvb_env")
async def test_a_provider_clock_far_from_ours_is_logged_and_measured(
    fake_lvb: FakeLvb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_lvb.url, f"  - {{name: news, channel_id: c, {_window()}}}")
    (call,) = _due(config)
    slow = lambda: datetime.now(UTC) - timedelta(seconds=10)  # noqa: E731 - our clock lags 10 s
    dispatcher = Dispatcher(
        config, Transport(), MemoryLedger(), clock=slow, senders=provider_senders
    )
    await dispatcher.fire(call)
    await dispatcher.transport.close()
    (skew,) = captured_logs.events("clock.skew")
    assert 9 <= skew["skew_s"] <= 11 and "NTP" in skew["message"]
    gauge = next(
        sample.value
        for family in text_string_to_metric_families(dispatcher.metrics.render().decode())
        for sample in family.samples
        if sample.name == "recsched_clock_skew_seconds"
    )
    assert 9 <= gauge <= 11
