"""In-process fake of Tencent's LIVE API 3.0 recording tasks (POST / on loopback).

For the tests and trying `recsched run` without an account. It imports nothing of the daemon:
signatures are checked by live_auth's own TC3 code; CreateRecordTask / StopRecordTask /
DeleteRecordTask / DescribeRecordTask apply the documented rules (../shared/reference/
live-api-3.md; inferred ones marked [I]); errors are HTTP 200 `{"Response": {"Error"}}` [C].
Faults: Delay (act, answer late), Drop (act, close the connection unanswered), ErrorCode
(answer it, do nothing). No secret or signature is logged or kept.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from scheduler.fakes.live_auth import Refused, verify
from scheduler.fakes.serve import serve

Json = dict[str, Any]
VERSION = "2018-08-01"
ACTIONS = ("CreateRecordTask", "StopRecordTask", "DeleteRecordTask", "DescribeRecordTask")
#: EndTime - StartTime of one task at most. [C]
MAX_TASK_S = 86400
#: EndTime < now + 7 days. [C]
MAX_END_AHEAD_S = 7 * 86400
#: DescribeRecordTask: span <= one week, not before 90 days ago. [C]
MAX_QUERY_S = 7 * 86400
MAX_QUERY_AGE_S = 90 * 86400
REGIONS = frozenset(
    (
        "ap-guangzhou", "ap-shanghai", "ap-beijing", "ap-chengdu", "ap-chongqing",
        "ap-nanjing", "ap-hongkong", "ap-singapore", "ap-bangkok", "ap-mumbai", "ap-seoul",
        "ap-tokyo", "na-siliconvalley", "na-ashburn", "eu-frankfurt", "sa-saopaulo",
    )
)  # fmt: skip
_CREATE_KEYS = {
    "StreamName": str,
    "DomainName": str,
    "AppName": str,
    "EndTime": int,
    "StartTime": int,
    "StreamType": int,
    "TemplateId": int,
    "Extension": str,
}
_DESCRIBE_KEYS = {
    "StartTime": int,
    "EndTime": int,
    "StreamName": str,
    "DomainName": str,
    "AppName": str,
    "ScrollToken": str,
}


@dataclass(frozen=True)
class Delay:  # act, then answer `seconds` late
    seconds: float
    action: str | None = None


@dataclass(frozen=True)
class Drop:  # act, then close the connection unanswered
    action: str | None = None


@dataclass(frozen=True)
class ErrorCode:  # answer this error; nothing happens
    code: str
    message: str = "injected error"
    action: str | None = None


Fault = Delay | Drop | ErrorCode


class ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code, self.message = code, message


@dataclass
class Task:
    task_id: str
    domain: str
    app: str
    stream: str
    start: int
    end: int
    template_id: int = 0
    stopped: int = 0
    deleted: bool = False

    def shown(self) -> Json:
        return {
            "TaskId": self.task_id,
            "DomainName": self.domain,
            "AppName": self.app,
            "StreamName": self.stream,
            "StartTime": self.start,
            "EndTime": self.end,
            "TemplateId": self.template_id,
            "Stopped": self.stopped,
        }


@dataclass(frozen=True)
class Received:
    action: str
    body: Json  # the request's JSON (never a header or signature)
    ok: bool  # authenticated and acted on (even if then delayed or dropped)
    error_code: str | None
    at: float
    task_id: str | None = None


@dataclass
class FakeLive:
    secret_id: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    clock: Callable[[], float] = time.time
    page_size: int = 20  # Describe's page [I]
    rate_limit: int | None = None  # more requests of one action in 1 s: RequestLimitExceeded
    tasks: dict[str, Task] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._faults: list[Fault] = []
        self._recent: dict[str, list[float]] = {}
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()

    async def wait_for_tasks(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Until the fake holds `count` tasks (a create has reached it and acted)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.tasks) >= count)

    def inject(self, *faults: Fault) -> None:
        """Faults apply to the next matching requests, one request each, in order."""
        self._faults.extend(faults)

    def creates(self) -> list[Received]:
        return [r for r in self.received if r.action == "CreateRecordTask"]

    def live_tasks(self) -> list[Task]:
        return [t for t in self.tasks.values() if not t.deleted]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = await serve(app, host, port, grace=0.5)
        address = self._runner.addresses[0]
        self.url = f"http://{host}:{address[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _fault(self, action: str) -> Fault | None:
        for fault in self._faults:
            if fault.action in (None, action):
                self._faults.remove(fault)
                return fault
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        now = self.clock()
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        action = headers.get("x-tc-action", "")
        request_id = str(uuid.uuid4())
        data: Json = {}
        fault: Fault | None = None
        ok, code, task_id = False, None, None
        try:
            if request.method != "POST" or request.path != "/":
                raise ApiError("InvalidParameter", "the fake takes only POST / [I]")
            if not headers.get("content-type", "").startswith("application/json"):
                raise ApiError("InvalidParameter", "Content-Type must be application/json")
            verify({self.secret_id: self.secret_key}, self.token, "POST", headers, body, now)
            data = self._json(body)
            self._check_common(headers, action, now)
            fault = self._fault(action)
            if isinstance(fault, ErrorCode):
                raise ApiError(fault.code, fault.message)
            answer = self._act(action, data, int(now))
            task_id = answer.get("TaskId") or data.get("TaskId")
            ok = True
        except Refused as exc:
            code, answer = exc.code, {"Error": {"Code": exc.code, "Message": exc.message}}
        except ApiError as exc:
            code, answer = exc.code, {"Error": {"Code": exc.code, "Message": exc.message}}
        answer["RequestId"] = request_id
        async with self._changed:
            self.received.append(Received(action, data, ok, code, now, task_id))
            self._changed.notify_all()
        if isinstance(fault, Drop):
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        if isinstance(fault, Delay):
            await asyncio.sleep(fault.seconds)
        return web.json_response({"Response": answer})

    @staticmethod
    def _json(body: bytes) -> Json:
        try:
            value = json.loads(body or b"{}")
        except ValueError:
            raise ApiError("InvalidParameter", "the body is not JSON") from None
        if not isinstance(value, dict):
            raise ApiError("InvalidParameter", "the body is not a JSON object")
        return value

    def _check_common(self, headers: dict[str, str], action: str, now: float) -> None:
        if action not in ACTIONS:
            raise ApiError("InvalidAction", f"the action {action!r} does not exist")
        if headers.get("x-tc-version") != VERSION:
            raise ApiError("NoSuchVersion", "the version does not exist")
        if headers.get("x-tc-region") not in REGIONS:
            raise ApiError("UnsupportedRegion", "the region is not supported")
        if self.rate_limit is not None:
            recent = [t for t in self._recent.get(action, []) if now - t < 1.0]
            if len(recent) >= self.rate_limit:
                raise ApiError("RequestLimitExceeded", "request frequency exceeds the limit")
            self._recent[action] = [*recent, now]

    def _act(self, action: str, data: Json, now: int) -> Json:
        if action == "CreateRecordTask":
            return self._create(data, now)
        if action == "DescribeRecordTask":
            return self._describe(data, now)
        task = self._task(data)
        if action == "StopRecordTask":
            task.stopped = task.stopped or now  # a second stop changes nothing [I]
        else:
            task.deleted = True
        return {}

    def _task(self, data: Json) -> Task:
        _types(data, {"TaskId": str}, ("TaskId",))
        task = self.tasks.get(data["TaskId"])
        if task is None or task.deleted:
            raise ApiError("InvalidParameter", "the task does not exist")  # [I]
        return task

    def _create(self, data: Json, now: int) -> Json:
        _types(data, _CREATE_KEYS, ("StreamName", "DomainName", "AppName", "EndTime"))
        start, end = int(data.get("StartTime", now)), int(data["EndTime"])
        if end <= start or end <= now:
            raise ApiError("InvalidParameter", "EndTime must be after StartTime and now")
        if end - start > MAX_TASK_S:
            raise ApiError("InvalidParameter", "EndTime - StartTime must be at most 24 hours")
        if end >= now + MAX_END_AHEAD_S:
            raise ApiError("InvalidParameter", "EndTime must be less than now + 7 days")
        if data.get("StreamType", 0) not in (0, 1):
            raise ApiError("InvalidParameter", "StreamType must be 0 or 1")
        task = Task(
            (uuid.uuid4().hex + uuid.uuid4().hex),
            data["DomainName"],
            data["AppName"],
            data["StreamName"],
            start,
            end,
            int(data.get("TemplateId", 0)),
        )
        self.tasks[task.task_id] = task
        return {"TaskId": task.task_id}

    def _describe(self, data: Json, now: int) -> Json:
        _types(data, _DESCRIBE_KEYS, ("StartTime", "EndTime"))
        start, end = data["StartTime"], data["EndTime"]
        if end <= start or end - start > MAX_QUERY_S or start < now - MAX_QUERY_AGE_S:
            raise ApiError("InvalidParameter", "the range must be at most a week, recent")
        found = [
            t
            for t in self.tasks.values()
            if not t.deleted
            and start <= t.start
            and t.end <= end  # listed only if it lies wholly in the range [C]
            and all(
                data.get(k) in (None, getattr(t, a))
                for k, a in (("DomainName", "domain"), ("AppName", "app"), ("StreamName", "stream"))
            )
        ]
        offset = int(data.get("ScrollToken") or 0)
        page = found[offset : offset + self.page_size]
        more = offset + self.page_size < len(found)
        return {
            "TaskList": [t.shown() for t in page],
            "ScrollToken": str(offset + self.page_size) if more else "",
        }


def _types(data: Json, keys: dict[str, type], required: tuple[str, ...]) -> None:
    for key in data:
        if key not in keys:
            raise ApiError("UnknownParameter", f"the parameter {key} is not recognised")
    for key in required:
        if key not in data:
            raise ApiError("MissingParameter", f"the parameter {key} is missing")
    for key, kind in keys.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ApiError("InvalidParameter", f"{key} must be {kind.__name__}")  # [I]


async def serve_forever(
    secret_id: str, secret_key: str, host: str, port: int, *, ready: Callable[[str], None]
) -> None:
    fake = FakeLive(secret_id, secret_key)
    ready(await fake.start(host, port))
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()
