"""Behaviour of the fake web-page recording function, exercised with a real aiohttp client over
127.0.0.1 and requests signed by providers.apigw (reference §3, §4, §7)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from scheduler.fakes.web import (
    DEFAULT_MAX_DURATION,
    Delay,
    Drop,
    ErrorCode,
    Fail,
    FakeWeb,
    HttpStatus,
    Vanish,
    serve_forever,
)
from scheduler.fakes.web_auth import (
    MSG_BAD_ID,
    MSG_MISMATCH,
    MSG_MISSING,
    MSG_NO_DATE,
    MSG_STALE,
    parse_authorization,
)
from scheduler.fakes.web_tasks import NOTHING_RECORDED, STOP_LAG
from scheduler.providers import apigw
from tests.conftest import LogCapture

KEY = "APIDtestappkey000000000000000000000000000"
SECRET = "test-web-secret-5d9e71"
NOW = 1767240000.0  # 2026-01-01 04:00:00 UTC = 12:00:00 CST
PAGE = "https://example.com/page"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    fake: FakeWeb
    clock: FakeClock
    session: aiohttp.ClientSession
    base: str  # http://127.0.0.1:PORT


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[Env]:
    clock = FakeClock(NOW)
    settings: dict[str, Any] = {"clock": clock, "step": 0.01, "callback_interval": 0.01}
    fake = FakeWeb(KEY, SECRET, **(settings | options))
    url = await fake.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            yield Env(fake, clock, session, str(URL(url).origin()))
    finally:
        await fake.stop()
    assert fake.crashes == []


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with running() as e:
        yield e


def body_of(action: str, data: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"Action": action, "Data": {} if data is None else data}).encode()


def signed(
    env: Env,
    raw: bytes,
    *,
    path: str = "/release/record",
    at: float | None = None,
    key: str = KEY,
    secret: str = SECRET,
    algorithm: str = "hmac-sha1",
) -> dict[str, str]:
    when = datetime.fromtimestamp(env.clock.now if at is None else at, UTC)
    return apigw.sign(
        app_key=key,
        app_secret=secret,
        method="POST",
        url=env.base + path,
        body=raw,
        now=when,
        algorithm=algorithm,
    )


async def send(
    env: Env,
    raw: bytes,
    headers: dict[str, str],
    *,
    path: str = "/release/record",
    timeout: float | None = None,  # noqa: ASYNC109
) -> tuple[int, dict[str, Any]]:
    client_timeout = None if timeout is None else aiohttp.ClientTimeout(total=timeout)
    async with env.session.post(
        env.base + path, data=raw, headers=headers, timeout=client_timeout
    ) as resp:
        answer = await resp.json(content_type=None)
        assert isinstance(answer, dict)
        return resp.status, answer


async def call(
    env: Env, action: str, data: dict[str, Any] | None = None, **how: Any
) -> dict[str, Any]:
    raw = body_of(action, data)
    status, answer = await send(env, raw, signed(env, raw), **how)
    assert status == 200, answer
    return answer


async def start(env: Env, **data: Any) -> str:
    answer = await call(env, "Start", {"RecordURL": PAGE} | data)
    assert set(answer) == {"TaskID", "RequestID"}, answer
    task_id = answer["TaskID"]
    assert isinstance(task_id, str)
    return task_id


async def finished(env: Env, task_id: str) -> dict[str, Any]:
    await env.fake.wait_for_status(task_id, "finished", timeout=10)
    return await call(env, "Describe", {"TaskID": task_id})


# --- authentication (§4) -------------------------------------------------------------------


async def test_endpoint_and_signed_start_creates_a_recording_task(env: Env) -> None:
    assert env.fake.url == env.base + "/release/record"
    task_id = await start(env, Width=1280, Height=720)
    task = env.fake.tasks[task_id]
    assert task.status == "recording" and task.create_time == NOW and task.start_time == NOW
    assert task.param == {"RecordURL": PAGE, "Width": 1280, "Height": 720}
    [rec] = env.fake.received
    assert rec == env.fake.starts()[0]
    assert (rec.action, rec.ok, rec.status, rec.error_code, rec.task_id) == (
        "Start",
        True,
        200,
        None,
        task_id,
    )
    assert rec.at == NOW and rec.data == task.param and rec.path == "/release/record"


@pytest.mark.parametrize("path", ["/record", "/test/record", "/prepub/record"])
async def test_other_environments_and_bare_path_are_served(env: Env, path: str) -> None:
    raw = body_of("Start", {"RecordURL": PAGE})
    status, answer = await send(env, raw, signed(env, raw, path=path), path=path)
    assert status == 200 and answer["TaskID"] in env.fake.tasks


async def test_query_parameters_are_signed_sorted(env: Env) -> None:
    raw = body_of("Start", {"RecordURL": PAGE})
    path = "/release/record?b=2&a=1&flag"
    status, _ = await send(env, raw, signed(env, raw, path=path), path=path)
    assert status == 200 and len(env.fake.tasks) == 1


async def test_unknown_path_or_method_is_no_api_match(env: Env) -> None:
    async with env.session.get(env.base + "/release/record") as resp:
        assert resp.status == 404
        assert "no api match" in (await resp.json())["message"]
    raw = body_of("Start", {"RecordURL": PAGE})
    status, _ = await send(env, raw, signed(env, raw, path="/release/x"), path="/release/x")
    assert status == 404 and env.fake.tasks == {} and env.fake.received == []


async def test_wrong_secret_is_401_and_creates_nothing(env: Env) -> None:
    raw = body_of("Start", {"RecordURL": PAGE})
    status, answer = await send(env, raw, signed(env, raw, secret="not-the-secret"))
    assert (status, answer) == (401, {"message": MSG_MISMATCH})
    assert env.fake.tasks == {} and env.fake.starts() == []
    [rec] = env.fake.received
    assert (rec.ok, rec.status, rec.task_id, rec.error) == (False, 401, None, MSG_MISMATCH)


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-901, False), (901, False), (-900, True), (900, True)]
)
async def test_x_date_must_be_within_900_seconds(env: Env, offset: int, accepted: bool) -> None:
    raw = body_of("Start", {"RecordURL": PAGE})
    status, answer = await send(env, raw, signed(env, raw, at=NOW + offset))
    if accepted:
        assert status == 200 and len(env.fake.tasks) == 1
    else:
        assert (status, answer) == (401, {"message": MSG_STALE})
        assert env.fake.tasks == {}


async def test_tampered_body_with_the_original_content_md5_is_refused(env: Env) -> None:
    raw = body_of("Start", {"RecordURL": PAGE})
    headers = signed(env, raw)
    tampered = body_of("Start", {"RecordURL": "https://evil.example/"})
    status, answer = await send(env, tampered, headers)
    assert (status, answer) == (401, {"message": MSG_MISMATCH})
    assert env.fake.received[0].error == "Content-MD5 does not match the body"
    # without the header the gateway computes the MD5 itself: the signature no longer matches
    del headers["Content-MD5"]
    status, answer = await send(env, tampered, headers)
    assert (status, answer) == (401, {"message": MSG_MISMATCH})
    assert env.fake.tasks == {}


async def test_content_md5_must_be_base64_of_the_hex_digest(env: Env) -> None:
    raw = body_of("Start", {"RecordURL": PAGE})
    md5 = apigw.content_md5(raw, apigw.Md5Form.BASE64_OF_DIGEST)  # signed consistently...
    date = apigw.x_date(datetime.fromtimestamp(NOW, UTC))
    text = apigw.string_to_sign(
        headers={"x-date": date},
        method="POST",
        accept="application/json",
        content_type="application/json",
        content_md5=md5,
        path="/record",
    )
    sig = apigw.signature(SECRET, text)
    headers = {
        "x-date": date,
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Content-MD5": md5,
        "Authorization": f'hmac id="{KEY}", algorithm="hmac-sha1", headers="x-date", '
        f'signature="{sig}"',
    }
    status, _ = await send(env, raw, headers)
    assert status == 401 and env.fake.tasks == {}  # ... but not what the gateway computes


def _authorization(sent: dict[str, str], **changes: str) -> None:
    auth = parse_authorization(sent["Authorization"]) | changes
    sent["Authorization"] = "hmac " + ", ".join(f'{k}="{v}"' for k, v in auth.items())


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda h: h.pop("Authorization"), MSG_MISSING),
        (lambda h: h.update(Authorization="Basic dXNlcjpwYXNz"), "HMAC authorization format error"),
        (lambda h: _authorization(h, signature=""), MSG_MISSING),
        (lambda h: _authorization(h, id="APIDsomeoneelse"), MSG_BAD_ID),
        (
            lambda h: _authorization(h, algorithm="hmac-md5"),
            "HMAC algorithm hmac-md5 not supported",
        ),
        (lambda h: _authorization(h, headers=""), MSG_NO_DATE),
        (lambda h: h.pop("x-date"), MSG_NO_DATE),
        (lambda h: h.update({"x-date": "2026-01-01T04:00:00Z"}), MSG_NO_DATE),
        (lambda h: h.update(Accept="*/*"), MSG_MISMATCH),
        (lambda h: _authorization(h, headers="x-date source"), MSG_MISMATCH),
    ],
)
async def test_gateway_401_messages(
    env: Env, tamper: Callable[[dict[str, str]], object], message: str
) -> None:
    raw = body_of("Start", {"RecordURL": PAGE})
    headers = signed(env, raw)
    tamper(headers)
    status, answer = await send(env, raw, headers)
    assert (status, answer) == (401, {"message": message})
    assert env.fake.tasks == {}


async def test_sha256_is_accepted(env: Env) -> None:
    raw = body_of("Start", {"RecordURL": PAGE})
    status, _ = await send(env, raw, signed(env, raw, algorithm="hmac-sha256"))
    assert status == 200 and len(env.fake.tasks) == 1


EXAMPLE_KEY = "APIDexampleappkey0000000000000000000000"
EXAMPLE_SECRET = "exampleAppSecret0000000000000000000000"
EXAMPLE_BODY = (
    b'{"Action":"Start","Data":{"RecordURL":"https://example.com/page","Width":1280,'
    b'"Height":720,"MaxDurationLimit":3600}}'
)


@pytest.mark.parametrize(
    ("algorithm", "signature", "send_md5"),
    [
        ("hmac-sha1", "yaWW10wMcjUUH/Oj1te78NPAFAY=", True),
        ("hmac-sha1", "yaWW10wMcjUUH/Oj1te78NPAFAY=", False),  # Python/Go demos omit it
        ("hmac-sha256", "ekPVSPu10t7952P4ybiac9mqniDFXqINkjClKbv1IpE=", True),
    ],
)
async def test_reference_worked_example_verifies(
    algorithm: str, signature: str, send_md5: bool
) -> None:
    """§4.2, byte for byte, against a fake whose clock reads the example's x-date."""
    fake = FakeWeb(EXAMPLE_KEY, EXAMPLE_SECRET, clock=FakeClock(NOW))
    url = await fake.start()
    async with aiohttp.ClientSession() as session:
        try:
            headers = {
                "x-date": "Thu, 01 Jan 2026 04:00:00 GMT",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "Authorization": f'hmac id="{EXAMPLE_KEY}", algorithm="{algorithm}", '
                f'headers="x-date", signature="{signature}"',
            }
            if send_md5:
                headers["Content-MD5"] = "YmU5NDQ1MjkwZmRmMjVlZjgwNzUyMTdhYzAyYzIwZWE="
            async with session.post(url, data=EXAMPLE_BODY, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                task_id = (await resp.json())["TaskID"]
            assert fake.tasks[task_id].max_duration == 3600
        finally:
            await fake.stop()


async def test_unauthenticated_control_calls_do_not_act(env: Env) -> None:
    task_id = await start(env)
    raw = body_of("Stop", {"TaskID": task_id})
    status, _ = await send(env, raw, signed(env, raw, secret="wrong"))
    assert status == 401 and env.fake.tasks[task_id].status == "recording"


async def test_no_secret_or_signature_is_kept(env: Env) -> None:
    raw = body_of("Start", {"RecordURL": PAGE})
    good, bad = signed(env, raw), signed(env, raw, secret="other-secret")
    await send(env, raw, good)
    await send(env, raw, bad)
    kept = repr(env.fake.received) + repr(env.fake.tasks) + repr(env.fake.callbacks)
    for secret in (SECRET, "other-secret", good["Authorization"], bad["Authorization"]):
        assert secret not in kept
    for headers in (good, bad):
        assert parse_authorization(headers["Authorization"])["signature"] not in kept


# --- Start (§3.2, §3.6) --------------------------------------------------------------------


async def test_two_identical_starts_make_two_tasks(env: Env) -> None:
    first, second = await start(env), await start(env)
    assert first != second and len(env.fake.tasks) == 2 and len(env.fake.starts()) == 2
    assert all(t.status == "recording" for t in env.fake.tasks.values())


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"RecordURL": ""},
        {"RecordURL": PAGE, "Width": 2561},
        {"RecordURL": PAGE, "Height": -1},
        {"RecordURL": PAGE, "MaxDurationLimit": 36001},
        {"RecordURL": PAGE, "MaxDurationLimit": -5},
        {"RecordURL": PAGE, "Output": {"Video": {}}},
        {"RecordURL": PAGE, "Output": {"Video": {"Muxer": "flv"}}},
        {"RecordURL": PAGE, "Output": {"Video": {"Muxer": "hls", "EncryptKey": "k"}}},
        {"RecordURL": PAGE, "Output": {"Vod": {"MediaInfo": {"MediaName": "  "}}}},
        {"RecordURL": PAGE, "Output": {"Vod": {"ProcedureInfo": {"Procedure": ""}}}},
    ],
)
async def test_start_validation(env: Env, data: dict[str, Any]) -> None:
    answer = await call(env, "Start", data)
    assert answer["ErrorCode"] == "InvalidParam" and answer["ErrorMessage"]
    assert set(answer) == {"ErrorCode", "ErrorMessage", "RequestID"}
    assert env.fake.tasks == {}
    [rec] = env.fake.received
    assert (rec.ok, rec.error_code, rec.status) == (False, "InvalidParam", 200)


