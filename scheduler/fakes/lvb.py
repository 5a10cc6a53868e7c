"""In-process fake of Tencent's legacy LVB ``GET /common_access`` API (Live_Tape_Start/Stop).

Used by the test-suite and by ``recsched fake-provider`` / ``recsched demo``. It checks requests
the way the real service is documented to (appid, ``t`` expiry, ``sign == md5(key + t)``, Start
parameter rules), answers with a task id above 2**53 and, like the real service, never
deduplicates: two identical Start calls create two tasks. Faults can be queued to emulate slow
answers, lost replies, gateway errors and ``ret != 0`` failures. Neither the key nor any ``sign``
value is ever logged or stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TypeAlias

import structlog
from aiohttp import web

from scheduler.fakes.serve import serve

LVB_PATH = "/common_access"

RET_OK = 0
RET_BAD_SIGN = -100
RET_EXPIRED = -101
RET_BAD_PARAM = -102
RET_BAD_APPID = -103
RET_UNKNOWN_INTERFACE = -104
RET_UNKNOWN_TASK = -105

START = "Live_Tape_Start"
STOP = "Live_Tape_Stop"
CST = timezone(timedelta(hours=8), "CST")  # China Standard Time, no DST
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
FIRST_TASK_ID = 18446744073709000000  # > 2**63 and < 2**64: breaks float and int64 parsing
REALTIME_MAX_SECONDS = 30 * 60
SCHEDULED_MAX_SECONDS = 24 * 3600
MILLIS_THRESHOLD_SECONDS = 10 * 366 * 24 * 3600  # t beyond now + ~10 years is surely ms
FORMATS_BY_RECORD_TYPE = {"video": {"flv", "hls", "mp4"}, "audio": {"aac", "flv", "hls", "mp4"}}
_DIGITS = re.compile(r"[0-9]+")
_TIME_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


@dataclass(frozen=True)
class Delay:  # sleep before answering; the call is recorded and acted on first
    seconds: float


@dataclass(frozen=True)
class HttpStatus:  # answer with this HTTP status and a short text body; no task
    status: int


@dataclass(frozen=True)
class Ret:  # answer HTTP 200 {"ret": code, "message": message}; no task
    code: int
    message: str = "stream not live"


@dataclass(frozen=True)
class Drop:  # act on the call (create the task), then close the connection unanswered
    pass


Fault: TypeAlias = Delay | HttpStatus | Ret | Drop


@dataclass(frozen=True)
class Received:
    arrived_at: float  # clock() when the handler got the request
    interface: str  # value of the `interface` param ('' if missing)
    params: dict[str, str]  # decoded query params, WITHOUT 't' and 'sign'
    t: str  # raw t as sent
    ok: bool  # passed every check and was acted on (ret=0 computed, even if Delay/Drop)
    ret: int | None  # ret in the JSON answer (None for HttpStatus/Drop faults)
    task_id: int | None  # task id created (None if none)
    error: str  # '' or why it was rejected (never contains the key or the sign)


@dataclass
class FakeTask:
    task_id: int
    channel_id: str
    task_sub_type: int
    file_format: str
    record_type: str
    start: float  # requested start_time (epoch seconds)
    end: float  # requested end_time (epoch seconds)
    effective_start: float  # sub_type 1: the moment the call landed
    effective_end: float  # sub_type 1: min(end, now + 30 min)
    created_at: float
    stopped_at: float | None = None


class _Reject(Exception):
    def __init__(self, ret: int, message: str) -> None:
        super().__init__(message)
        self.ret = ret
        self.message = message


def _parse_cst(value: str, name: str) -> float:
    if not _TIME_SHAPE.fullmatch(value):
        raise _Reject(RET_BAD_PARAM, f"{name} must be formatted {TIME_FORMAT}")
    try:
        return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=CST).timestamp()
    except ValueError:
        raise _Reject(RET_BAD_PARAM, f"{name} is not a valid time") from None


def _require(query: Mapping[str, str], name: str) -> str:
    value = query.get(name, "")
    if not value:
        raise _Reject(RET_BAD_PARAM, f"{name} is required")
    return value


class FakeLvb:
    def __init__(
        self,
        *,
        appid: int = 1234,
        key: str = "fake-lvb-key",
        clock: Callable[[], float] = time.time,
        on_received: Callable[[Received], None] | None = None,
    ) -> None:
        self._appid = appid
        self._key = key
        self._clock = clock
        self._on_received = on_received
        self._faults: deque[Fault] = deque()
        self._next_task_id = FIRST_TASK_ID
        self._cond = asyncio.Condition()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""  # the endpoint URL once started
        self.received: list[Received] = []
        self.tasks: dict[int, FakeTask] = {}
        self.app = web.Application()
        self.app.router.add_get(LVB_PATH, self._handle)

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each applies to the next request (FIFO), then normal behaviour."""
        self._faults.extend(faults)

    def starts(self) -> list[Received]:
        """The accepted Live_Tape_Start calls (ok=True), in arrival order."""
        return [r for r in self.received if r.ok and r.interface == START]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = any free port); return the full endpoint URL."""
        if self._runner is not None:
            raise RuntimeError("FakeLvb is already started")
        self._closing.clear()
        runner = await serve(self.app, host, port, grace=5.0)  # no access log: it shows `sign`
        self._runner = runner
        bound_port = int(runner.addresses[0][1])
        shown_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown_host}:{bound_port}{LVB_PATH}"
        return self.url

    async def stop(self) -> None:
        """Stop serving; requests still sleeping in a Delay are answered at once."""
        self._closing.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def wait_for_requests(self, n: int, timeout: float) -> None:  # noqa: ASYNC109 (API)
        """Wait until at least n requests were received; raise TimeoutError after timeout."""
        async with asyncio.timeout(timeout), self._cond:
            await self._cond.wait_for(lambda: len(self.received) >= n)

    async def _record(self, received: Received) -> None:
        async with self._cond:
            self.received.append(received)
            self._cond.notify_all()
        if self._on_received is not None:
            self._on_received(received)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        now = self._clock()
        query = request.query
        params = {k: query[k] for k in query if k not in ("t", "sign")}
        interface = query.get("interface", "")
        t_raw = query.get("t", "")

        def received(ok: bool, ret: int | None, task_id: int | None, error: str) -> Received:
            return Received(now, interface, params, t_raw, ok, ret, task_id, error)

        fault = self._faults.popleft() if self._faults else None
        if isinstance(fault, HttpStatus):
            await self._record(received(False, None, None, f"injected HTTP {fault.status}"))
            return web.Response(status=fault.status, text=f"{fault.status} (injected fault)")
        if isinstance(fault, Ret):
            error = f"injected ret {fault.code}: {fault.message}"
            await self._record(received(False, fault.code, None, error))
            return web.json_response({"ret": fault.code, "message": fault.message})

        task_id: int | None = None
        try:
            self._check_common(query, now)
            if interface == START:
                task_id = self._start(query, now)
            else:
                self._stop(query, now)
        except _Reject as exc:
            ret, message = exc.ret, exc.message
        else:
            ret, message = RET_OK, ""
        body: dict[str, object] = {"ret": ret, "message": message}
        if task_id is not None:
            body["output"] = {"task_id": task_id}  # json.dumps writes a bare exact integer

        if isinstance(fault, Drop):
            await self._record(received(ret == RET_OK, None, task_id, message))
            if request.transport is not None:
                request.transport.close()
            return web.Response()  # cannot be written: aiohttp drops it quietly
        await self._record(received(ret == RET_OK, ret, task_id, message))
        if isinstance(fault, Delay):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(fault.seconds):
                    await self._closing.wait()
        return web.Response(text=json.dumps(body), content_type="application/json")

    def _check_common(self, query: Mapping[str, str], now: float) -> None:
        if query.get("appid", "") != str(self._appid):
            raise _Reject(RET_BAD_APPID, "appid is invalid")
        t_raw = query.get("t", "")
        if not _DIGITS.fullmatch(t_raw):
            raise _Reject(RET_EXPIRED, "t must be decimal UNIX seconds")
        t = int(t_raw)
        if t > now + MILLIS_THRESHOLD_SECONDS:
            raise _Reject(RET_EXPIRED, "t looks like milliseconds")
        if t < int(now):
            raise _Reject(RET_EXPIRED, "t has expired")
        expected = hashlib.md5((self._key + t_raw).encode()).hexdigest()
        if not hmac.compare_digest(query.get("sign", "").lower().encode(), expected.encode()):
            raise _Reject(RET_BAD_SIGN, "sign is invalid")
        if query.get("interface", "") not in (START, STOP):
            raise _Reject(RET_UNKNOWN_INTERFACE, "interface is unknown")

    def _start(self, query: Mapping[str, str], now: float) -> int:
        channel_id = _require(query, "Param.s.channel_id")
        start = _parse_cst(_require(query, "Param.s.start_time"), "start_time")
        end = _parse_cst(_require(query, "Param.s.end_time"), "end_time")
        sub_type_raw = query.get("Param.n.task_sub_type", "")
        if sub_type_raw not in ("0", "1"):
            raise _Reject(RET_BAD_PARAM, "task_sub_type must be 0 or 1")
        sub_type = int(sub_type_raw)
        file_format = query.get("Param.s.file_format", "flv")
        record_type = query.get("Param.s.record_type", "video")
        allowed = FORMATS_BY_RECORD_TYPE.get(record_type)
        if allowed is None:
            raise _Reject(RET_BAD_PARAM, "record_type must be video or audio")
        if file_format not in allowed:
            raise _Reject(RET_BAD_PARAM, f"file_format {file_format} not allowed for {record_type}")
        if end <= start:
            raise _Reject(RET_BAD_PARAM, "end_time must be after start_time")
        if sub_type == 0:
            if end - start > SCHEDULED_MAX_SECONDS:
                raise _Reject(RET_BAD_PARAM, "end_time - start_time exceeds 1 day")
            effective_start, effective_end = start, end
        else:  # real-time: starts when the call lands, silently clipped to 30 minutes
            effective_start, effective_end = now, min(end, now + REALTIME_MAX_SECONDS)
            if effective_end <= now:
                raise _Reject(RET_BAD_PARAM, "end_time has already passed")
        task_id = self._next_task_id
        self._next_task_id += 1
        self.tasks[task_id] = FakeTask(
            task_id=task_id,
            channel_id=channel_id,
            task_sub_type=sub_type,
            file_format=file_format,
            record_type=record_type,
            start=start,
            end=end,
            effective_start=effective_start,
            effective_end=effective_end,
            created_at=now,
        )
        return task_id

    def _stop(self, query: Mapping[str, str], now: float) -> None:
        channel_id = _require(query, "Param.s.channel_id")
        task_id_raw = _require(query, "Param.n.task_id")
        task = self.tasks.get(int(task_id_raw)) if _DIGITS.fullmatch(task_id_raw) else None
        if task is None or task.channel_id != channel_id:
            raise _Reject(RET_UNKNOWN_TASK, "task does not exist")
        if task.stopped_at is None:
            task.stopped_at = now


async def serve_forever(
    host: str,
    port: int,
    appid: int,
    key: str,
    *,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Run a FakeLvb until cancelled, logging one ``fake.received`` line per call."""
    log = structlog.get_logger("recsched.fake")

    def log_received(r: Received) -> None:
        log.info(
            "fake.received",
            interface=r.interface,
            channel_id=r.params.get("Param.s.channel_id", ""),
            start_time=r.params.get("Param.s.start_time", ""),
            end_time=r.params.get("Param.s.end_time", ""),
            task_sub_type=r.params.get("Param.n.task_sub_type", ""),
            ok=r.ok,
            ret=r.ret,
            task_id=None if r.task_id is None else str(r.task_id),  # > 2**53: text for jq
            error=r.error,
        )

    fake = FakeLvb(appid=appid, key=key, on_received=log_received)
    endpoint = await fake.start(host, port)
    try:
        log.info("fake.listening", endpoint=endpoint, appid=appid)
        if ready is not None:
            ready(endpoint)
        await asyncio.Event().wait()
    finally:
        await fake.stop()
