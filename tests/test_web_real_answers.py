"""The web function's real answers, as its public source gives them (see
../shared/reference/web-record-source.md, D1-D8), read right: one test per way recsched used to
misread them (issue 12), each against the in-process fake made to behave like that source."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.calls import Call
from scheduler.config import CST, Config, load_config
from scheduler.dispatch import Dispatcher
from scheduler.errors import ConfigError
from scheduler.fakes.web import Delay, Drop, ErrorCode, FakeWeb, HttpStatus, Vanish
from scheduler.ledger import MemoryLedger, State
from scheduler.planner import plan
from scheduler.provider_senders import provider_senders
from scheduler.providers import web as web_api
from scheduler.transport import Transport
from tests.conftest import WEB_APP_KEY, WEB_APP_SECRET, LogCapture
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
    return load_config(
        write_config(f"""
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
{recording}
""")
    )


def _calls(config: Config) -> dict[str, Call]:
    return {c.action: c for c in plan(config, datetime.now(UTC), timedelta(hours=1))}


@pytest.fixture
async def run() -> AsyncIterator[Callable[[Config], Dispatcher]]:
    made: list[Dispatcher] = []

    def dispatcher(config: Config) -> Dispatcher:
        made.append(Dispatcher(config, Transport(), MemoryLedger(), senders=provider_senders))
        return made[-1]

    yield dispatcher
    for d in made:
        await d.transport.close()


@pytest.fixture
async def fake_factory() -> AsyncIterator[Callable[..., FakeWeb]]:
    fakes: list[FakeWeb] = []

    def make(**options: object) -> FakeWeb:
        settings: dict[str, object] = {"step": 0.05, "callback_interval": 0.05}
        fakes.append(FakeWeb(WEB_APP_KEY, WEB_APP_SECRET, **(settings | options)))  # type: ignore[arg-type]
        return fakes[-1]

    yield make
    for fake in fakes:
        await fake.stop()


async def _record(dispatcher: Dispatcher, fake: FakeWeb, calls: dict[str, Call]) -> str:
    """Start, Stop, wait until the function is done; the TaskID."""
    assert await dispatcher.fire(calls["Start"]) == State.OK
    (task_id,) = fake.tasks
    assert await dispatcher.fire(calls["Stop"]) == State.OK
    await fake.wait_for_status(task_id, "finished", timeout=10)
    return task_id


async def test_a_failed_callback_is_a_finished_recording_with_its_videos_and_a_warning(
    fake_factory: Callable[..., FakeWeb],
    run: Callable[[Config], Dispatcher],
    write_config: WriteConfig,
    captured_logs: LogCapture,
) -> None:
    """D1: the function could not POST to CallbackURL (nothing listens there)."""
    fake = fake_factory()
    await fake.start()
    port = free_port()  # and nothing will listen there
    http = f"http:\n  listen: 127.0.0.1:{port}\n  public_url: http://127.0.0.1:{port}/"
    config = _config(write_config, fake, "    callback: true", http=http)
    dispatcher, calls = run(config), _calls(config)
    task_id = await _record(dispatcher, fake, calls)
    assert fake.tasks[task_id].result["ErrorCode"] == "CallbackFailed"
    assert await dispatcher.fire(calls["Describe"]) == State.OK
    assert captured_logs.events("recording.failed") == []
    (finished,) = captured_logs.events("recording.finished")
    assert finished["task_id"] == task_id and finished["videos"][0]["FileURL"]
    (warning,) = captured_logs.events("recording.callback_failed")
    assert warning["level"] == "warning" and "CallbackURL" in warning["message"]


async def test_describe_internal_error_is_asked_again(
    fake_factory: Callable[..., FakeWeb],
    run: Callable[[Config], Dispatcher],
    write_config: WriteConfig,
    captured_logs: LogCapture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """D2: InternalError says nothing about the task (any Redis error but a missing key)."""
    monkeypatch.setattr("scheduler.web_client.POLL_FIRST", timedelta(seconds=0.2))
    fake = fake_factory()
    await fake.start()
    config = _config(write_config, fake)
    dispatcher, calls = run(config), _calls(config)
    task_id = await _record(dispatcher, fake, calls)
    fake.inject(
        ErrorCode("InternalError", "WRONGTYPE Operation against a key", action="Describe"),
        ErrorCode("InternalError", "Connection is closed.", action="Describe"),
    )
    assert await dispatcher.fire(calls["Describe"]) == State.OK
    describes = [r for r in fake.received if r.action == "Describe"]
    assert [r.error_code for r in describes] == ["InternalError", "InternalError", None]
    assert captured_logs.events("recording.failed") == []
    (finished,) = captured_logs.events("recording.finished")
    assert finished["task_id"] == task_id and finished["via"] == "describe"


async def test_storage_type_is_sent_only_when_the_yaml_sets_it(
    fake_factory: Callable[..., FakeWeb],
    run: Callable[[Config], Dispatcher],
    write_config: WriteConfig,
    captured_logs: LogCapture,
) -> None:
    """D3: on a COS-only deployment an explicit cfs fails every recording."""
    fake = fake_factory(deployment_storage="cos")
    await fake.start()
    config = _config(write_config, fake)
    dispatcher, calls = run(config), _calls(config)
    task_id = await _record(dispatcher, fake, calls)
    assert "StorageType" not in fake.starts()[0].data
    assert fake.tasks[task_id].storage_type == "cos"
    assert await dispatcher.fire(calls["Describe"]) == State.OK
    assert captured_logs.events("recording.failed") == []
    assert captured_logs.events("recording.finished")
    chosen = _config(write_config, fake, "    storage_type: cos")
    start = json_data(_calls(chosen)["Start"])
    assert start["StorageType"] == "cos"


def json_data(call: Call) -> dict[str, object]:
    import json

    data = json.loads(call.data)
    assert isinstance(data, dict)
    return data


async def test_a_list_answer_without_tasks_never_justifies_a_second_start(
    fake_factory: Callable[..., FakeWeb],
    run: Callable[[Config], Dispatcher],
    write_config: WriteConfig,
    captured_logs: LogCapture,
) -> None:
    """D4: a build without List throws; the gateway may pass SCF's error body as HTTP 200."""
    fake = fake_factory(has_list=False, crash_answer="scf")
    await fake.start()
    config = _config(write_config, fake)
    dispatcher, calls = run(config), _calls(config)
    fake.inject(Drop(action="Start"))
    assert await dispatcher.fire(calls["Start"]) == State.UNCERTAIN
    assert len(fake.starts()) == 1  # no second paid recorder
    listed = [r for r in fake.received if r.action == "List"]
    assert [r.status for r in listed] == [200]
    (uncertain,) = captured_logs.events("call.uncertain")
    assert uncertain["resent"] is False and "List" in uncertain["list"]