async def test_start_validation_is_as_loose_as_the_source(env: Env) -> None:
    """Truthiness and numeric comparisons only (real record.js:45-148)."""
    zero = await start(env, Width=0, Height=0)  # the message says [1, 2560]; 0 passes
    text = await start(env, Width="1280", ManualStart="yes")  # no type checks
    odd = await start(env, StorageType="nas")  # ignored: the deployment chooses
    assert env.fake.tasks[zero] and env.fake.tasks[text]
    assert env.fake.tasks[odd].storage_type == "cfs"


async def test_without_storage_type_the_deployment_chooses() -> None:
    async with running(deployment_storage="cos") as cos_only:
        chosen = await start(cos_only)
        forced = await start(cos_only, StorageType="cfs")
        assert cos_only.fake.tasks[chosen].storage_type == "cos"
        for task_id in (chosen, forced):
            await call(cos_only, "Stop", {"TaskID": task_id})
        assert "Videos" in (await finished(cos_only, chosen))["Result"]
        # an explicit cfs where the deployment has no CFS: the recorder throws (real
        # record.js:485-489) and the task ends without a video
        failed = (await finished(cos_only, forced))["Result"]
        assert failed["ErrorCode"] == "InternalErr" and "cfs" in failed["ErrorMessage"]


async def test_limits_at_the_edges_and_default_duration(env: Env) -> None:
    edge = await start(env, Width=2560, Height=0, MaxDurationLimit=36000, StorageType="cos")
    default = await start(env, MaxDurationLimit=0, Output={"Video": {"Muxer": "hls"}})
    assert env.fake.tasks[edge].max_duration == 36000
    assert env.fake.tasks[default].max_duration == DEFAULT_MAX_DURATION == 21600


