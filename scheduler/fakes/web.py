"""In-process fake of Tencent's web-page recording function behind API Gateway (POST /record).

For the tests and ``recsched demo``; it follows the public source of the function
(github.com/TencentServerlessApps/web-record) and API Gateway's app auth. Requests need a valid
``hmac`` Authorization (web_auth) or get the gateway's 401 and do nothing. Start never
deduplicates; tasks walk the status machine in the background (web_tasks) and call
``CallbackURL`` back. Faults (web_rules) emulate slow answers, lost replies, gateway errors
and error codes. No secret or signature is ever logged or kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeAlias

import aiohttp
import structlog
from aiohttp import web

from scheduler.fakes.serve import serve
from scheduler.fakes.web_auth import ENVIRONMENTS, Refused, verify
from scheduler.fakes.web_rules import (
    CONTROLS,
    ApiError,
    Delay,
    Drop,
    ErrorCode,
    Fault,
    FunctionCrash,
    HttpStatus,
    Vanish,
    control,
    gateway_message,
    list_tasks,
    validate_start,
)
from scheduler.fakes.web_tasks import (
    DEFAULT_MAX_DURATION,
    CallbackDelivery,
    Fail,
    FakeTask,
    Json,
    Lifecycle,
    secs,
)

__all__ = [
    "DEFAULT_MAX_DURATION",
    "CallbackDelivery",
    "Delay",
    "Drop",
    "ErrorCode",
    "Fail",
    "FakeTask",
    "FakeWeb",
    "HttpStatus",
    "Received",
    "Vanish",
    "serve_forever",
]

WEB_PATH = "/record"
ENDPOINT_PATH = "/release" + WEB_PATH
#: The real function retries its Redis lookup (256+512+1024+2048 ms) before "not found". [S 19]
REAL_UNKNOWN_TASK_DELAY = 3.8


Wanted: TypeAlias = int | Callable[[], bool]


@dataclass(frozen=True)
class Received:
    action: str  # Action of the body ('' if unreadable)
    data: Json  # the body's Data (never any auth header or signature)
    ok: bool  # authenticated and acted on without an ErrorCode (even if then Delayed/Dropped)
    error_code: str | None  # ErrorCode answered, if any
    status: int | None  # HTTP status answered (None: dropped)
    at: float  # clock() when the request arrived
    task_id: str | None  # the task created (Start) or addressed
    error: str = ""  # why it was refused ('' if not); never contains a secret
    path: str = ""


class FakeWeb:
    def __init__(
        self,
        app_key: str,
        app_secret: str,
        *,
        clock: Callable[[], float] = time.time,
        step: float = 0.2,
        start_delay: float = 0.0,
        unknown_task_delay: float = 0.0,  # the real one takes REAL_UNKNOWN_TASK_DELAY (~3.8 s)
        callback_interval: float = 1.0,
        callback_twice: bool = False,
        fail_tasks: Fail | None = None,  # every task ends with this error instead of videos
        has_list: bool = True,
        crash_answer: str = "502",  # how the gateway passes a thrown function: "502" or "scf"
        deployment_storage: str = "cfs",  # without StorageType: "cfs" (CFS_ID set) or "cos"
        on_received: Callable[[Received], None] | None = None,
    ) -> None:
        self._app_key = app_key
        self._secret = app_secret
        self._clock = clock
        self._unknown_task_delay = unknown_task_delay
        self._fail_tasks = fail_tasks
        self._has_list = has_list
        self._crash_answer = crash_answer
        self._deployment_storage = deployment_storage
        self._on_received = on_received
        self._faults: deque[Fault] = deque()
        self._cond = asyncio.Condition()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        self.url = ""  # the endpoint URL once started
        self.received: list[Received] = []
        self.tasks: dict[str, FakeTask] = {}
        self.callbacks: list[CallbackDelivery] = []
        self.crashes: list[BaseException] = []  # exceptions of task lifecycles (bugs)
        self._life = Lifecycle(
            clock=clock,
            notify=self._notify,
            session=self._client,
            callbacks=self.callbacks,
            step=step,
            start_delay=start_delay,
            callback_interval=callback_interval,
            callback_twice=callback_twice,
        )
        self.app = web.Application()
        for env in ("", *ENVIRONMENTS):
            self.app.router.add_post(env + WEB_PATH, self._handle)
        self.app.router.add_route("*", "/{tail:.*}", self._no_api)

    def inject(self, *faults: Fault) -> None:
        """Queue faults. Each request takes the first queued fault whose `action` is None or
        its own Action (FIFO otherwise); requests with no matching fault behave normally."""
        self._faults.extend(faults)

    def starts(self) -> list[Received]:
        """The accepted Start calls, in arrival order."""
        return [r for r in self.received if r.ok and r.action == "Start"]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = any free port); return the endpoint URL (…/release/record)."""
        if self._runner is not None:
            raise RuntimeError("FakeWeb is already started")
        self._closing.clear()
        runner = await serve(self.app, host, port, grace=5.0)
        self._runner = runner
        shown_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown_host}:{int(runner.addresses[0][1])}{ENDPOINT_PATH}"
        return self.url

    async def stop(self) -> None:
        """Stop serving and cancel the task lifecycles; sleeping answers are sent at once."""
        self._closing.set()
        for task in self.tasks.values():
            task.started.set()  # a Start still in its cold start is answered
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def wait_for(self, what: Wanted, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until `what` received requests (int) or until what() is true; checked on every
        request, status change and callback attempt. TimeoutError after `timeout` seconds."""
        predicate = (lambda: len(self.received) >= what) if isinstance(what, int) else what
        async with asyncio.timeout(timeout), self._cond:
            await self._cond.wait_for(predicate)

    async def wait_for_requests(self, n: int, timeout: float) -> None:  # noqa: ASYNC109
        await self.wait_for(n, timeout)

    async def wait_for_status(self, task_id: str, status: str, timeout: float = 5) -> None:  # noqa: ASYNC109
        """Wait until the task has been in `status` (or is in it now)."""
        await self.wait_for(lambda: status in self.tasks[task_id].history, timeout)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        job = asyncio.get_running_loop().create_task(coro)
        self._jobs.add(job)

        def done(j: asyncio.Task[None]) -> None:
            self._jobs.discard(j)
            if not j.cancelled() and j.exception() is not None:
                self.crashes.append(j.exception())  # type: ignore[arg-type]

        job.add_done_callback(done)

    def _take_fault(self, action: str) -> Fault | None:
        for fault in self._faults:
            if fault.action is None or fault.action == action:
                self._faults.remove(fault)
                return fault
        return None

    async def _no_api(self, request: web.Request) -> web.Response:
        message = f"There is no api match uri[{request.path}]"
        return web.json_response({"message": message}, status=404)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        now = self._clock()
        body = await request.read()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        req: Json = parsed if isinstance(parsed, dict) else {}
        action = str(req["Action"]) if isinstance(req.get("Action"), str) else ""
        data: Json = dict(req["Data"]) if isinstance(req.get("Data"), dict) else {}
        fault = self._take_fault(action)
        request_id = str(uuid.uuid4())
        answer: Json
        error_code: str | None = None
        task_id: str | None = None
        error, status, ok = "", 200, False
        try:
            if isinstance(fault, HttpStatus):
                status, error = fault.status, f"injected HTTP {fault.status}"
                answer = {"message": gateway_message(fault.status)}
            else:
                verify(self._app_key, self._secret, request, body, now)
                if isinstance(fault, ErrorCode):
                    error_code, error = fault.code, f"injected {fault.code}"
                    answer = {"ErrorCode": fault.code, "ErrorMessage": fault.message}
                elif isinstance(fault, Vanish):
                    answer = await self._vanishing_start(data, fault, now)
                else:
                    failure = fault if isinstance(fault, Fail) else self._fail_tasks
                    answer = await self._act(action, req, failure, now)
                    task_id = answer.get("TaskID")
                    ok = True
                answer["RequestID"] = request_id
        except Refused as exc:
            status, error, answer = 401, exc.detail, {"message": exc.message}
        except ApiError as exc:
            error_code, error = exc.code, exc.message
            answer = {"ErrorCode": exc.code, "ErrorMessage": exc.message, "RequestID": request_id}
            task_id = data.get("TaskID") if isinstance(data.get("TaskID"), str) else None
        except FunctionCrash as exc:
            error = f"function crashed: {exc}"
            if self._crash_answer == "scf":  # SCF's own error body, passed on as HTTP 200 [U]
                answer = {"errorCode": -1, "errorMessage": f"TypeError: {exc}"}
                answer["requestId"] = request_id
            else:
                status, answer = 502, {"message": "Bad Gateway"}
        dropped = isinstance(fault, Drop)
        shown = None if dropped else status
        got = Received(action, data, ok, error_code, shown, now, task_id, error, request.path)
        async with self._cond:
            self.received.append(got)
            self._cond.notify_all()
        if self._on_received is not None:
            self._on_received(got)
        if dropped:
            if request.transport is not None:
                request.transport.close()
            return web.Response()  # cannot be written: aiohttp drops it quietly
        if isinstance(fault, Delay):
            await self._pause(fault.seconds)
        return web.json_response(answer, status=status)

    async def _act(self, action: str, req: Json, failure: Fail | None, now: float) -> Json:
        data = req.get("Data")
        if action == "Start":
            return await self._start(data, failure, now)
        if action == "List" and self._has_list:
            return list_tasks(self.tasks.values(), data)
        if action not in (
            *CONTROLS,
            "Describe",
        ):  # the function logs "unknown action" and then throws
            raise FunctionCrash(f"unknown action {action!r}")
        task_id = data.get("TaskID") if isinstance(data, dict) else None
        if not task_id:
            missing = "TaskID missing." if action in ("Stop", "Cancel", "Refresh") else ""
            raise ApiError("InvalidParam", missing or "TaskID is missing")
        task = self.tasks.get(task_id) if isinstance(task_id, str) else None
        if task is None:
            await self._pause(self._unknown_task_delay)
            raise ApiError("InvalidParam", "invalid task id, task not found")
        if action == "Describe":
            return task.describe()
        control(task, action, now, self._life.stop_lag)
        await self._notify()
        return {"TaskID": task.task_id}

    async def _start(self, data: Any, failure: Fail | None, now: float) -> Json:
        validate_start(data)
        task = self._new_task(data, failure, now)
        self._spawn(self._life.run(task))
        await self._notify()
        await task.started.wait()  # the cold start (stop() sets it too)
        return {"TaskID": task.task_id}

    def _new_task(self, data: Json, failure: Fail | None, now: float) -> FakeTask:
        task_id, seq = str(uuid.uuid4()), len(self.tasks)
        task = FakeTask(task_id, dict(data), secs(now), seq, failure, self._deployment_storage)
        self.tasks[task_id] = task  # created first: a client timeout still leaves it
        return task

    async def _vanishing_start(self, data: Json, fault: Vanish, now: float) -> Json:
        validate_start(data)
        task = self._new_task(data, None, now)
        await self._notify()
        await self._pause(fault.after)
        del self.tasks[task.task_id]
        await self._notify()
        raise ApiError("InternalError", "invoke record function failed")


async def serve_forever(
    app_key: str,
    app_secret: str,
    host: str,
    port: int,
    *,
    ready: Callable[[str], None] | None = None,
    **options: Any,
) -> None:
    """Run a FakeWeb until cancelled, logging one ``fake_web.received`` line per call
    (never the secret, the Authorization header or a signature). `options` go to FakeWeb."""
    log = structlog.get_logger("recsched.fake_web")

    def log_received(r: Received) -> None:
        log.info(
            "fake_web.received",
            action=r.action,
            record_url=r.data.get("RecordURL", ""),
            ok=r.ok,
            status=r.status,
            error_code=r.error_code,
            task_id=r.task_id,
            error=r.error,
        )

    options.setdefault("unknown_task_delay", REAL_UNKNOWN_TASK_DELAY)  # as slow as the real one
    fake = FakeWeb(app_key, app_secret, on_received=log_received, **options)
    endpoint = await fake.start(host, port)
    try:
        log.info("fake_web.listening", endpoint=endpoint)
        if ready is not None:
            ready(endpoint)
        await asyncio.Event().wait()
    finally:
        await fake.stop()
