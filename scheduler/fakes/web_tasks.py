"""Task records and the status machine behind the fake web-page recording function (fakes.web).

Reference: the open-source web-record function (github.com/TencentServerlessApps/web-record,
record/, transcode/ and callback/ handlers). A task walks ``normal → recording ⇄ paused →
canceled → transcode → upload → callback → finished`` and never backwards; failures jump to
``callback`` with ``Result.ErrorCode``. Recording time is measured with the injected clock (so
tests can move it), the walk after Stop takes ``step`` real seconds per state.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import aiohttp

#: 0/absent MaxDurationLimit means this. Hosted doc: 21600 (6 h); open-source build: 36000. [C 20]
DEFAULT_MAX_DURATION = 21600
STATUSES = ("normal", "recording", "paused", "canceled", "transcode", "upload", "callback")
FINISHED = "finished"
ORDER = (*STATUSES, FINISHED)
CALLBACK_ATTEMPTS = 5
CALLBACK_TIMEOUT = 2.0  # axios timeout of the real callback worker
BYTES_PER_SECOND = 125_000  # ~1 Mbit/s: FileSize grows with FileDuration
#: The recorder writes StopTime when it handles the stop signal (BLPOP 2 s + a 1 s poll, real
#: record.js:857): up to ~3 s after CancelTime. [S]
STOP_LAG = 2.0
#: Result of a task stopped before its recorder captured anything (real
#: transcode/src/handlers/cfs-transcode-worker.ts:252-266). [S]
NOTHING_RECORDED = ("InternalError", "video concat failed(ENOENT: no such file or directory)")
CST = ZoneInfo("Asia/Shanghai")  # the function's local zone: List's times are in it
LIST_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIME_KEYS = ("CreateTime", "StartTime", "CancelTime", "StopTime", "FinishTime")

Json = dict[str, Any]


@dataclass(frozen=True)
class Fail:
    """Make a Start's task end with ``Result.ErrorCode``/``ErrorMessage`` and no videos.
    at="record": the recorder fails once started (recording → callback); at="transcode": after
    Stop, transcoding fails (transcode → callback). As a fault it is taken by a Start."""

    code: str = "InternalErr"
    message: str = "record url is invalid or not supported"
    at: Literal["record", "transcode"] = "record"
    action: str | None = "Start"


@dataclass(frozen=True)
class CallbackDelivery:
    task_id: str
    attempt: int  # 1..5 (a callback_twice repeat counts on)
    at: float  # clock() after the attempt ended
    status: int | None  # HTTP status, None when no answer (refused, timeout, bad URL)
    delivered: bool  # 2xx
    error: str
    payload: Json


def secs(moment: float) -> int:
    """UNIX seconds the way the Node source rounds them (Math.round)."""
    return math.floor(moment + 0.5)


def js_falsy(value: object) -> bool:
    if value is None or value is False or value == "":
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0


def drop_falsy(value: Any) -> Any:
    """JSON.stringify with the source's replacer: falsy members vanish ({} and [] are truthy)."""
    if isinstance(value, dict):
        return {k: drop_falsy(v) for k, v in value.items() if not js_falsy(v)}
    if isinstance(value, list):
        return [None if js_falsy(v) else drop_falsy(v) for v in value]
    return value