# --- control actions and the status machine (§3.2, §3.3) ------------------------------------


async def test_control_table(env: Env) -> None:
    task_id = await start(env)
    task = env.fake.tasks[task_id]
    ref = {"TaskID": task_id}
    assert (await call(env, "Refresh", ref))["TaskID"] == task_id and task.refreshes == 1
    assert (await call(env, "Pause", ref))["TaskID"] == task_id and task.status == "paused"
    assert "ErrorCode" not in await call(env, "Pause", ref)  # already paused: no-op
    assert (await call(env, "Describe", ref))["Status"] == "paused"
    assert "ErrorCode" not in await call(env, "Resume", ref) and task.status == "recording"
    assert "ErrorCode" not in await call(env, "Resume", ref)  # recording: still fine
    assert "ErrorCode" not in await call(env, "Stop", ref) and task.cancel_time == NOW
    env.clock.now += 5
    second = await call(env, "Stop", ref)  # idempotent: success, nothing changes
    assert set(second) == {"TaskID", "RequestID"} and task.cancel_time == NOW
    resumed = await call(env, "Resume", ref)
    assert resumed["ErrorCode"] == "InvalidStatus"
    assert (await call(env, "Pause", ref))["ErrorCode"] == "InvalidStatus"
    assert "ErrorCode" not in await call(env, "Refresh", ref) and task.refreshes == 1
    assert task.history[:5] == ["normal", "recording", "paused", "recording", "canceled"]