async def test_list_has_its_own_longer_timeout_and_a_failure_says_why(
    fake_factory: Callable[..., FakeWeb],
    run: Callable[[Config], Dispatcher],
    write_config: WriteConfig,
    captured_logs: LogCapture,
) -> None:
    """D5: List scans every task the deployment ever stored, so it is slow."""
    fake = fake_factory()
    await fake.start()
    config = _config(write_config, fake, provider="    list_timeout: 15s")
    assert config.providers["web"].list_timeout == timedelta(seconds=15)  # type: ignore[union-attr]
    dispatcher, calls = run(config), _calls(config)
    fake.inject(Drop(action="Start"), Delay(6, action="List"))  # slower than `timeout: 5s`
    assert await dispatcher.fire(calls["Start"]) == State.OK
    (task_id,) = fake.tasks
    (adopted,) = captured_logs.events("call.uncertain")
    assert adopted["adopted_task_id"] == task_id and len(fake.starts()) == 1

    again = run(config)  # a second run, its own ledger: List is asked again, and fails
    fake.inject(Drop(action="Start"), HttpStatus(500, action="List"))
    assert await again.fire(calls["Start"]) == State.UNCERTAIN
    failed = captured_logs.events("call.uncertain")[-1]
    assert failed["list"].startswith("List failed: HTTP 500")


async def test_an_adopted_task_that_vanishes_is_started_again(
    fake_factory: Callable[..., FakeWeb],
    run: Callable[[Config], Dispatcher],
    write_config: WriteConfig,
    captured_logs: LogCapture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """D6: a lost Start whose invoke then fails deletes the task List showed as `normal`."""
    monkeypatch.setattr(web_api, "GATEWAY_SERVICE_TIMEOUT", timedelta(seconds=8))
    fake = fake_factory()
    await fake.start()
    config = _config(write_config, fake)
    dispatcher, calls = run(config), _calls(config)
    # the answer outlives the 5 s timeout; List at ~5 s sees the task `normal`; it is
    # deleted at 6.5 s; the confirmation at 8 s finds it gone
    fake.inject(Vanish(after=6.5))
    assert await dispatcher.fire(calls["Start"]) == State.OK
    first, second = [r for r in fake.received if r.action == "Start"]
    assert first.error_code == "InternalError" and second.ok  # the first one's invoke failed
    assert second.at - first.at >= 8  # after the confirmation, never within 3 s
    (task_id,) = fake.tasks  # the second Start's: the first one's is gone
    entry = await dispatcher.ledger.get(calls["Start"].key)
    assert entry is not None and entry.task_id == task_id
    gone = [e for e in captured_logs.events("call.uncertain") if "gone" in e["message"]]
    assert gone and gone[0]["adopted_task_id"] != task_id
    assert await dispatcher.fire(calls["Stop"]) == State.OK
    assert fake.received[-1].data == {"TaskID": task_id}


def test_a_web_timeout_must_outlast_the_task_not_found_answer(write_config: WriteConfig) -> None:
    """D7: "task not found" comes after the function's ~4 s Redis back-off."""
    text = """
providers:
  web:
    endpoint: https://service-x.gz.apigw.tencentcs.com/release/record
    app_key: ${WEB_APP_KEY}
    app_secret: ${WEB_APP_SECRET}
    timeout: 4s
recordings: []
"""
    with pytest.raises(ConfigError) as info:
        load_config(write_config(text))
    (problem,) = info.value.problems
    assert problem.path == "providers.web.timeout" and "at least 5s" in problem.message


async def test_finished_names_the_file_duration_for_what_it_is(
    fake_factory: Callable[..., FakeWeb],
    run: Callable[[Config], Dispatcher],
    write_config: WriteConfig,
    captured_logs: LogCapture,
) -> None:
    """D8: FileDuration is StopTime - StartTime, paused time included: not recorded time."""
    fake = fake_factory()
    await fake.start()
    config = _config(write_config, fake)
    dispatcher, calls = run(config), _calls(config)
    await _record(dispatcher, fake, calls)
    assert await dispatcher.fire(calls["Describe"]) == State.OK
    (finished,) = captured_logs.events("recording.finished")
    assert "seconds" not in finished
    total = sum(v["FileDuration"] or 0 for v in finished["videos"])
    assert finished["file_duration_s"] == total
