"""LIVE API 3.0 recording tasks (live.tencentcloudapi.com, Version 2018-08-01): the four
actions' bodies, the signed request and the answers, without I/O.

Answers are HTTP 200 even for errors [C]: `{"Response": {"Error": {"Code", "Message"},
"RequestId"}}`, else `{"Response": {..., "RequestId"}}`. `AuthFailure.*` and parameter errors
are permanent and carry Tencent's message; `RequestLimitExceeded*` is transient (nothing was
done); `InternalError*` is transient with an unknown outcome (the task may exist: it is looked
up before another is created). A TaskId is a string [C].
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scheduler.config_live import LiveOptions, LiveProvider
from scheduler.errors import OutcomeUnknown, PermanentError, ProviderError, TransientError
from scheduler.providers import tc3

VERSION = "2018-08-01"
SERVICE = "live"
CREATE = "CreateRecordTask"
STOP = "StopRecordTask"
DELETE = "DeleteRecordTask"
DESCRIBE = "DescribeRecordTask"
#: The calls recsched makes of this API (metrics declare one series each): Stop and Delete
#: end or remove a created task the YAML no longer has (live_plan.reconcile).
ACTIONS = (CREATE, STOP, DELETE)
#: Error code prefixes sending again cannot fix (the request did nothing). [C codes, I split]
PERMANENT_PREFIXES = (
    "AuthFailure",
    "InvalidParameter",
    "MissingParameter",
    "UnknownParameter",
    "InvalidAction",
    "NoSuchVersion",
    "UnsupportedRegion",
    "UnsupportedOperation",
    "FailedOperation",
    "ResourceNotFound",
    "ResourceUnavailable",
    "LimitExceeded",
    "UnauthorizedOperation",
    "InvalidParameterValue",
)
#: Transient, and certainly not acted on. [C code, I meaning]
RATE_LIMITED = "RequestLimitExceeded"
#: Transient, and perhaps acted on. [I]
INTERNAL = "InternalError"


def target(provider: LiveProvider, options: LiveOptions) -> str:
    """Two creates for one stream within 3 s are kept apart by the dispatcher's rule."""
    return f"live:{provider.host}:{options.stream_path}"


def create_body(options: LiveOptions, start: datetime, end: datetime) -> dict[str, Any]:
    """CreateRecordTask's exact parameters: times in UNIX seconds."""
    body: dict[str, Any] = {
        "DomainName": options.domain,
        "AppName": options.app,
        "StreamName": options.stream,
        "StartTime": int(start.timestamp()),
        "EndTime": int(end.timestamp()),
    }
    if options.template_id is not None:
        body["TemplateId"] = options.template_id
    if options.stream_type is not None:
        body["StreamType"] = options.stream_type
    return body


def for_send(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A create sent once its start has passed (a window running at start-up, a late call)
    omits StartTime: the documented "empty = start now", so the task gets the remaining time."""
    if body.get("StartTime", 0) <= int(now.timestamp()):
        return {k: v for k, v in body.items() if k != "StartTime"}
    return body


def describe_body(options: LiveOptions, start: int, end: int, scroll: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {
        "StartTime": start,
        "EndTime": end,
        "DomainName": options.domain,
        "AppName": options.app,
        "StreamName": options.stream,
    }
    if scroll:
        body["ScrollToken"] = scroll
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed_headers(
    provider: LiveProvider, action: str, payload: bytes, now: datetime
) -> dict[str, str]:
    assert provider.secret_id is not None and provider.secret_key is not None
    return tc3.headers(
        secret_id=provider.secret_id.reveal(),
        secret_key=provider.secret_key.reveal(),
        token=provider.token.reveal() if provider.token is not None else None,
        service=SERVICE,
        host=provider.host,
        action=action,
        version=VERSION,
        region=provider.region,
        body=payload,
        timestamp=int(now.timestamp()),
    )


def error_for(code: str, message: str, status: int = 200) -> ProviderError:
    text = f"{code}: {message}" if message else code
    if code.startswith(RATE_LIMITED):
        return TransientError(text, status=status)
    if code.startswith(INTERNAL):
        return OutcomeUnknown(text, status=status)
    if code.startswith(PERMANENT_PREFIXES):
        return PermanentError(text, status=status)
    return PermanentError(text, status=status)  # an unknown code: refused, do not repeat [I]


def parse_response(status: int, body: str) -> dict[str, Any]:
    """The `Response` object of an answer, or raise Permanent/Transient/OutcomeUnknown."""
    if status >= 500 or status == 429:
        raise TransientError(f"HTTP {status}", status=status)
    if status != 200:
        raise PermanentError(f"HTTP {status}: {body[:200].strip()}", status=status)
    try:
        answer = json.loads(body)
    except ValueError:
        raise OutcomeUnknown(f"answer is not JSON: {body[:80]!r}", status=status) from None
    response = answer.get("Response") if isinstance(answer, dict) else None
    if not isinstance(response, dict):
        raise OutcomeUnknown(f"answer has no 'Response': {body[:80]!r}", status=status)
    error = response.get("Error")
    if isinstance(error, dict):
        raise error_for(str(error.get("Code") or ""), str(error.get("Message") or ""), status)
    return response


def task_id(response: dict[str, Any]) -> str:
    value = response.get("TaskId")
    if not isinstance(value, str) or not value:
        raise OutcomeUnknown("CreateRecordTask answered without a TaskId")
    return value


def acted_on(body: dict[str, Any], response: dict[str, Any]) -> str:
    """StopRecordTask / DeleteRecordTask answer only a RequestId [C]: the TaskId acted on."""
    return str(body["TaskId"])


@dataclass(frozen=True)
class Task:
    task_id: str
    stream_path: str
    start: int
    end: int
    stopped: int  # when StopRecordTask was called, 0 if never


def tasks(response: dict[str, Any]) -> tuple[list[Task], str]:
    """DescribeRecordTask's tasks and its ScrollToken ("" = no more)."""
    found = []
    for item in response.get("TaskList") or []:
        if not isinstance(item, dict):
            continue
        path = f"{item.get('DomainName')}/{item.get('AppName')}/{item.get('StreamName')}"
        found.append(
            Task(
                str(item.get("TaskId") or ""),
                path,
                int(item.get("StartTime") or 0),
                int(item.get("EndTime") or 0),
                int(item.get("Stopped") or 0),
            )
        )
    return found, str(response.get("ScrollToken") or "")