async def test_describe_drops_falsy_fields_and_param(env: Env) -> None:
    task_id = await start(env)
    described = await call(env, "Describe", {"TaskID": task_id})
    assert described["Status"] == "recording" and described["TaskID"] == task_id
    assert described["CreateTime"] == described["StartTime"] == int(NOW)
    assert described["StorageType"] == "cfs" and described["RequestID"]
    for absent in ("Param", "RetryNum", "InvokedRequestID", "CancelTime", "Result"):
        assert absent not in described


async def test_walks_to_finished_with_a_duration_that_includes_paused_time(env: Env) -> None:
    task_id = await start(env)
    ref = {"TaskID": task_id}
    env.clock.now += 10
    await call(env, "Pause", ref)
    env.clock.now += 100
    await call(env, "Resume", ref)
    env.clock.now += 5
    await call(env, "Stop", ref)
    described = await finished(env, task_id)
    assert env.fake.tasks[task_id].history == [
        "normal",
        *("recording", "paused", "recording"),
        *("canceled", "transcode", "upload", "callback", "finished"),
    ]
    assert described["Status"] == "finished"
    # The recorder writes StopTime when it handles the stop signal, a little after CancelTime
    assert described["CancelTime"] == NOW + 115
    assert described["StopTime"] == NOW + 115 + STOP_LAG
    assert described["FinishTime"] == NOW + 115
    [video] = described["Result"]["Videos"]
    # StopTime - StartTime, as the source computes it: the 100 paused seconds included
    assert video["FileDuration"] == 115 + STOP_LAG
    assert type(video["FileSize"]) is int and video["FileSize"] > 0
    assert video["Filename"].endswith(".mp4") and video["FileURL"].startswith("http://")
    assert task_id in video["FileURL"] and "FileId" not in video
    assert "ErrorCode" not in described["Result"]


