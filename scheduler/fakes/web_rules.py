"""Request rules of the fake web-page recording function (fakes.web): the injectable faults,
Start's validation and the control table (§3.2), and the source-only List action. Messages are
those of the open-source function (clients should match on ErrorCode only)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any, TypeAlias

from scheduler.fakes.web_tasks import CST, FINISHED, LIST_TIME_FORMAT, Fail, FakeTask, Json, secs

MAX_DURATION_LIMIT = 36000  # hosted doc: 0..36000 (more needs a permanent key) [C 20]
MAX_SIDE = 2560
MUXERS = ("hls", "mp4")
GATEWAY_MESSAGES = {429: "API rate limit exceeded", 502: "Bad Gateway", 504: "Gateway Time-out"}
CONTROLS = ("Pause", "Resume", "Refresh", "Stop", "Cancel")
_LIST_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


@dataclass(frozen=True)
class Delay:  # act, then answer `seconds` late
    seconds: float
    action: str | None = None  # None: any request; else only requests with this Action


@dataclass(frozen=True)
class HttpStatus:  # the gateway answers this status ({"message": ...}); nothing happens
    status: int
    action: str | None = None


@dataclass(frozen=True)
class ErrorCode:  # HTTP 200 {"ErrorCode", "ErrorMessage", "RequestID"}; nothing happens
    code: str
    message: str = "injected error"
    action: str | None = None


@dataclass(frozen=True)
class Drop:  # act (e.g. create the Start task), then close the connection unanswered
    action: str | None = None


@dataclass(frozen=True)
class Vanish:
    """A Start whose recorder invoke fails: the task is created (List shows it `normal`),
    `after` seconds later it is deleted and the Start answers InternalError (real
    record.js:223-254). With `after` beyond the client's timeout, the client never hears it."""

    after: float
    action: str | None = "Start"


Fault: TypeAlias = Delay | HttpStatus | ErrorCode | Drop | Fail | Vanish


def gateway_message(status: int) -> str:
    with contextlib.suppress(ValueError):
        return GATEWAY_MESSAGES.get(status, HTTPStatus(status).phrase)
    return "injected gateway error"


class ApiError(Exception):
    """Answered HTTP 200 ``{"ErrorCode": code, "ErrorMessage": message, "RequestID": ...}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FunctionCrash(Exception):
    """The real function throws here (no JSON contract): the gateway answers 502. [S/I]"""


def _blank(value: object) -> bool:
    return isinstance(value, str) and (value.strip() in ("", "null", "undefined"))


def _out_of(value: object, low: float, high: float) -> bool:
    """The source's `value < low || value > high`: only numbers can fail it (a JS comparison
    with a non-numeric string is false both ways)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value < low or value > high


def validate_start(data: Any) -> None:
    """Start's checks, as loose as the source's (real record.js:45-148): truthiness and numeric
    comparisons only; 0 passes for Width/Height though the message says [1, 2560]; an unknown
    StorageType is ignored (the deployment then chooses); ManualStart is read for truthiness."""
    if not isinstance(data, dict) or not data.get("RecordURL"):
        raise ApiError("InvalidParam", "RecordURL is missing")
    for side in ("Width", "Height"):
        if _out_of(data.get(side), 0, MAX_SIDE):
            raise ApiError("InvalidParam", f"{side} must in range [1, {MAX_SIDE}]")
    if _out_of(data.get("MaxDurationLimit"), 0, MAX_DURATION_LIMIT):
        message = f"MaxDurationLimit must in range [0, {MAX_DURATION_LIMIT}]"
        raise ApiError("InvalidParam", message)
    output = data.get("Output")
    if output is None:
        return
    if not isinstance(output, dict):
        raise ApiError("InvalidParam", "Output is invalid")
    video = output.get("Video")
    if video is not None:
        if not isinstance(video, dict) or not video.get("Muxer"):
            raise ApiError("InvalidParam", "Muxer must set in OutputVideo")
        if video["Muxer"] not in MUXERS:
            raise ApiError("InvalidParam", f"OutputVideoFormat must be one of {','.join(MUXERS)}")
        if video["Muxer"] == "hls" and video.get("EncryptKey") and not video.get("AuthUrl"):
            raise ApiError("InvalidParam", "The AuthUrl must be set with EncryptKey")
    vod = output.get("Vod")
    if vod is not None:  # the source lets "" through (falsy); the fake rejects it too
        checks = [("MediaInfo", n) for n in ("MediaName", "StorageRegion", "ExpireTime")]
        for group, name in [*checks, ("ProcedureInfo", "Procedure")]:
            part = vod.get(group) if isinstance(vod, dict) else None
            if isinstance(part, dict) and name in part and _blank(part[name]):
                raise ApiError("InvalidParam", f"Vod.{group}.{name} is invalid, please check.")


def _list_time(data: Json, name: str) -> int | None:
    value = data.get(name)
    if not value:
        return None
    shape = "need to be a string with format: 2021-04-23 08:00:00"
    if not isinstance(value, str) or not _LIST_TIME.fullmatch(value):
        raise ApiError("InvalidParam", f"{name} {shape}")
    try:
        moment = datetime.strptime(value, LIST_TIME_FORMAT).replace(tzinfo=CST)
    except ValueError:
        raise ApiError("InvalidParam", f"{name} {shape}") from None
    return secs(moment.timestamp())


def list_tasks(tasks: Iterable[FakeTask], data: Any) -> Json:
    """The source-only List action: filter on Status and CreateTime, newest first."""
    if not isinstance(data, dict) or not data.get("Status"):
        raise ApiError("InvalidParam", "Status is missing")
    wanted = data["Status"]
    if wanted not in ("all", "running", "finished"):
        raise ApiError("InvalidParam", "Status need to be one of all, running, finished")
    start = _list_time(data, "StartTime")
    if start is not None and not data.get("EndTime"):
        raise FunctionCrash("List reads EndTime.length whenever StartTime is set")
    end = _list_time(data, "EndTime")
    chosen = [
        t
        for t in tasks
        if (wanted == "all" or (wanted == "finished") == (t.status == FINISHED))
        and (start is None or t.create_time >= start)
        and (end is None or t.create_time <= end)
    ]
    chosen.sort(key=lambda t: (t.create_time, t.seq), reverse=True)
    return {"Total": len(chosen), "Tasks": [t.listed() for t in chosen]}


def control(task: FakeTask, action: str, now: float, stop_lag: float = 0.0) -> None:
    """Pause/Resume/Refresh/Stop (Cancel = Stop) on an existing task, per the §3.2 table."""
    status = task.status
    if action == "Pause":
        if status not in ("normal", "recording", "paused"):
            raise ApiError("InvalidStatus", f"can't pause a task in status {status}")
        if status != "paused":  # already paused: success, no-op
            task.pause(now)
    elif action == "Resume":
        if status not in ("recording", "paused"):
            raise ApiError("InvalidStatus", f"can't resume a task in status {status}")
        if status == "paused":
            task.resume(now)
    elif action == "Refresh":
        task.refreshes += status in ("recording", "paused")  # other states: success, no-op
    elif action in ("Stop", "Cancel"):
        if status in ("normal", "recording", "paused"):  # later states: success, no-op
            task.cancel(now, lag=stop_lag)
    else:
        raise ValueError(f"not a control action: {action}")
