"""The LIVE API 3.0 sender against the in-process fake on loopback: signed creates, errors
classified with Tencent's message, a lost answer and a crash after `sent` looked up with
DescribeRecordTask (adopted, or created again once the 3 s window has passed)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.calls import Call
from scheduler.config import CST, DUPLICATE_WINDOW, Config, load_config
from scheduler.dispatch import Dispatcher
from scheduler.fakes.live import Drop, ErrorCode, FakeLive, Task
from scheduler.ledger import Entry, MemoryLedger, State
from scheduler.planner import plan
from scheduler.provider_senders import provider_senders
from scheduler.transport import Transport
from tests.conftest import LogCapture

WriteConfig = Callable[[str], Path]
SECRET_ID, SECRET_KEY = "AKIDlivetest0001", "live-secret-key-5c9e"


@pytest.fixture
async def fake_live() -> AsyncIterator[FakeLive]:
    fake = FakeLive(SECRET_ID, SECRET_KEY)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture(autouse=True)
def _live_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TC_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TC_SECRET_KEY", SECRET_KEY)


def _config(write_config: WriteConfig, fake: FakeLive, *, starts_in: int = -1) -> Config:
    start = (datetime.now(UTC) + timedelta(seconds=starts_in)).astimezone(CST)
    return load_config(
        write_config(f"""
providers:
  tencent:
    type: live
    endpoint: {fake.url}
    secret_id: ${{TC_SECRET_ID}}
    secret_key: ${{TC_SECRET_KEY}}
    timeout: 4s
    retry_spacing: 3s
recordings:
  - name: news
    start: {start:%Y-%m-%d %H:%M:%S}
    duration: 10m
    domain: push.example.com
    app: live
    stream: news
    template_id: 3