async def test_vod_output_gives_a_file_id(env: Env) -> None:
    task_id = await start(env, Output={"Vod": {"MediaInfo": {"MediaName": "class 1"}}})
    env.clock.now += 60
    await call(env, "Stop", {"TaskID": task_id})
    [video] = (await finished(env, task_id))["Result"]["Videos"]
    assert video["FileId"] and video["FileDuration"] == 60 + STOP_LAG


async def test_max_duration_limit_stops_the_task_itself(env: Env) -> None:
    task_id = await start(env, MaxDurationLimit=30)
    env.clock.now += 45  # the fake notices within one step
    described = await finished(env, task_id)
    assert described["CancelTime"] == NOW + 30
    assert described["Result"]["Videos"][0]["FileDuration"] == 30 + STOP_LAG


async def test_a_pause_before_the_recorder_starts_leaves_the_task_paused() -> None:
    """real record.js:792,828: the recorder never auto-starts a paused task nor writes its
    StartTime; a Stop then leaves nothing recorded: InternalError "video concat failed"."""
    async with running(start_delay=0.3) as env:
        raw = body_of("Start", {"RecordURL": PAGE})
        starting = asyncio.ensure_future(send(env, raw, signed(env, raw)))
        await env.fake.wait_for(lambda: len(env.fake.tasks) == 1)
        (task_id,) = env.fake.tasks
        await call(env, "Pause", {"TaskID": task_id})
        await starting
        task = env.fake.tasks[task_id]
        assert task.status == "paused" and task.start_time is None
        await call(env, "Stop", {"TaskID": task_id})
        result = (await finished(env, task_id))["Result"]
        assert (result["ErrorCode"], result["ErrorMessage"]) == NOTHING_RECORDED
        assert "StartTime" not in await call(env, "Describe", {"TaskID": task_id})


async def test_a_task_stopped_before_recording_ends_in_video_concat_failed() -> None:
    async with running(start_delay=0.3) as env:
        raw = body_of("Start", {"RecordURL": PAGE})
        starting = asyncio.ensure_future(send(env, raw, signed(env, raw)))
        await env.fake.wait_for(lambda: len(env.fake.tasks) == 1)
        (task_id,) = env.fake.tasks
        await call(env, "Stop", {"TaskID": task_id})
        await starting
        result = (await finished(env, task_id))["Result"]
        assert result["ErrorCode"] == "InternalError" and "concat" in result["ErrorMessage"]


async def test_an_unknown_action_throws_as_502_or_as_an_scf_error_body() -> None:
    async with running(has_list=False) as env:
        raw = body_of("List", {"Status": "all"})
        assert (await send(env, raw, signed(env, raw)))[0] == 502
    async with running(has_list=False, crash_answer="scf") as env:
        status, answer = await send(env, raw, signed(env, raw))
        assert status == 200 and answer["errorCode"] == -1 and "ErrorCode" not in answer


async def test_a_vanishing_start_shows_in_list_as_normal_then_is_gone() -> None:
    """real record.js:223-254: the invoke fails after the task was stored."""
    async with running() as env:
        env.fake.inject(Vanish(after=0.3))
        raw = body_of("Start", {"RecordURL": PAGE})
        starting = asyncio.ensure_future(send(env, raw, signed(env, raw)))
        await env.fake.wait_for(lambda: len(env.fake.tasks) == 1)
        listed = await call(env, "List", {"Status": "all"})
        assert [t["Status"] for t in listed["Tasks"]] == ["normal"]
        task_id = listed["Tasks"][0]["TaskID"]
        _, answer = await starting
        assert answer["ErrorCode"] == "InternalError" and env.fake.tasks == {}
        gone = await call(env, "Describe", {"TaskID": task_id})
        assert gone["ErrorCode"] == "InvalidParam"


