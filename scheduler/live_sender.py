"""The LIVE API 3.0 sender: CreateRecordTask as a signed JSON POST; a create whose answer was
lost (timeout, dropped connection, a crash after `sent`) is looked up with DescribeRecordTask
(same stream, a task ending at this call's end and overlapping its span, not stopped) and
adopted if found, else created again after the 3 s duplicate window. Whenever the API
answers, the call ends ok (or adopted), never uncertain; only a lookup that got no answer
leaves it uncertain (a second create could be a duplicate paid task).

StopRecordTask and DeleteRecordTask (a task the YAML no longer has, live_plan.reconcile) carry
the TaskId; a lost answer is sent again by the retry rules (a second Stop changes nothing [I]).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scheduler.calls import Call, LiveCall
from scheduler.config_live import LiveOptions, LiveProvider
from scheduler.domain import DUPLICATE_WINDOW
from scheduler.errors import ProviderError
from scheduler.ledger import Entry, State
from scheduler.logs import get_logger
from scheduler.providers import live
from scheduler.senders import Context, Request

log = get_logger("recsched.call")
#: DescribeRecordTask lists a task only if it lies wholly in the range [C]: ask a little wider.
LOOKUP_SLACK_S = 60
#: Pages of DescribeRecordTask read at most in one lookup. [I]
MAX_PAGES = 20


@dataclass(frozen=True)
class Found:
    task_id: str = ""
    others: tuple[str, ...] = ()
    checked: bool = True  # False: the lookup itself got no answer
    message: str = ""


class LiveSender:
    def __init__(self, context: Context) -> None:
        self.ctx = context

    def _live(self, call: Call) -> LiveProvider:
        provider = self.ctx.provider(call)
        assert isinstance(provider, LiveProvider)
        return provider

    async def _post(self, provider: LiveProvider, action: str, body: dict[str, Any]) -> Any:
        payload = live.encode(body)
        headers = live.signed_headers(provider, action, payload, self.ctx.clock())
        response = await self.ctx.transport.post(
            provider.endpoint + "/", payload, headers, timeout=provider.timeout.total_seconds()
        )
        return live.parse_response(response.status, response.body)

    async def before(self, call: Call, fields: dict[str, Any]) -> State | None:
        return None

    def prepare(self, call: Call) -> None:
        """Nothing: a web/LIVE request is signed at its send (its body and headers carry the
        time, and it may depend on an earlier call's outcome)."""

    async def request(self, call: Call, sent_at: datetime) -> Request | ProviderError:
        assert isinstance(call, LiveCall), call.key
        provider = self._live(call)
        create = call.action == live.CREATE
        body = live.for_send(json.loads(call.data), sent_at) if create else json.loads(call.data)
        payload = live.encode(body)
        headers = live.signed_headers(provider, call.action, payload, sent_at)

        async def send() -> str:
            response = await self.ctx.transport.post(
                provider.endpoint + "/",
                payload,
                headers,
                timeout=provider.timeout.total_seconds(),
            )
            answer = live.parse_response(response.status, response.body)
            return live.task_id(answer) if create else live.acted_on(body, answer)

        return send

    async def find(self, call: LiveCall) -> Found:
        """The task a lost create may have made: same stream, ending at this call's end."""
        provider = self._live(call)
        options = self.options(call)
        begin = int(call.start.timestamp()) - LOOKUP_SLACK_S
        end = int(call.deadline.timestamp())
        matches: list[str] = []
        scroll = ""
        try:
            for _ in range(MAX_PAGES):
                body = live.describe_body(options, begin, end + LOOKUP_SLACK_S, scroll)
                tasks, scroll = live.tasks(await self._post(provider, live.DESCRIBE, body))
                matches += [
                    t.task_id
                    for t in tasks
                    if t.stream_path == options.stream_path
                    and t.end == end
                    and t.start < end
                    and not t.stopped
                ]
                if not scroll:
                    break
        except ProviderError as exc:
            return Found(checked=False, message=f"DescribeRecordTask failed ({exc.message})")
        if not matches:
            return Found(message="DescribeRecordTask shows no such task")
        return Found(matches[0], tuple(matches[1:]), message="DescribeRecordTask shows it")

    @staticmethod
    def options(call: LiveCall) -> LiveOptions:
        body = json.loads(call.data)
        return LiveOptions(body["DomainName"], body["AppName"], body["StreamName"])

    async def settle(
        self, call: Call, fields: dict[str, Any], facts: dict[str, Any], found: Found
    ) -> State | None:
        """Adopt the found task, record the call uncertain if the lookup failed, or None:
        create it again."""
        if found.task_id:
            await self.ctx.ledger.update(
                call.key,
                State.OK,
                self.ctx.clock(),
                task_id=found.task_id,
                uncertain=bool(found.others),  # several candidates: a duplicate exists
                detail="adopted through DescribeRecordTask",
            )
            log.warning(
                "call.adopted",
                **fields,
                **facts,
                resent=False,
                adopted_task_id=found.task_id,
                other_candidates=list(found.others),
                message="CreateRecordTask was not answered; DescribeRecordTask shows the task "
                "it created: adopted",
            )
            return self.ctx.outcome(call, State.OK)
        if not found.checked:
            await self.ctx.ledger.update(
                call.key, State.UNCERTAIN, self.ctx.clock(), uncertain=True, detail=found.message
            )
            log.error(
                "call.uncertain",
                **fields,
                **facts,
                resent=False,
                message=f"CreateRecordTask was not answered and {found.message}: not created "
                "again (that could make a duplicate task); check the console",
            )
            return self.ctx.outcome(call, State.UNCERTAIN)
        log.warning(
            "call.recreating",
            **fields,
            **facts,
            resent=True,
            message=f"CreateRecordTask was not answered; {found.message}: creating it again",
        )
        return None

    async def on_unknown(
        self, call: Call, fields: dict[str, Any], facts: dict[str, Any], first_sent: datetime
    ) -> tuple[State | None, bool]:
        if call.action != live.CREATE:
            # a Stop again changes nothing; a Delete again may answer "no such task" [I]
            return None, call.action == live.DELETE
        assert isinstance(call, LiveCall), call.key
        state = await self.settle(call, fields, facts, await self.find(call))
        return state, False  # the API answered the lookup: known either way

    async def after_crash(
        self, call: Call, entry: Entry, fields: dict[str, Any], facts: dict[str, Any]
    ) -> State | None:
        if call.action != live.CREATE:
            return None  # send the Stop or Delete again: it creates nothing
        assert isinstance(call, LiveCall), call.key
        state = await self.settle(call, fields, facts, await self.find(call))
        if state is not None:
            return state
        sent_at = entry.sent_at or entry.updated_at or self.ctx.clock()
        wait = (sent_at + DUPLICATE_WINDOW - self.ctx.clock()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)  # never inside the 3 s duplicate window
        return None
