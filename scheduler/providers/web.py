"""The web-page recording function behind API Gateway: build and parse, no I/O.

Facts from the function's public source (github.com/TencentServerlessApps/web-record,
dispatch/handlers/record.js) and its doc (tencentcloud.com/document/product/583/44887): POST
`{"Action": …, "Data": {…}}`; success is `{"TaskID": …, "RequestID": …}` and failure
`{"ErrorCode": …, "ErrorMessage": …}`, both HTTP 200; gateway errors (401 signature/clock, 429,
502, 504) come before the function runs. `Start` is not idempotent; `Stop` on a task past
`paused` is a success no-op. Describe and the callback drop falsy fields, so every field is
optional when parsing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scheduler.config_web import WebOptions, WebProvider
from scheduler.domain import CST
from scheduler.errors import OutcomeUnknown, PermanentError, TransientError

START, PAUSE, RESUME, REFRESH, STOP, DESCRIBE, LIST = (
    "Start",
    "Pause",
    "Resume",
    "Refresh",
    "Stop",
    "Describe",
    "List",
)
#: The calls recsched plans (List is only asked, after an unanswered Start).
ACTIONS = (START, PAUSE, RESUME, REFRESH, STOP, DESCRIBE)
#: Placeholders in a planned call's Data, filled when it is sent: the TaskID its Start got,
#: and the CallbackURL, which holds a per-task secret. Neither is known (or may be shown) when
#: planning.
TASK_ID = "{task_id}"
CALLBACK_URL = "{callback_url}"
CALLBACK_PATH = "/callbacks/web/"
#: Task states after which nothing more happens; `callback` already carries the result. [S]
DONE = frozenset({"callback", "finished"})
#: Gateway statuses after which the function may have run (and a Start made a task). [C 22]
MAYBE_RAN = frozenset({502, 504})
#: Result.ErrorCode when the function could not POST to CallbackURL: the task still finished
#: and its Result.Videos are kept (real callback/handlers/callback-worker.js:77-90). [S]
CALLBACK_FAILED = "CallbackFailed"
#: A task List shows in this status was created but its recorder not yet invoked: the Start
#: may still fail and delete it (real record/handlers/record.js:223-254). [S]
NOT_INVOKED = "normal"
#: The gateway's service timeout for the function (serverless.yml `serviceTimeout: 90`): by
#: then an unanswered Start has either invoked its recorder or deleted its task. [S]
GATEWAY_SERVICE_TIMEOUT = timedelta(seconds=90)
LIST_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # List's StartTime/EndTime, Asia/Shanghai [S]


def target(provider: WebProvider, url: str) -> str:
    """Two Starts for one page within 3 s would be two recorders of it."""
    return f"web:{provider.endpoint}:{url}"


def start_data(opts: WebOptions, limit: timedelta) -> dict[str, Any]:
    data: dict[str, Any] = {
        "RecordURL": opts.url,
        "Width": opts.width,
        "Height": opts.height,
        "ManualStart": opts.manual_start,
        "MaxDurationLimit": int(limit.total_seconds()),
    }
    if opts.storage_type:  # absent, the function picks cfs or cos for its deployment [S]
        data["StorageType"] = opts.storage_type
    if opts.callback:
        data["CallbackURL"] = CALLBACK_URL
    output = opts.output_value()
    if output:
        data["Output"] = output
    return data


def body(action: str, data: str, *, task_id: str = "", callback_url: str = "") -> bytes:
    """The exact request bytes: the planned Data (JSON text) with its placeholders filled."""
    filled = json.loads(data) if data else {}
    for key, value in list(filled.items()):
        if value == TASK_ID:
            filled[key] = task_id
        elif value == CALLBACK_URL:
            filled[key] = callback_url
    payload = {"Action": action, "Data": filled}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def parse_response(action: str, status: int, text: str) -> dict[str, Any]:
    """The function's answer, or Permanent/TransientError (OutcomeUnknown when it may have
    acted). Stop on a task that is no longer running is a success by the service's own
    semantics; InvalidStatus elsewhere (Resume after Stop) is permanent."""
    if status == 401:
        raise PermanentError(f"gateway refused the signature: {_message(text)}", status=status)
    if status in MAYBE_RAN:
        raise OutcomeUnknown(f"HTTP {status} from the gateway: {_message(text)}", status=status)
    if status == 429 or status >= 500:
        raise TransientError(f"HTTP {status}: {_message(text)}", status=status)
    if status != 200:
        raise PermanentError(f"HTTP {status}: {_message(text)}", status=status)
    try:
        answer = json.loads(text)
    except ValueError:
        raise OutcomeUnknown(f"answer is not JSON: {text[:80]!r}", status=status) from None
    if not isinstance(answer, dict):
        raise OutcomeUnknown(f"answer is not an object: {text[:80]!r}", status=status)
    if "errorCode" in answer and "ErrorCode" not in answer:
        # Serverless Cloud Function's own error body: the function threw (e.g. an Action its
        # build lacks) after doing who knows what. Whether the gateway passes it as HTTP 200 or
        # turns it into a 502 is not known [U]; either way the outcome is unknown.
        detail = f"{answer.get('errorCode')}: {answer.get('errorMessage') or ''}".rstrip(": ")
        raise OutcomeUnknown(f"the function failed: {detail}"[:300], status=status)
    code = answer.get("ErrorCode")
    if not code and action == START and not answer.get("TaskID"):
        raise OutcomeUnknown(f"Start answered without a TaskID: {text[:80]!r}", status=status)
    if not code:
        return answer
    message = f"{code}: {answer.get('ErrorMessage') or ''}".rstrip(": ")
    if code == "InvalidStatus" and action == STOP:
        return answer  # already stopped: what Stop wanted
    if code == "InternalError":
        # Start: the function removed the task it made; Describe and the others: any Redis
        # error but a missing task (real dispatch/handlers/record.js:400-413). Says nothing
        # about the task, so ask again. [S]
        raise TransientError(message, status=status)
    raise PermanentError(message, status=status)


def _message(text: str) -> str:
    try:
        answer = json.loads(text)
    except ValueError:
        return text[:200].strip()
    if isinstance(answer, dict):
        return str(answer.get("message") or answer.get("ErrorMessage") or answer)[:200]
    return text[:200].strip()


@dataclass(frozen=True)
class Video:
    filename: str
    size: int | None
    duration_s: float | None
    url: str
    file_id: str

    def to_log(self) -> dict[str, Any]:
        return {
            "Filename": self.filename,
            "FileSize": self.size,
            "FileDuration": self.duration_s,
            "FileURL": self.url,
            "FileId": self.file_id,
        }


@dataclass(frozen=True)
class TaskResult:
    task_id: str
    status: str
    videos: tuple[Video, ...] = ()
    error_code: str = ""
    error_message: str = ""

    @property
    def done(self) -> bool:
        """Recorded, transcoded and uploaded (or failed): nothing will change any more."""
        return self.status in DONE

    @property
    def failed(self) -> bool:
        """The recording failed. A failed callback is not a failed recording: the videos are
        there (`callback_failed`)."""
        return bool(self.error_code) and self.error_code != CALLBACK_FAILED

    @property
    def callback_failed(self) -> bool:
        return self.error_code == CALLBACK_FAILED


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def parse_task(answer: dict[str, Any]) -> TaskResult:
    """A Describe answer or a callback payload, read leniently: absent means falsy."""
    result = answer.get("Result") if isinstance(answer.get("Result"), dict) else {}
    assert isinstance(result, dict)
    videos = []
    listed = result.get("Videos")
    for raw in listed if isinstance(listed, list) else []:
        if not isinstance(raw, dict):
            continue
        size = _number(raw.get("FileSize"))
        videos.append(
            Video(
                filename=str(raw.get("Filename") or ""),
                size=int(size) if size is not None else None,
                duration_s=_number(raw.get("FileDuration")),
                url=str(raw.get("FileURL") or ""),
                file_id=str(raw.get("FileId") or ""),
            )
        )
    return TaskResult(
        task_id=str(answer.get("TaskID") or ""),
        status=str(answer.get("Status") or ""),
        videos=tuple(videos),
        error_code=str(result.get("ErrorCode") or ""),
        error_message=str(result.get("ErrorMessage") or ""),
    )


def list_data(since: datetime, until: datetime) -> str:
    """List's Data for tasks created in [since, until] (CST strings, as the function wants)."""
    return json.dumps(
        {
            "Status": "all",
            "StartTime": since.astimezone(CST).strftime(LIST_TIME_FORMAT),
            "EndTime": until.astimezone(CST).strftime(LIST_TIME_FORMAT),
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class Listed:
    task_id: str
    status: str


def find_started(answer: dict[str, Any], url: str, known: set[str]) -> list[Listed] | None:
    """Tasks in a List answer that record `url` and are not already someone's task, newest
    first (List sorts them so); None if the answer is not a List answer (a `Tasks` list and a
    `Total`): only a real "no such task" may justify starting again. The time window was
    already applied by the function."""
    tasks, total = answer.get("Tasks"), answer.get("Total")
    if not isinstance(tasks, list) or isinstance(total, bool) or not isinstance(total, int):
        return None
    found = []
    for task in tasks:
        if not isinstance(task, dict):
            continue
        param = task.get("Param")
        if not isinstance(param, dict):
            continue
        task_id = str(task.get("TaskID") or "")
        if task_id and task_id not in known and param.get("RecordURL") == url:
            found.append(Listed(task_id, str(task.get("Status") or "")))
    return found


def callback_token(secret: str, provider: str, start_key: str) -> str:
    """The CallbackURL's last path segment: which Start it answers, and a MAC proving recsched
    made it (derived from the provider's app secret, so it survives restarts)."""
    key = base64.urlsafe_b64encode(start_key.encode()).decode().rstrip("=")
    return f"{provider}.{key}.{_mac(secret, provider, start_key)}"


def _mac(secret: str, provider: str, start_key: str) -> str:
    derived = hmac.new(secret.encode(), b"recsched callback", hashlib.sha256).digest()
    return hmac.new(derived, f"{provider}\n{start_key}".encode(), hashlib.sha256).hexdigest()[:32]


def token_parts(token: str) -> tuple[str, str, str] | None:
    """(provider, start key, mac) of a token, or None if it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    provider, key, mac = parts
    try:
        start_key = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return provider, start_key, mac


def token_valid(secret: str, provider: str, start_key: str, mac: str) -> bool:
    return hmac.compare_digest(_mac(secret, provider, start_key), mac)