async def test_max_duration_limit_counts_paused_time_too(env: Env) -> None:
    """The real heartbeat compares the wall clock with StartTime, pauses included."""
    task_id = await start(env, MaxDurationLimit=30)
    env.clock.now += 10
    await call(env, "Pause", {"TaskID": task_id})
    env.clock.now += 25  # 35 s since StartTime, only 10 of them recorded
    described = await finished(env, task_id)
    assert described["CancelTime"] == NOW + 30


async def test_injected_failure_ends_with_an_error_instead_of_videos(env: Env) -> None:
    env.fake.inject(Fail("InternalErr", "bad page"))
    task_id = await start(env)
    described = await finished(env, task_id)
    assert described["Result"] == {"ErrorCode": "InternalErr", "ErrorMessage": "bad page"}
    assert env.fake.tasks[task_id].history == ["normal", "recording", "callback", "finished"]
    other = await start(env)  # the fault was used up
    assert env.fake.tasks[other].failure is None


async def test_per_fake_failure_at_transcode() -> None:
    async with running(fail_tasks=Fail("InternalError", "transcode failed", "transcode")) as e:
        task_id = await start(e)
        await call(e, "Stop", {"TaskID": task_id})
        described = await finished(e, task_id)
        assert described["Result"]["ErrorCode"] == "InternalError"
        assert "Videos" not in described["Result"]
        assert "upload" not in e.fake.tasks[task_id].history


async def test_unknown_task_id_is_invalid_param_after_the_lookup_delay() -> None:
    async with running(unknown_task_delay=0.2) as e:
        loop = asyncio.get_running_loop()
        for action in ("Describe", "Stop", "Pause", "Resume", "Refresh"):
            began = loop.time()
            answer = await call(e, action, {"TaskID": "7a035551-0000-4000-8000-000000000000"})
            assert loop.time() - began >= 0.2
            assert answer["ErrorCode"] == "InvalidParam"
            assert answer["ErrorMessage"] == "invalid task id, task not found"
        missing = await call(e, "Describe", {})
        assert missing["ErrorCode"] == "InvalidParam"


async def test_unknown_action_is_a_502_from_the_gateway(env: Env) -> None:
    raw = body_of("Explode", {"TaskID": "x"})
    status, answer = await send(env, raw, signed(env, raw))
    assert (status, answer) == (502, {"message": "Bad Gateway"})


# --- callback (§3.5) -----------------------------------------------------------------------


