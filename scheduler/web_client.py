"""Talking to the web-page recording function: signed requests, finding a Start's task after an
unknown outcome (List), and the recording's result (Describe polling or the callback).

The dispatcher owns the no-duplicate rules and the ledger states of each planned call; this
module builds and sends the requests and reports `recording.finished` / `recording.failed`
exactly once per task, whichever of Describe and the callback answers first.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web as aioweb

from scheduler.calls import WebCall
from scheduler.config import Config, HttpSettings
from scheduler.config_web import WebProvider
from scheduler.errors import PermanentError, ProviderError
from scheduler.ledger import FINAL, State
from scheduler.logs import get_logger
from scheduler.providers import apigw
from scheduler.providers import web as api
from scheduler.senders import Context
from scheduler.transport import Response

log = get_logger("recsched.recording")
#: Describe is asked again after this, doubling up to POLL_MAX. [I]
POLL_FIRST = timedelta(seconds=5)
POLL_MAX = timedelta(seconds=60)
#: A task created this long before the unanswered Start is still taken to be its task (the
#: function's clock and ours differ a little; CreateTime is in whole seconds). [I]
LIST_SLACK = timedelta(seconds=30)
#: The Describe row's detail when no result came within the poll budget: a callback that
#: arrives later is still the task's result and is reported.
NO_RESULT = "no result in time"


@dataclass(frozen=True)
class Found:
    """What List said about an unanswered Start: the task to adopt, or why there is none."""

    task_id: str = ""
    status: str = ""  # the task's status in List (`normal`: its recorder not invoked yet)
    checked: bool = True  # False: List is not available or failed, nothing is known
    message: str = ""
    others: tuple[str, ...] = ()  # more candidates than one: possible duplicates


def describe_key(start_key: str) -> str:
    return start_key.removesuffix(api.START) + api.DESCRIBE


class WebClient:
    def __init__(self, context: Context) -> None:
        self.ctx = context
        self.transport = context.transport
        self.slot = context.slot  # the provider's concurrency/rate limiter
        self.ledger = context.ledger
        self.clock = context.clock
        self.closing = context.closing  # the daemon is stopping: polls end
        self._reported: set[str] = set()  # TaskIDs whose outcome was logged
        self._wake: dict[str, asyncio.Event] = {}  # TaskID -> a poller waiting on it

    @property
    def config(self) -> Config:
        """The dispatcher's current config (a reload replaces it)."""
        return self.ctx.config()

    def provider(self, call: WebCall) -> WebProvider:
        provider = self.config.providers[call.provider]
        assert isinstance(provider, WebProvider)
        return provider

    # -- requests ------------------------------------------------------------------------------
    async def task_id(self, call: WebCall) -> str | ProviderError:
        """The TaskID a Pause/Resume/Refresh/Stop/Describe acts on, from its Start's ledger
        entry (which survives restarts)."""
        entry = await self.ledger.get(call.needs)
        if entry is None or not entry.task_id:
            state = entry.state if entry is not None else "not sent"
            return PermanentError(f"its Start has no TaskID ({state})")
        return entry.task_id

    def callback_url(self, provider: WebProvider, start_key: str) -> str:
        http: HttpSettings = self.config.http
        assert provider.app_secret is not None and http.public_url
        token = api.callback_token(provider.app_secret.reveal(), provider.name, start_key)
        return f"{http.public_url}{api.CALLBACK_PATH}{token}"

    def body(self, call: WebCall, task_id: str) -> bytes:
        provider = self.provider(call)
        wants_callback = api.CALLBACK_URL in call.data and self.config.http.public_url
        url = self.callback_url(provider, call.key) if wants_callback else ""
        return api.body(call.action, call.data, task_id=task_id, callback_url=url)

    async def send(
        self, provider: WebProvider, action: str, body: bytes, limit: timedelta | None = None
    ) -> dict[str, Any]:
        """One signed POST; the answer, or Permanent/TransientError/OutcomeUnknown."""
        assert provider.app_key is not None and provider.app_secret is not None
        headers = apigw.sign(
            app_key=provider.app_key.reveal(),
            app_secret=provider.app_secret.reveal(),
            method="POST",
            url=provider.endpoint,
            body=body,
            now=self.clock(),
            algorithm=provider.algorithm,
        )
        response: Response = await self.transport.post(
            provider.endpoint, body, headers, timeout=(limit or provider.timeout).total_seconds()
        )
        return api.parse_response(action, response.status, response.body)

    # -- an unanswered Start -------------------------------------------------------------------
    async def find(self, call: WebCall, first_sent: datetime) -> Found:
        """Look through List for the task an unanswered Start may have created."""
        provider = self.provider(call)
        if not provider.list_tasks:
            return Found(checked=False, message="the provider has list: false")
        opts = json.loads(call.data)
        data = api.list_data(first_sent - LIST_SLACK, self.clock() + LIST_SLACK)
        try:
            async with self.slot(provider.name):
                answer = await self.send(
                    provider, api.LIST, api.body(api.LIST, data), provider.list_timeout
                )
        except ProviderError as exc:
            return Found(checked=False, message=f"List failed: {exc.message}")
        known = await self._known_task_ids(call)
        found = api.find_started(answer, opts.get("RecordURL", ""), known)
        if found is None:
            shown = json.dumps(answer, ensure_ascii=False)[:120]
            return Found(checked=False, message=f"List answered without Tasks and Total: {shown}")
        if not found:
            return Found(message="List shows no task for this page since the first attempt")
        return Found(
            task_id=found[0].task_id,
            status=found[0].status,
            others=tuple(t.task_id for t in found[1:]),
        )

    async def exists(self, call: WebCall, task_id: str) -> bool | None:
        """Does the function still know this task? False only on its "task not found" answer;
        None when Describe could not tell (a transient error)."""
        provider = self.provider(call)
        body = api.body(api.DESCRIBE, json.dumps({"TaskID": api.TASK_ID}), task_id=task_id)
        try:
            async with self.slot(provider.name):
                await self.send(provider, api.DESCRIBE, body)
        except PermanentError as exc:
            return False if exc.message.startswith("InvalidParam") else None
        except ProviderError:
            return None
        return True

    async def _known_task_ids(self, call: WebCall) -> set[str]:
        """TaskIDs other Starts of this recording already own (an earlier task of the window
        may still be running on the same page)."""
        entries = await self.ledger.window(call.recording, call.window_start)
        return {e.task_id for e in entries if e.task_id and e.key != call.key}

    # -- results -------------------------------------------------------------------------------
    def report(self, recording: str, result: api.TaskResult, via: str) -> bool:
        """Log the task's outcome once; False if it was already reported."""
        if result.task_id in self._reported:
            return False
        self._reported.add(result.task_id)
        fields = {"recording": recording, "task_id": result.task_id, "status": result.status}
        if result.failed:
            log.error(
                "recording.failed",
                **fields,
                via=via,
                error_code=result.error_code,
                error_message=result.error_message,
            )
        else:
            log.info(
                "recording.finished",
                **fields,
                via=via,
                videos=[v.to_log() for v in result.videos],
                # FileDuration is StopTime - StartTime: paused time included [S]
                file_duration_s=sum(v.duration_s or 0 for v in result.videos),
            )
        if result.callback_failed:
            log.warning(
                "recording.callback_failed",
                **fields,
                error_message=result.error_message,
                message="the function could not POST the result to CallbackURL (check "
                "http.public_url and that it reaches this daemon); the recording itself is fine",
            )
        wake = self._wake.get(result.task_id)
        if wake is not None:
            wake.set()
        return True

    async def poll(self, call: WebCall, task_id: str) -> tuple[State, str]:
        """Ask Describe, backing off, until the task is done, the callback reported it, the
        call's deadline passes or the daemon stops (then the call stays claimed and is polled
        again after the restart). Returns the ledger state and its detail."""
        provider = self.provider(call)
        delay = POLL_FIRST
        wake = self._wake.setdefault(task_id, asyncio.Event())
        body = api.body(api.DESCRIBE, call.data, task_id=task_id)
        last = ""
        try:
            while True:
                if task_id in self._reported:
                    return State.OK, "reported"
                settled = await self.ledger.get(call.key)
                if settled is not None and settled.state in FINAL:
                    return settled.state, settled.detail  # another instance reported it
                try:
                    async with self.slot(provider.name):
                        answer = await self.send(provider, api.DESCRIBE, body)
                    result = api.parse_task(answer)
                    last = result.status
                    if result.done:
                        self.report(call.recording, result, "describe")
                        return State.OK, f"{result.status} {result.error_code}".strip()
                except PermanentError as exc:
                    log.error(
                        "recording.failed",
                        recording=call.recording,
                        task_id=task_id,
                        via="describe",
                        error_code="",
                        error_message=exc.message,
                    )
                    return State.FAILED, exc.message
                except ProviderError as exc:
                    last = exc.message
                if self.clock() + delay >= call.deadline:
                    log.error(
                        "recording.unknown",
                        recording=call.recording,
                        task_id=task_id,
                        last=last,
                        message="no result from Describe or the callback in time; "
                        "check the function's console",
                    )
                    return State.FAILED, f"{NO_RESULT} (last: {last})"
                await self._pause(wake, delay)
                if self.closing.is_set():
                    return State.CLAIMED, "stopped while polling"
                delay = min(delay * 2, POLL_MAX)
        finally:
            self._wake.pop(task_id, None)

    async def _pause(self, wake: asyncio.Event, delay: timedelta) -> None:
        closing = asyncio.ensure_future(self.closing.wait())
        woken = asyncio.ensure_future(wake.wait())
        await asyncio.wait(
            {closing, woken}, timeout=delay.total_seconds(), return_when="FIRST_COMPLETED"
        )
        closing.cancel()
        woken.cancel()

    # -- the callback receiver -----------------------------------------------------------------
    def routes(self) -> list[aioweb.RouteDef]:
        return [aioweb.post(api.CALLBACK_PATH + "{token}", self.callback)]

    async def callback(self, request: aioweb.Request) -> aioweb.Response:
        """POST {public_url}/callbacks/web/{token}: answer fast (the function waits 2 s), 404
        for a token recsched did not make, log the outcome once per TaskID."""
        parts = api.token_parts(request.match_info["token"])
        provider = self.config.providers.get(parts[0]) if parts else None
        if parts is None or not isinstance(provider, WebProvider) or provider.app_secret is None:
            return aioweb.json_response({"error": "not found"}, status=404)
        name, start_key, mac = parts
        if not api.token_valid(provider.app_secret.reveal(), name, start_key, mac):
            return aioweb.json_response({"error": "not found"}, status=404)
        try:
            payload = json.loads(await request.read())
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not payload.get("TaskID"):
            log.warning("callback.invalid", start_key=start_key, reason="no TaskID in the body")
            return aioweb.json_response({"error": "bad payload"}, status=400)
        result = api.parse_task(payload)
        recording = start_key.split("/", 1)[0]
        entry = await self.ledger.get(describe_key(start_key))
        settled = (
            entry is not None and entry.state in FINAL and not entry.detail.startswith(NO_RESULT)
        )
        if settled or not self.report(recording, result, "callback"):
            log.info("callback.duplicate", recording=recording, task_id=result.task_id)
        return aioweb.json_response({"ok": True})
