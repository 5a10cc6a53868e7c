"""Behaviour of the fake LVB server, exercised with a real aiohttp client over 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
import pytest
import structlog
from yarl import URL

from scheduler.fakes.lvb import (
    LVB_PATH,
    RET_BAD_APPID,
    RET_BAD_PARAM,
    RET_BAD_SIGN,
    RET_EXPIRED,
    RET_UNKNOWN_INTERFACE,
    RET_UNKNOWN_TASK,
    Delay,
    Drop,
    FakeLvb,
    HttpStatus,
    Ret,
    serve_forever,
)

APPID = 1234
KEY = "test-lvb-key"
NOW = 1767240000  # 2026-01-01 12:00:00 CST
T = str(NOW + 60)  # Tencent's advice: expiry = now + 60 s


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    fake: FakeLvb
    endpoint: str
    session: aiohttp.ClientSession


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    fake = FakeLvb(appid=APPID, key=KEY, clock=FakeClock(NOW))
    endpoint = await fake.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            # aiohttp (3.14) silently re-sends an idempotent request (GET) once after
            # ServerDisconnectedError/ClientOSError; only this private switch turns it off
            # (aiohttp's own test_utils uses it). A real LVB client must do the same, or a lost
            # reply becomes a duplicate Live_Tape_Start. See test_default_session_resends_*.
            session._retry_connection = False
            yield Env(fake, endpoint, session)
    finally:
        await fake.stop()


def md5_sign(t: str, key: str = KEY) -> str:
    return hashlib.md5((key + t).encode()).hexdigest()


def common(interface: str, t: str = T, sign: str | None = None) -> dict[str, str]:
    return {
        "appid": str(APPID),
        "interface": interface,
        "t": t,
        "sign": md5_sign(t) if sign is None else sign,
    }


def start_params(**overrides: str) -> dict[str, str]:
    params = common("Live_Tape_Start") | {
        "Param.s.channel_id": "8888_test123",
        "Param.s.start_time": "2026-01-01 12:00:00",
        "Param.s.end_time": "2026-01-01 12:30:00",
        "Param.n.task_sub_type": "0",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v != "<omit>"}


def stop_params(task_id: int | str, channel_id: str = "8888_test123") -> dict[str, str]:
    return common("Live_Tape_Stop") | {
        "Param.s.channel_id": channel_id,
        "Param.n.task_id": str(task_id),
    }


async def get_raw(
    env: Env, query: str, client_timeout: aiohttp.ClientTimeout | None = None
) -> tuple[int, str]:
    # encoded=True: the bytes of `query` go on the wire exactly as written.
    url = URL(f"{env.endpoint}?{query}", encoded=True)
    async with env.session.get(url, timeout=client_timeout) as resp:
        return resp.status, await resp.text()


async def call(env: Env, params: dict[str, str]) -> dict[str, object]:
    status, text = await get_raw(env, urlencode(params))
    assert status == 200, text
    body = json.loads(text)
    assert isinstance(body, dict)
    return body


def task_id_of(body: dict[str, object]) -> int:
    output = body["output"]
    assert isinstance(output, dict)
    task_id = output["task_id"]
    assert type(task_id) is int
    return task_id


async def test_endpoint_url_shape(env: Env) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+" + re.escape(LVB_PATH), env.endpoint)
    assert not env.endpoint.endswith(":0" + LVB_PATH)


async def test_valid_start_returns_exact_task_id_above_2_pow_53(env: Env) -> None:
    status, text = await get_raw(env, urlencode(start_params()))
    assert status == 200
    raw = re.search(r'"task_id":\s*(\d+)\s*}', text)
    assert raw is not None, "task_id must be a bare JSON integer, not a string"
    body = json.loads(text)
    assert body["ret"] == 0 and body["message"] == ""
    task_id = task_id_of(body)
    assert task_id == int(raw.group(1)) > 2**53
    assert task_id < 2**64
    assert float(task_id) != task_id  # a float round-trip would corrupt it

    task = env.fake.tasks[task_id]
    assert task.channel_id == "8888_test123"
    assert (task.start, task.end, task.effective_end) == (NOW, NOW + 1800, NOW + 1800)
    assert (task.file_format, task.record_type, task.created_at) == ("flv", "video", NOW)
    [rec] = env.fake.received
    assert rec == env.fake.starts()[0]
    assert (rec.ok, rec.ret, rec.task_id, rec.error, rec.t) == (True, 0, task_id, "", T)
    assert rec.arrived_at == NOW and rec.interface == "Live_Tape_Start"
    assert "t" not in rec.params and "sign" not in rec.params
    assert rec.params["Param.s.start_time"] == "2026-01-01 12:00:00"


async def test_bad_sign_rejected_without_leaking_secrets(env: Env) -> None:
    wrong = md5_sign(T, key="other-key")
    body = await call(env, start_params(sign=wrong))
    assert body["ret"] == RET_BAD_SIGN
    [rec] = env.fake.received
    assert not rec.ok and rec.task_id is None and env.fake.tasks == {}
    for secret in (KEY, wrong, md5_sign(T)):
        assert secret not in rec.error and secret not in str(body)
        assert secret not in repr(rec)


async def test_missing_sign_rejected(env: Env) -> None:
    body = await call(env, start_params(sign="<omit>"))
    assert body["ret"] == RET_BAD_SIGN


async def test_uppercase_sign_accepted(env: Env) -> None:
    body = await call(env, start_params(sign=md5_sign(T).upper()))
    assert body["ret"] == 0
    assert len(env.fake.tasks) == 1


async def test_expired_t_rejected(env: Env) -> None:
    t = str(NOW - 1)
    body = await call(env, start_params(t=t, sign=md5_sign(t)))
    assert body["ret"] == RET_EXPIRED
    assert env.fake.tasks == {} and env.fake.starts() == []


async def test_t_equal_to_now_accepted(env: Env) -> None:
    t = str(NOW)
    assert (await call(env, start_params(t=t, sign=md5_sign(t))))["ret"] == 0


async def test_millisecond_t_rejected(env: Env) -> None:
    t = str((NOW + 60) * 1000)
    body = await call(env, start_params(t=t, sign=md5_sign(t)))
    assert body["ret"] == RET_EXPIRED
    assert "milliseconds" in str(body["message"])
    assert env.fake.tasks == {}


@pytest.mark.parametrize("t", ["1767240060.0", "-1767240060", "0x6955b2bc", ""])
async def test_non_decimal_t_rejected(env: Env, t: str) -> None:
    body = await call(env, start_params(t=t, sign=md5_sign(t)))
    assert body["ret"] == RET_EXPIRED
    assert env.fake.tasks == {}


@pytest.mark.parametrize("appid", ["4321", "", "<omit>"])
async def test_bad_appid_rejected(env: Env, appid: str) -> None:
    body = await call(env, start_params(appid=appid))
    assert body == {"ret": RET_BAD_APPID, "message": "appid is invalid"}


async def test_unknown_interface_rejected(env: Env) -> None:
    body = await call(env, common("Live_Tape_GetFilelist"))
    assert body["ret"] == RET_UNKNOWN_INTERFACE


@pytest.mark.parametrize(
    "missing",
    ["Param.s.channel_id", "Param.s.start_time", "Param.s.end_time", "Param.n.task_sub_type"],
)
async def test_missing_start_param_rejected(env: Env, missing: str) -> None:
    body = await call(env, start_params(**{missing: "<omit>"}))
    assert body["ret"] == RET_BAD_PARAM
    assert env.fake.tasks == {}


@pytest.mark.parametrize(
    "start_time",
    [
        "2026/01/01 12:00:00",
        "2026-01-01T12:00:00",
        "2026-01-01 12:00",
        "2026-1-1 12:00:00",
        "2026-02-30 12:00:00",
        "2026-01-01+12%3A00%3A00",  # what a double-encoded value decodes to
        "1767240000",
    ],
)
async def test_bad_time_format_rejected(env: Env, start_time: str) -> None:
    body = await call(env, start_params(**{"Param.s.start_time": start_time}))
    assert body["ret"] == RET_BAD_PARAM
    assert env.fake.tasks == {}


@pytest.mark.parametrize("sub_type", ["2", "-1", "", "1.0"])
async def test_bad_sub_type_rejected(env: Env, sub_type: str) -> None:
    body = await call(env, start_params(**{"Param.n.task_sub_type": sub_type}))
    assert body["ret"] == RET_BAD_PARAM


@pytest.mark.parametrize(
    ("record_type", "file_format", "accepted"),
    [
        ("audio", "mp4", True),
        ("audio", "aac", True),
        ("video", "hls", True),
        ("video", "aac", False),
        ("video", "mkv", False),
        ("screen", "flv", False),
    ],
)
async def test_record_type_file_format_matrix(
    env: Env, record_type: str, file_format: str, accepted: bool
) -> None:
    params = start_params(
        **{"Param.s.record_type": record_type, "Param.s.file_format": file_format}
    )
    body = await call(env, params)
    assert body["ret"] == (0 if accepted else RET_BAD_PARAM)
    assert len(env.fake.tasks) == (1 if accepted else 0)


async def test_end_must_follow_start(env: Env) -> None:
    body = await call(env, start_params(**{"Param.s.end_time": "2026-01-01 12:00:00"}))
    assert body["ret"] == RET_BAD_PARAM


async def test_scheduled_window_limited_to_one_day(env: Env) -> None:
    ok = await call(env, start_params(**{"Param.s.end_time": "2026-01-02 12:00:00"}))
    too_long = await call(env, start_params(**{"Param.s.end_time": "2026-01-02 12:00:01"}))
    assert ok["ret"] == 0
    assert too_long["ret"] == RET_BAD_PARAM
    assert len(env.fake.tasks) == 1


async def test_realtime_task_clipped_to_30_minutes(env: Env) -> None:
    params = start_params(
        **{
            "Param.n.task_sub_type": "1",
            "Param.s.start_time": "2026-01-01 11:00:00",  # ignored in real-time mode
            "Param.s.end_time": "2026-01-01 14:00:00",
        }
    )
    body = await call(env, params)
    assert body["ret"] == 0 and body["message"] == ""
    task = env.fake.tasks[task_id_of(body)]
    assert task.end == NOW + 2 * 3600
    assert (task.effective_start, task.effective_end) == (NOW, NOW + 1800)


async def test_realtime_task_shorter_than_30_minutes_not_clipped(env: Env) -> None:
    params = start_params(
        **{"Param.n.task_sub_type": "1", "Param.s.end_time": "2026-01-01 12:05:00"}
    )
    task = env.fake.tasks[task_id_of(await call(env, params))]
    assert task.effective_end == NOW + 300


async def test_two_identical_starts_create_two_tasks(env: Env) -> None:
    query = urlencode(start_params())
    first = json.loads((await get_raw(env, query))[1])
    second = json.loads((await get_raw(env, query))[1])
    assert task_id_of(first) != task_id_of(second)
    assert len(env.fake.tasks) == 2 and len(env.fake.starts()) == 2


@pytest.mark.parametrize(
    "encoded_time",
    ["2026-01-01+12%3A00%3A00", "2026-01-01+12%3a00%3a00", "2026-01-01%2012:00:00"],
)
async def test_both_url_encodings_of_times_parse(env: Env, encoded_time: str) -> None:
    query = urlencode(start_params(**{"Param.s.start_time": "<omit>"}))
    status, text = await get_raw(env, f"{query}&Param.s.start_time={encoded_time}")
    assert status == 200
    body = json.loads(text)
    assert body["ret"] == 0, body
    assert env.fake.received[0].params["Param.s.start_time"] == "2026-01-01 12:00:00"
    assert env.fake.tasks[task_id_of(body)].start == NOW


async def test_urlencode_produces_plus_and_percent_3a(env: Env) -> None:
    query = urlencode(start_params())
    assert "Param.s.start_time=2026-01-01+12%3A00%3A00" in query
    assert (await call(env, start_params()))["ret"] == 0


async def test_delay_client_gives_up_but_server_created_task(env: Env) -> None:
    env.fake.inject(Delay(3.5))
    with pytest.raises(TimeoutError):
        await get_raw(
            env, urlencode(start_params()), client_timeout=aiohttp.ClientTimeout(total=0.2)
        )
    await env.fake.wait_for_requests(1, timeout=5)
    [rec] = env.fake.received
    assert rec.ok and rec.ret == 0 and rec.task_id is not None
    assert rec.task_id in env.fake.tasks  # a timeout does not mean the server did not act
    assert env.fake.starts() == [rec]


async def test_delay_then_normal_answer_and_fifo(env: Env) -> None:
    env.fake.inject(Delay(0.05))
    first = await call(env, start_params())  # client timeout 10 s: waits it out
    second = await call(env, start_params())
    assert first["ret"] == 0 and second["ret"] == 0
    assert len(env.fake.tasks) == 2


async def test_drop_closes_connection_but_task_created(env: Env) -> None:
    env.fake.inject(Drop())
    with pytest.raises(aiohttp.ClientConnectionError) as excinfo:
        await get_raw(env, urlencode(start_params()))
    assert isinstance(excinfo.value, aiohttp.ServerDisconnectedError)
    [rec] = env.fake.received
    assert rec.ok and rec.ret is None and rec.task_id in env.fake.tasks
    # the server keeps working after the drop
    assert (await call(env, start_params()))["ret"] == 0
    assert len(env.fake.tasks) == 2


async def test_default_session_resends_get_after_drop_creating_duplicate(env: Env) -> None:
    """Documents the aiohttp hazard the fixture disables: one call, two tasks."""
    env.fake.inject(Drop())
    async with aiohttp.ClientSession() as default_session:
        url = URL(f"{env.endpoint}?{urlencode(start_params())}", encoded=True)
        async with default_session.get(url) as resp:
            body = await resp.json()
    assert body["ret"] == 0  # the caller sees one clean success ...
    assert len(env.fake.received) == 2  # ... but aiohttp sent the request twice
    assert len(env.fake.tasks) == 2  # and the server created two recording tasks


async def test_drop_of_invalid_request_creates_nothing(env: Env) -> None:
    env.fake.inject(Drop())
    with pytest.raises(aiohttp.ClientConnectionError):
        await get_raw(env, urlencode(start_params(sign="0" * 32)))
    [rec] = env.fake.received
    assert not rec.ok and rec.task_id is None and env.fake.tasks == {}


@pytest.mark.parametrize("status", [502, 500, 403, 404])
async def test_http_status_fault_then_normal(env: Env, status: int) -> None:
    env.fake.inject(HttpStatus(status))
    got, _text = await get_raw(env, urlencode(start_params()))
    assert got == status
    assert env.fake.tasks == {}
    [rec] = env.fake.received
    assert (rec.ok, rec.ret, rec.task_id) == (False, None, None)
    assert (await call(env, start_params()))["ret"] == 0


async def test_ret_fault(env: Env) -> None:
    env.fake.inject(Ret(-505), Ret(7, "quota exceeded"))
    assert await call(env, start_params()) == {"ret": -505, "message": "stream not live"}
    assert await call(env, start_params()) == {"ret": 7, "message": "quota exceeded"}
    assert env.fake.tasks == {} and env.fake.starts() == []
    assert [r.ret for r in env.fake.received] == [-505, 7]


async def test_wait_for_requests(env: Env) -> None:
    with pytest.raises(TimeoutError):
        await env.fake.wait_for_requests(1, timeout=0.05)
    waiter = asyncio.create_task(env.fake.wait_for_requests(2, timeout=5))
    await call(env, start_params())
    assert not waiter.done()
    await call(env, start_params(sign="bad"))
    await waiter  # rejected requests count too
    await env.fake.wait_for_requests(2, timeout=0)  # already satisfied


async def test_stop_known_and_unknown_task(env: Env) -> None:
    task_id = task_id_of(await call(env, start_params()))
    assert await call(env, stop_params(task_id, channel_id="other")) == {
        "ret": RET_UNKNOWN_TASK,
        "message": "task does not exist",
    }
    assert env.fake.tasks[task_id].stopped_at is None
    assert await call(env, stop_params(task_id)) == {"ret": 0, "message": ""}
    assert env.fake.tasks[task_id].stopped_at == NOW
    assert (await call(env, stop_params(task_id + 1)))["ret"] == RET_UNKNOWN_TASK
    assert (await call(env, stop_params("abc")))["ret"] == RET_UNKNOWN_TASK
    missing = stop_params(task_id)
    del missing["Param.n.task_id"]
    assert (await call(env, missing))["ret"] == RET_BAD_PARAM
    assert len(env.fake.starts()) == 1


async def test_serve_forever_logs_calls_without_secrets() -> None:
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    with structlog.testing.capture_logs() as logs:
        server = asyncio.create_task(
            serve_forever("127.0.0.1", 0, APPID, KEY, ready=ready.set_result)
        )
        endpoint = await asyncio.wait_for(ready, timeout=5)
        t = str(int(time.time()) + 60)  # serve_forever uses the real clock
        params = start_params(t=t, sign=md5_sign(t))
        url = URL(f"{endpoint}?{urlencode(params)}", encoded=True)
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            body = await resp.json()
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
    assert body["ret"] == 0
    [line] = [e for e in logs if e["event"] == "fake.received"]
    assert line["interface"] == "Live_Tape_Start" and line["channel_id"] == "8888_test123"
    assert line["start_time"] == "2026-01-01 12:00:00"
    assert line["end_time"] == "2026-01-01 12:30:00" and line["task_sub_type"] == "0"
    assert (line["ok"], line["ret"], line["error"]) == (True, 0, "")
    assert line["task_id"] == str(task_id_of(body))  # text: a JSON number > 2**53 breaks jq
    assert KEY not in repr(logs) and md5_sign(t) not in repr(logs)