@dataclass
class Receiver:
    statuses: list[int]  # answer per POST; the last one repeats
    fake: FakeWeb | None = None
    got: list[tuple[dict[str, str], dict[str, Any], str]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        status_then = self.fake.tasks[payload["TaskID"]].status if self.fake else ""
        self.got.append((dict(request.headers), payload, status_then))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return web.Response(status=status, text="ok")


@contextlib.asynccontextmanager
async def receiver(statuses: list[int], fake: FakeWeb) -> AsyncIterator[Receiver]:
    rec = Receiver(statuses, fake)
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


async def test_callback_is_posted_in_callback_state(env: Env) -> None:
    async with receiver([200], env.fake) as hook:
        task_id = await start(env, CallbackURL=hook.url)
        env.clock.now += 20
        await call(env, "Stop", {"TaskID": task_id})
        described = await finished(env, task_id)
    [(headers, payload, status_then)] = hook.got
    assert status_then == "callback"  # sent before the task is finished
    assert payload["Status"] == "callback" and payload["TaskID"] == task_id
    assert "Param" not in payload and "TempData" not in payload and "RequestID" not in payload
    assert payload["Result"] == described["Result"]
    assert payload["Result"]["Videos"][0]["FileDuration"] == 20 + STOP_LAG
    assert headers["Content-Type"].startswith("application/json")
    assert "Authorization" not in headers
    [delivery] = env.fake.callbacks
    assert (delivery.task_id, delivery.attempt, delivery.status, delivery.delivered) == (
        task_id,
        1,
        200,
        True,
    )


async def test_callback_is_retried_on_500(env: Env) -> None:
    async with receiver([500, 503, 204], env.fake) as hook:
        task_id = await start(env, CallbackURL=hook.url)
        await call(env, "Stop", {"TaskID": task_id})
        described = await finished(env, task_id)
    assert [d.status for d in env.fake.callbacks] == [500, 503, 204]
    assert [d.attempt for d in env.fake.callbacks] == [1, 2, 3]
    assert len(hook.got) == 3 and "ErrorCode" not in described["Result"]


async def test_callback_failed_after_five_attempts(env: Env) -> None:
    async with receiver([500], env.fake) as hook:
        task_id = await start(env, CallbackURL=hook.url)
        await call(env, "Stop", {"TaskID": task_id})
        described = await finished(env, task_id)
    assert len(hook.got) == 5 and [d.delivered for d in env.fake.callbacks] == [False] * 5
    assert described["Result"]["ErrorCode"] == "CallbackFailed"
    assert described["Result"]["Videos"]  # the recording itself is fine


async def test_unreachable_callback_url_fails_too(env: Env) -> None:
    task_id = await start(env, CallbackURL="http://127.0.0.1:9/hook")
    await call(env, "Stop", {"TaskID": task_id})
    described = await finished(env, task_id)
    assert described["Result"]["ErrorCode"] == "CallbackFailed"
    assert [d.status for d in env.fake.callbacks] == [None] * 5


async def test_callback_twice_delivers_the_same_payload_twice() -> None:
    async with running(callback_twice=True) as e, receiver([200], e.fake) as hook:
        task_id = await start(e, CallbackURL=hook.url)
        await call(e, "Stop", {"TaskID": task_id})
        await finished(e, task_id)
    assert len(hook.got) == 2 and hook.got[0][1] == hook.got[1][1]


# --- List (source-only) --------------------------------------------------------------------


async def test_list_finds_a_task_by_record_url_and_time_window(env: Env) -> None:
    first = await start(env, RecordURL="https://example.com/a")
    env.clock.now += 3600
    second = await start(env, RecordURL="https://example.com/b")
    window = {"StartTime": "2026-01-01 11:30:00", "EndTime": "2026-01-01 12:30:00"}  # CST
    listed = await call(env, "List", {"Status": "all"} | window)
    assert listed["Total"] == 1
    [task] = listed["Tasks"]
    assert task["TaskID"] == first and task["Param"]["RecordURL"] == "https://example.com/a"
    assert task["CreateTime"] == "2026-01-01 12:00:00" and task["StartTime"] == task["CreateTime"]
    everything = await call(env, "List", {"Status": "all"})
    assert [t["TaskID"] for t in everything["Tasks"]] == [second, first]  # newest first
    await call(env, "Stop", {"TaskID": first})
    await env.fake.wait_for_status(first, "finished")
    done = await call(env, "List", {"Status": "finished"})
    running_ = await call(env, "List", {"Status": "running"})
    assert [t["TaskID"] for t in done["Tasks"]] == [first]
    assert [t["TaskID"] for t in running_["Tasks"]] == [second]
    assert done["Tasks"][0]["FinishTime"] == "2026-01-01 13:00:00"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"Status": "Running"},
        {"Status": "all", "StartTime": "2026/01/01 12:00:00", "EndTime": "2026-01-01 13:00:00"},
        {"Status": "all", "EndTime": "2026-01-01T13:00:00"},
    ],
)
async def test_list_rejects_bad_filters(env: Env, data: dict[str, Any]) -> None:
    assert (await call(env, "List", data))["ErrorCode"] == "InvalidParam"


async def test_list_start_time_without_end_time_crashes_like_the_source(env: Env) -> None:
    raw = body_of("List", {"Status": "all", "StartTime": "2026-01-01 12:00:00"})
    status, _ = await send(env, raw, signed(env, raw))
    assert status == 502


async def test_without_list_the_action_is_unknown() -> None:
    async with running(has_list=False) as e:
        await start(e)
        raw = body_of("List", {"Status": "all"})
        status, answer = await send(e, raw, signed(e, raw))
        assert (status, answer) == (502, {"message": "Bad Gateway"})


# --- faults --------------------------------------------------------------------------------


async def test_drop_creates_the_task_but_the_client_sees_a_disconnect(env: Env) -> None:
    env.fake.inject(Drop())
    raw = body_of("Start", {"RecordURL": PAGE})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await send(env, raw, signed(env, raw))
    [rec] = env.fake.received
    assert rec.ok and rec.status is None and rec.task_id in env.fake.tasks
    assert env.fake.tasks[rec.task_id].status == "recording"
    await start(env)  # the server keeps working; aiohttp did not resend the POST
    assert len(env.fake.tasks) == 2 and len(env.fake.received) == 2


async def test_delay_restricted_to_start_acts_then_answers_late(env: Env) -> None:
    first = await start(env)
    env.fake.inject(Delay(30, action="Start"))
    assert (await call(env, "Describe", {"TaskID": first}))["Status"] == "recording"  # not delayed
    raw = body_of("Start", {"RecordURL": PAGE})
    with pytest.raises(TimeoutError):
        await send(env, raw, signed(env, raw), timeout=0.3)
    await env.fake.wait_for(lambda: len(env.fake.tasks) == 2 and len(env.fake.received) == 3)
    assert env.fake.received[-1].ok