@dataclass
class FakeTask:
    task_id: str
    param: Json  # the Start Data, as sent
    create_time: int
    seq: int  # creation order (ties in CreateTime)
    failure: Fail | None = None
    deployment_storage: str = "cfs"  # what the function picks without StorageType (CFS_ID set?)
    status: str = "normal"
    history: list[str] = field(default_factory=lambda: ["normal"])
    start_time: int | None = None
    cancel_time: int | None = None
    stop_time: int | None = None
    finish_time: int | None = None
    result: Json = field(default_factory=dict)
    invoked_request_id: str = ""
    refreshes: int = 0
    recorded: float = 0.0  # clock seconds spent recording (paused time excluded)
    recording_since: float | None = None
    started_at: float | None = None  # when the recorder started capturing (StartTime, exact)
    ever_recorded: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def max_duration(self) -> int:
        return int(self.param.get("MaxDurationLimit") or DEFAULT_MAX_DURATION)

    @property
    def storage_type(self) -> str:
        """StorageType if valid, else the deployment's choice (real record.js:261-268)."""
        asked = self.param.get("StorageType")
        return asked if asked in ("cos", "cfs") else self.deployment_storage

    def move(self, status: str) -> None:
        """Change status; only forward, except recording ⇄ paused (the Redis helper's rule)."""
        old, new = ORDER.index(self.status), ORDER.index(status)
        if not (new > old or {self.status, status} == {"recording", "paused"}):
            raise RuntimeError(f"status cannot go from {self.status} back to {status}")
        self.status = status
        self.history.append(status)
        self.changed.set()

    def recorded_seconds(self, now: float) -> float:
        running = 0.0 if self.recording_since is None else max(0.0, now - self.recording_since)
        return self.recorded + running

    def pause(self, now: float) -> None:
        self.recorded = self.recorded_seconds(now)
        self.recording_since = None
        self.move("paused")

    def resume(self, now: float) -> None:
        if self.invoked_request_id:  # a recorder runs: resumeRecording starts or goes on
            self.recording_since = now
            self.ever_recorded = True
        self.move("recording")

    def cancel(self, now: float, at: float | None = None, lag: float = 0.0) -> None:
        """Stop (or MaxDurationLimit expiry at `at`): recording ends, status → canceled;
        the recorder writes StopTime `lag` seconds later."""
        moment = now if at is None else at
        self.recorded = self.recorded_seconds(moment)
        self.recording_since = None
        self.cancel_time = secs(moment)
        self.stop_time = secs(moment + lag) if self.ever_recorded else None
        self.move("canceled")

    def record(self) -> Json:
        """The stored record (the Redis value of the real function): Param included."""
        rec: Json = {
            "TaskID": self.task_id,
            "CreateTime": self.create_time,
            "Param": copy.deepcopy(self.param),
            "Status": self.status,
            "RetryNum": 0,
        }
        if self.invoked_request_id:
            rec["InvokedRequestID"] = self.invoked_request_id
            rec["StorageType"] = self.storage_type
        times = (self.start_time, self.cancel_time, self.stop_time, self.finish_time)
        rec.update({k: v for k, v in zip(_TIME_KEYS[1:], times, strict=True) if v is not None})
        if self.result:
            rec["Result"] = copy.deepcopy(self.result)
        return rec

    def describe(self) -> Json:
        """Describe's answer (without RequestID): no Param, falsy fields dropped."""
        rec = self.record() | {"Param": None, "InvokedRequestID": ""}
        return dict(drop_falsy(rec))

    def callback_payload(self) -> Json:
        return self.describe() | {"Status": "callback"}

    def listed(self) -> Json:
        """One List entry: the whole record, Param included, times as CST strings."""
        rec = self.record()
        for key in _TIME_KEYS:
            if rec.get(key):
                rec[key] = datetime.fromtimestamp(rec[key], CST).strftime(LIST_TIME_FORMAT)
        return rec

    def video(self, stop_moment: float) -> Json:
        """Result.Videos[0] the way upload-worker builds it (COS URL, or VOD with a FileId)."""
        output = self.param.get("Output") or {}
        cos, vod = output.get("Cos") or {}, output.get("Vod")
        muxer = (output.get("Video") or {}).get("Muxer") or "mp4"
        ext = ".m3u8" if muxer == "hls" else ".mp4"
        filename = f"{math.floor(stop_moment * 1000)}{ext}"  # TargetName default: stop time
        if cos.get("TargetName") and muxer == "mp4":
            filename = cos["TargetName"] + ext
        # ffprobe is run with -show_format only, so its `streams` are missing and the source
        # falls back to StopTime - StartTime, paused time included, on cos and cfs alike (real
        # transcode/src/handlers/upload-worker.js:18-43,421-425). No StartTime (a task paused
        # before its recorder read it): NaN in the source, dropped as falsy.
        duration = (self.stop_time or 0) - self.start_time if self.start_time else 0
        key = f"{str(cos.get('TargetDir') or self.task_id).lstrip('/')}/{filename}"
        bucket, region = cos.get("Bucket") or "web-record-1250000000", cos.get("Region")
        host = cos.get("Domain") or f"{bucket}.cos.{region or 'ap-guangzhou'}.myqcloud.com"
        video: Json = {
            "Filename": filename,
            "FileSize": duration * BYTES_PER_SECOND + 2048,
            "FileDuration": duration,
            "FileURL": f"http://{host}/{key}",
        }
        if vod is not None:  # VOD FileIds are 19-digit strings (> 2**53 as numbers)
            video["FileId"] = str(5285890780000000000 + self.seq)
            video["FileURL"] = (
                f"http://1250000000.vod2.myqcloud.com/fake/{video['FileId']}/{filename}"
            )
        return video


