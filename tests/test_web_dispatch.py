"""Driving the web function (the in-process fake on loopback): the lifecycle with one TaskID,
no second recorder after an unanswered Start, errors classified, results reported once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.calls import Call
from scheduler.config import CST, Config, load_config
from scheduler.dispatch import Dispatcher
from scheduler.fakes.web import Delay, Drop, FakeWeb, HttpStatus
from scheduler.http_api import HttpApi
from scheduler.ledger import MemoryLedger, State
from scheduler.metrics import Metrics
from scheduler.planner import plan
from scheduler.provider_senders import provider_senders
from scheduler.transport import Transport
from scheduler.web_sender import WebSender
from tests.conftest import LogCapture
from tests.ports import free_port

WriteConfig = Callable[[str], Path]
pytestmark = pytest.mark.usefixtures("web_env")


def _config(
    write_config: WriteConfig,
    fake: FakeWeb,
    recording: str = "",
    *,
    provider: str = "",
    http: str = "",
) -> Config:
    start = (datetime.now(UTC) - timedelta(seconds=1)).astimezone(CST)
    text = f"""
providers:
  web:
    endpoint: {fake.url}
    app_key: ${{WEB_APP_KEY}}
    app_secret: ${{WEB_APP_SECRET}}
    timeout: 5s
    retry_spacing: 3s
{provider}
{http}
recordings:
  - name: lesson
    url: https://school.example.com/room/42
    start: {start:%Y-%m-%d %H:%M:%S}
    duration: 10m
    pauses: [{{at: 2m, for: 1m}}]
{recording}
"""
    return load_config(write_config(text))


def _calls(config: Config) -> dict[str, Call]:
    calls = plan(config, datetime.now(UTC), timedelta(hours=1))
    return {c.action: c for c in calls}


def _dispatcher(config: Config) -> tuple[Dispatcher, MemoryLedger]:
    ledger = MemoryLedger()
    return Dispatcher(config, Transport(), ledger, senders=provider_senders), ledger


async def test_start_pause_resume_stop_act_on_one_task_and_the_result_is_logged(
    fake_web: FakeWeb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_web)
    dispatcher, ledger = _dispatcher(config)
    calls = _calls(config)
    assert await dispatcher.fire(calls["Start"]) == State.OK
    (task_id,) = fake_web.tasks
    entry = await ledger.get(calls["Start"].key)
    assert entry is not None and entry.task_id == task_id  # kept for Stop, across restarts
    for action, status in (("Pause", "paused"), ("Resume", "recording"), ("Stop", "canceled")):
        assert await dispatcher.fire(calls[action]) == State.OK
        assert fake_web.tasks[task_id].status in (status, "transcode", "upload", "callback")
    await fake_web.wait_for_status(task_id, "finished", timeout=5)
    assert await dispatcher.fire(calls["Describe"]) == State.OK
    await dispatcher.transport.close()
    assert [r.action for r in fake_web.received] == [
        "Start",
        "Pause",
        "Resume",
        "Stop",
        "Describe",
    ]
    assert all(r.data.get("TaskID") == task_id for r in fake_web.received[1:])
    (finished,) = captured_logs.events("recording.finished")
    assert finished["task_id"] == task_id and finished["via"] == "describe"
    (video,) = finished["videos"]
    assert video["Filename"] and video["FileSize"] > 0 and video["FileURL"].startswith("http")
    assert set(video) == {"Filename", "FileSize", "FileDuration", "FileURL", "FileId"}
    (ok,) = [e for e in captured_logs.events("call.ok") if e["action"] == "Start"]
    assert ok["task_id"] == task_id and ok["recording"] == "lesson"


async def test_an_unanswered_start_is_found_through_list_and_adopted(
    fake_web: FakeWeb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_web)
    dispatcher, ledger = _dispatcher(config)
    calls = _calls(config)
    fake_web.inject(Delay(7, action="Start"))  # a cold start longer than the 5 s timeout
    assert await dispatcher.fire(calls["Start"]) == State.OK
    assert len(fake_web.starts()) == 1  # no second recorder
    (task_id,) = fake_web.tasks
    (uncertain,) = captured_logs.events("call.uncertain")
    assert uncertain["adopted_task_id"] == task_id and uncertain["resent"] is False
    assert [r.action for r in fake_web.received] == ["Start", "List"]
    entry = await ledger.get(calls["Start"].key)
    assert entry is not None and entry.task_id == task_id and entry.detail == "adopted through List"
    assert await dispatcher.fire(calls["Stop"]) == State.OK  # stops the adopted task
    await dispatcher.transport.close()
    assert fake_web.received[-1].data == {"TaskID": task_id}


async def test_without_list_an_unanswered_start_is_started_again_3s_later(
    write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    fake = FakeWeb("APIDtestappkey", "test-web-secret-7d21b4", has_list=False)
    await fake.start()
    try:
        config = _config(write_config, fake, provider="    list: false")
        dispatcher, _ = _dispatcher(config)
        fake.inject(Drop(action="Start"))
        assert await dispatcher.fire(_calls(config)["Start"]) == State.OK
        await dispatcher.transport.close()
    finally:
        await fake.stop()
    first, second = fake.starts()
    assert second.at - first.at >= 3.0  # never inside the duplicate window
    assert not [r for r in fake.received if r.action == "List"]
    (uncertain,) = captured_logs.events("call.uncertain")
    assert uncertain["resent"] is True and uncertain["checked"] is False


async def test_when_list_fails_the_start_is_not_repeated_and_is_reported_uncertain(
    fake_web: FakeWeb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_web)
    dispatcher, ledger = _dispatcher(config)
    calls = _calls(config)
    fake_web.inject(Drop(action="Start"), HttpStatus(503, action="List"))
    assert await dispatcher.fire(calls["Start"]) == State.UNCERTAIN
    assert len(fake_web.starts()) == 1
    (uncertain,) = captured_logs.events("call.uncertain")
    assert uncertain["resent"] is False and "List failed" in uncertain["message"]
    # what acts on the task cannot, and says so instead of failing obscurely
    assert await dispatcher.fire(calls["Stop"]) == State.FAILED
    await dispatcher.transport.close()
    (skipped,) = captured_logs.events("call.skipped")
    assert skipped["action"] == "Stop" and "no TaskID" in skipped["reason"]
    entry = await ledger.get(calls["Start"].key)
    assert entry is not None and entry.state == State.UNCERTAIN


async def test_a_refused_signature_is_permanent_and_logged_with_the_gateway_message(
    fake_web: FakeWeb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_web)
    fake_web._secret = "rotated-on-the-console"  # the gateway's secret changed
    dispatcher, _ = _dispatcher(config)
    assert await dispatcher.fire(_calls(config)["Start"]) == State.FAILED
    await dispatcher.transport.close()
    assert len(fake_web.received) == 1 and not fake_web.tasks  # not retried
    (failed,) = captured_logs.events("call.failed")
    assert failed["retryable"] is False and failed["status"] == 401
    assert "HMAC signature does not match" in failed["message"]


async def test_a_gateway_429_is_retried_after_the_spacing(
    fake_web: FakeWeb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_web)
    dispatcher, _ = _dispatcher(config)
    fake_web.inject(HttpStatus(429, action="Start"))
    assert await dispatcher.fire(_calls(config)["Start"]) == State.OK
    await dispatcher.transport.close()
    refused, accepted = [r for r in fake_web.received if r.action == "Start"]
    assert refused.status == 429 and accepted.ok
    assert accepted.at - refused.at >= 3.0 and len(fake_web.tasks) == 1
    assert captured_logs.events("call.retry")[0]["status"] == 429


async def test_the_callback_reports_the_result_once_and_describe_then_stays_quiet(
    write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    fake = FakeWeb("APIDtestappkey", "test-web-secret-7d21b4", step=0.05, callback_twice=True)
    await fake.start()
    port = free_port()
    http = f"http:\n  listen: 127.0.0.1:{port}\n  public_url: http://127.0.0.1:{port}/"
    config = _config(write_config, fake, "    callback: true", http=http)
    dispatcher, _ = _dispatcher(config)
    api = HttpApi(Metrics(), lambda: (True, "ok"))
    web = dispatcher.senders["web"]
    assert isinstance(web, WebSender)
    api.add_routes(web.routes())
    await api.start(f"127.0.0.1:{port}")
    try:
        calls = _calls(config)
        assert await dispatcher.fire(calls["Start"]) == State.OK
        (task_id,) = fake.tasks
        assert fake.received[0].data["CallbackURL"].startswith(f"http://127.0.0.1:{port}/")
        assert await dispatcher.fire(calls["Stop"]) == State.OK
        await fake.wait_for_status(task_id, "finished", timeout=5)
        assert [c.status for c in fake.callbacks] == [200, 200]  # answered, both times
        assert await dispatcher.fire(calls["Describe"]) == State.OK
        # a forged token is not ours: 404, nothing logged
        async with dispatcher.transport._client().post(
            f"http://127.0.0.1:{port}/callbacks/web/web.bGVzc29u.{'0' * 32}",
            json={"TaskID": task_id, "Status": "callback"},
        ) as forged:
            assert forged.status == 404
    finally:
        await dispatcher.transport.close()
        await api.stop()
        await fake.stop()
    (finished,) = captured_logs.events("recording.finished")  # once, despite two deliveries
    assert finished["via"] == "callback" and finished["task_id"] == task_id
    assert captured_logs.events("callback.duplicate")
    assert "Describe" not in [r.action for r in fake.received]  # the callback answered it


async def test_a_stop_during_describe_polling_leaves_it_to_the_next_run(
    fake_web: FakeWeb, write_config: WriteConfig, captured_logs: LogCapture
) -> None:
    config = _config(write_config, fake_web)
    dispatcher, ledger = _dispatcher(config)
    calls = _calls(config)
    assert await dispatcher.fire(calls["Start"]) == State.OK
    polling = asyncio.create_task(dispatcher.fire(calls["Describe"]))  # still recording
    await fake_web.wait_for(lambda: any(r.action == "Describe" for r in fake_web.received))
    dispatcher.stop_polling()  # SIGTERM: the daemon is stopping
    assert await asyncio.wait_for(polling, timeout=2) == State.CLAIMED
    entry = await ledger.get(calls["Describe"].key)
    assert entry is not None and entry.state == State.CLAIMED  # not final: asked again later
    assert await dispatcher.fire(calls["Stop"]) == State.OK
    await dispatcher.transport.close()
    (task_id,) = fake_web.tasks
    await fake_web.wait_for_status(task_id, "finished", timeout=5)
    # the next run, same ledger
    restarted = Dispatcher(config, Transport(), ledger, senders=provider_senders)
    assert await restarted.fire(calls["Describe"]) == State.OK
    await restarted.transport.close()
    (finished,) = captured_logs.events("recording.finished")
    assert finished["task_id"] == task_id