async def test_cold_start_leaves_a_task_behind_a_client_timeout() -> None:
    async with running(start_delay=30) as e:
        raw = body_of("Start", {"RecordURL": PAGE})
        with pytest.raises(TimeoutError):
            await send(e, raw, signed(e, raw), timeout=0.3)
        await e.fake.wait_for(lambda: len(e.fake.tasks) == 1)
        [task] = e.fake.tasks.values()
        assert task.status == "normal" and e.fake.received == []  # still "cold starting"
        listed = await call(e, "List", {"Status": "running"})
        assert listed["Tasks"][0]["Param"]["RecordURL"] == PAGE  # how a client finds it
        await call(e, "Stop", {"TaskID": task.task_id})
        assert task.status == "canceled"


async def test_http_status_and_error_code_faults_do_not_act(env: Env) -> None:
    env.fake.inject(HttpStatus(429), ErrorCode("InternalError", "redis down"), HttpStatus(504))
    raw = body_of("Start", {"RecordURL": PAGE})
    assert await send(env, raw, signed(env, raw)) == (429, {"message": "API rate limit exceeded"})
    answer = await call(env, "Start", {"RecordURL": PAGE})
    assert (answer["ErrorCode"], answer["ErrorMessage"]) == ("InternalError", "redis down")
    assert await send(env, raw, signed(env, raw)) == (504, {"message": "Gateway Time-out"})
    assert env.fake.tasks == {} and env.fake.starts() == []
    await start(env)
    assert len(env.fake.tasks) == 1


async def test_serve_forever_logs_calls_without_secrets(captured_logs: LogCapture) -> None:
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve_forever(KEY, SECRET, "127.0.0.1", 0, ready=ready.set_result, step=0.01)
    )
    try:
        url = await asyncio.wait_for(ready, 5)
        raw = body_of("Start", {"RecordURL": PAGE})
        headers = apigw.sign(
            app_key=KEY, app_secret=SECRET, method="POST", url=url, body=raw, now=datetime.now(UTC)
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=raw, headers=headers) as r,
        ):
            assert r.status == 200
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    [line] = captured_logs.events("fake_web.received")
    assert (line["action"], line["ok"], line["record_url"]) == ("Start", True, PAGE)
    assert SECRET not in captured_logs.text and "signature" not in captured_logs.text


def test_the_fake_gateway_s_own_signature_check_meets_the_worked_example() -> None:
    """The fake verifies with its own code (not the client's), held to the known answers of the
    worked example (Tencent's rules and the official demos: Content-MD5 = base64 of the hex
    MD5, six fields, stage prefix stripped)."""
    from scheduler.fakes import web_auth

    body = (
        b'{"Action":"Start","Data":{"RecordURL":"https://example.com/page","Width":1280,'
        b'"Height":720,"MaxDurationLimit":3600}}'
    )
    md5 = web_auth.gateway_md5(body)
    assert md5 == "YmU5NDQ1MjkwZmRmMjVlZjgwNzUyMTdhYzAyYzIwZWE="
    text = web_auth.gateway_string(
        [("x-date", "Thu, 01 Jan 2026 04:00:00 GMT")],
        "post",
        "application/json",
        "application/json",
        md5,
        web_auth.gateway_path("/release/record", []),
    )
    assert text == (
        "x-date: Thu, 01 Jan 2026 04:00:00 GMT\nPOST\napplication/json\napplication/json\n"
        "YmU5NDQ1MjkwZmRmMjVlZjgwNzUyMTdhYzAyYzIwZWE=\n/record"
    )
    secret = "exampleAppSecret0000000000000000000000"
    assert web_auth.gateway_signature(secret, text, "hmac-sha1") == "yaWW10wMcjUUH/Oj1te78NPAFAY="
    assert (
        web_auth.gateway_signature(secret, text, "hmac-sha256")
        == "ekPVSPu10t7952P4ybiac9mqniDFXqINkjClKbv1IpE="
    )
    # the doc's form example: parameters sorted, an empty Content-MD5 field kept
    form = web_auth.gateway_string(
        [("x-date", "Thu, 11 Mar 2021 08:29:58 GMT"), ("source", "apigw test")],
        "POST",
        "application/json",
        "application/x-www-form-urlencoded",
        "",
        web_auth.gateway_path("/", [("p", "test")]),
    )
    assert form == (
        "source: apigw test\nx-date: Thu, 11 Mar 2021 08:29:58 GMT\nPOST\napplication/json\n"
        "application/x-www-form-urlencoded\n\n/?p=test"
    )