@dataclass
class Lifecycle:
    """Runs one task from creation to ``finished`` (the record/transcode/upload/callback
    functions of the real thing)."""

    clock: Callable[[], float]
    notify: Callable[[], Awaitable[None]]
    session: Callable[[], aiohttp.ClientSession]
    callbacks: list[CallbackDelivery]
    step: float = 0.2
    start_delay: float = 0.0
    callback_interval: float = 1.0
    callback_twice: bool = False
    stop_lag: float = STOP_LAG

    async def run(self, task: FakeTask) -> None:
        await asyncio.sleep(self.start_delay)  # cold start of the record function
        now = self.clock()
        task.invoked_request_id = str(uuid.uuid4())
        if task.status == "normal":
            task.move("recording")
        if task.status == "recording":
            task.start_time, task.started_at = secs(now), now
            task.recording_since, task.ever_recorded = now, True
        # paused before the recorder read the task: it stays paused, with no StartTime, until
        # a Resume starts the capture (real record.js:792,828)
        task.started.set()
        await self.notify()
        failure = task.failure
        if task.storage_type == "cfs" and task.deployment_storage != "cfs":
            failure = Fail("InternalErr", "storageType = cfs, but environment is empty")
        if task.status == "canceled":  # stopped during the cold start
            failure = Fail(*NOTHING_RECORDED)
        elif failure is not None and failure.at == "record":
            task.stop_time = secs(now)
            task.recording_since = None
        else:
            await self._until_stopped(task)
            if not task.ever_recorded:
                failure = Fail(*NOTHING_RECORDED)
            elif failure is None or failure.at != "transcode":
                failure = None
            await self._step(task, "transcode")
        if failure is not None:
            task.result = {"ErrorCode": failure.code, "ErrorMessage": failure.message}
        else:
            await self._step(task, "upload")
            task.result = {"Videos": [task.video(self.clock())]}
        await asyncio.sleep(self.step)
        task.finish_time = secs(self.clock())
        await self._step(task, "callback", pause=False)
        await self._deliver(task)
        await self._step(task, FINISHED, pause=False)

    async def _step(self, task: FakeTask, status: str, *, pause: bool = True) -> None:
        if pause:
            await asyncio.sleep(self.step)
        task.move(status)
        await self.notify()

    async def _until_stopped(self, task: FakeTask) -> None:
        """Until Stop, or MaxDurationLimit: counted on the wall clock since StartTime, paused
        time included (real record/handlers/heartbeat.js:52-53)."""
        while True:
            task.changed.clear()
            if task.status not in ("recording", "paused"):
                return
            timeout: float | None = None
            if task.started_at is not None:
                now = self.clock()
                left = task.max_duration - (now - task.started_at)
                if left <= 0:  # MaxDurationLimit: the task stops itself at the limit
                    task.cancel(now, at=now + left, lag=self.stop_lag)
                    await self.notify()
                    return
                timeout = min(left, max(self.step, 0.01))  # the clock may be a fake one
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await task.changed.wait()

    async def _deliver(self, task: FakeTask) -> None:
        url = task.param.get("CallbackURL")
        if not url:
            return
        payload = task.callback_payload()
        error = ""
        for attempt in range(1, CALLBACK_ATTEMPTS + 1):
            delivered, error = await self._post(task, str(url), payload, attempt)
            if delivered:
                if self.callback_twice:  # e.g. a slow 2xx retried: the receiver must dedup
                    await self._post(task, str(url), payload, attempt + 1)
                return
            await asyncio.sleep(self.callback_interval)  # the source waits after each failure
        task.result["ErrorCode"] = "CallbackFailed"
        task.result["ErrorMessage"] = f"Callback failed even after all tries. last error: {error}"

    async def _post(
        self, task: FakeTask, url: str, payload: Json, attempt: int
    ) -> tuple[bool, str]:
        status: int | None = None
        try:
            timeout = aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT)
            async with self.session().post(url, json=payload, timeout=timeout) as resp:
                status = resp.status
                await resp.read()
            error = "" if 200 <= status < 300 else f"HTTP {status}"
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            error = f"{type(exc).__name__}({exc})"
        delivered = status is not None and 200 <= status < 300
        at = self.clock()
        self.callbacks.append(
            CallbackDelivery(task.task_id, attempt, at, status, delivered, error, payload)
        )
        await self.notify()
        return delivered, error