""")
    )


def _call(config: Config) -> Call:
    (call,) = plan(config, datetime.now(UTC), timedelta(hours=1))
    return call


async def _fire(config: Config, call: Call, ledger: MemoryLedger | None = None) -> State:
    dispatcher = Dispatcher(config, Transport(), ledger or MemoryLedger(), senders=provider_senders)
    try:
        return await dispatcher.fire(call)
    finally:
        await dispatcher.transport.close()


def _no_secret(logs: LogCapture) -> None:
    assert SECRET_KEY not in logs.text
    assert "Signature=" not in logs.text and "TC3-HMAC" not in logs.text


async def test_a_create_is_signed_and_its_task_id_kept(
    fake_live: FakeLive, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_live, starts_in=120)
    call = _call(config)
    ledger = MemoryLedger()
    assert await _fire(config, call, ledger) == State.OK
    (received,) = fake_live.creates()
    assert received.ok and received.body == json.loads(call.data)  # the planned body, exactly
    entry = await ledger.get(call.key)
    assert entry is not None and entry.task_id == received.task_id
    (task,) = fake_live.live_tasks()
    assert (task.start, task.end, task.template_id) == (
        int(call.start.timestamp()),
        int(call.deadline.timestamp()),
        3,
    )
    _no_secret(captured_logs)


async def test_a_running_window_gets_its_task_at_once_for_the_remaining_time(
    fake_live: FakeLive, write_config: WriteConfig
) -> None:
    config = _config(write_config, fake_live, starts_in=-30)
    call = _call(config)
    assert await _fire(config, call) == State.OK
    (received,) = fake_live.creates()
    assert "StartTime" not in received.body  # empty = start now [C]
    (task,) = fake_live.live_tasks()
    assert task.start >= int(call.start.timestamp()) and task.end == int(call.deadline.timestamp())


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("AuthFailure.SignatureFailure", "the signature does not match"),
        ("InvalidParameter", "EndTime is wrong"),
        ("FailedOperation", "no such domain"),
        ("LimitExceeded.MaximumRunningTask", "too many"),
    ],
)
async def test_refusals_are_permanent_with_tencents_message(
    fake_live: FakeLive,
    write_config: WriteConfig,
    captured_logs: LogCapture,
    code: str,
    message: str,
) -> None:
    config = _config(write_config, fake_live)
    fake_live.inject(ErrorCode(code, message))
    assert await _fire(config, _call(config)) == State.FAILED
    assert len(fake_live.creates()) == 1 and not fake_live.live_tasks()
    (failed,) = captured_logs.events("call.failed")
    assert failed["message"] == f"{code}: {message}" and failed["retryable"] is False


async def test_a_wrong_key_is_refused_by_the_fakes_own_signature_check(
    fake_live: FakeLive, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TC_SECRET_KEY", "not-the-key")
    config = _config(write_config, fake_live)
    assert await _fire(config, _call(config)) == State.FAILED
    (received,) = fake_live.received
    assert received.error_code == "AuthFailure.SignatureFailure" and not fake_live.tasks


async def test_rate_limited_is_retried(fake_live: FakeLive, write_config: WriteConfig) -> None:
    config = _config(write_config, fake_live)
    fake_live.inject(ErrorCode("RequestLimitExceeded", "slow down"))
    assert await _fire(config, _call(config)) == State.OK
    assert len(fake_live.creates()) == 2 and len(fake_live.live_tasks()) == 1
    assert not [r for r in fake_live.received if r.action == "DescribeRecordTask"]


async def test_a_lost_answer_is_adopted_through_describe(
    fake_live: FakeLive, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_live)
    call = _call(config)
    fake_live.inject(Drop("CreateRecordTask"))
    ledger = MemoryLedger()
    assert await _fire(config, call, ledger) == State.OK
    (task,) = fake_live.live_tasks()
    assert len(fake_live.creates()) == 1  # not created twice
    entry = await ledger.get(call.key)
    assert entry is not None and entry.task_id == task.task_id and not entry.uncertain
    (adopted,) = captured_logs.events("call.adopted")
    assert adopted["adopted_task_id"] == task.task_id
    assert not captured_logs.events("call.uncertain")
    _no_secret(captured_logs)


async def test_an_internal_error_with_no_task_is_created_again_after_3s(
    fake_live: FakeLive, write_config: WriteConfig
) -> None:
    config = _config(write_config, fake_live)
    fake_live.inject(ErrorCode("InternalError", "try later"))
    assert await _fire(config, _call(config)) == State.OK
    first, second = fake_live.creates()
    assert second.at - first.at >= DUPLICATE_WINDOW.total_seconds()
    assert len(fake_live.live_tasks()) == 1


async def test_no_answer_to_the_lookup_either_is_uncertain_and_not_recreated(
    fake_live: FakeLive, write_config: WriteConfig
) -> None:
    config = _config(write_config, fake_live)
    fake_live.inject(Drop("CreateRecordTask"), Drop("DescribeRecordTask"))
    ledger = MemoryLedger()
    call = _call(config)
    assert await _fire(config, call, ledger) == State.UNCERTAIN
    assert len(fake_live.creates()) == 1
    entry = await ledger.get(call.key)
    assert entry is not None and entry.uncertain


def _sent_before_crash(call: Call, sent_at: datetime) -> Entry:
    return replace(Entry.claimed(call, call.at), state=State.SENT, attempts=1, sent_at=sent_at)


async def test_after_a_crash_the_task_is_adopted(
    fake_live: FakeLive, write_config: WriteConfig
) -> None:
    config = _config(write_config, fake_live)
    call = _call(config)
    body = json.loads(call.data)
    made = Task("T" * 64, "push.example.com", "live", "news", int(body["StartTime"]) + 1,
                int(body["EndTime"]))  # fmt: skip
    fake_live.tasks[made.task_id] = made
    ledger = MemoryLedger([_sent_before_crash(call, datetime.now(UTC) - timedelta(seconds=1))])
    assert await _fire(config, call, ledger) == State.OK
    assert not fake_live.creates()
    entry = await ledger.get(call.key)
    assert entry is not None and entry.task_id == made.task_id


async def test_after_a_crash_with_no_task_it_is_created_after_the_duplicate_window(
    fake_live: FakeLive, write_config: WriteConfig
) -> None:
    config = _config(write_config, fake_live)
    call = _call(config)
    sent_at = datetime.now(UTC) - timedelta(seconds=1)
    ledger = MemoryLedger([_sent_before_crash(call, sent_at)])
    assert await _fire(config, call, ledger) == State.OK
    (create,) = fake_live.creates()
    assert create.at >= (sent_at + DUPLICATE_WINDOW).timestamp()
    assert len(fake_live.live_tasks()) == 1
