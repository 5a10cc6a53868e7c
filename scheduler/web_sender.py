"""The web-page recording function's sender: a Pause, Resume, Refresh, Stop or Describe acts on
the TaskID its Start got (kept in the ledger); Describe polls for the result; a Start whose
answer was lost is looked up through `List` and its task adopted instead of starting a second
paid recorder (confirmed through Describe when List shows it not yet invoked); after a crash a
Start is looked up the same way, the other actions are simply sent again (safe to repeat).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from aiohttp import web as aioweb

from scheduler.calls import Call, WebCall
from scheduler.domain import DUPLICATE_WINDOW
from scheduler.errors import ProviderError
from scheduler.ledger import Entry, State
from scheduler.logs import get_logger
from scheduler.providers import web as web_api
from scheduler.senders import Context, Request
from scheduler.web_client import Found, WebClient

log = get_logger("recsched.call")


def _web(call: Call) -> WebCall:
    assert isinstance(call, WebCall), f"{call.key}: not a web call"
    return call


class WebSender:
    def __init__(self, context: Context) -> None:
        self.ctx = context
        self.web = WebClient(context)

    def routes(self) -> list[aioweb.RouteDef]:
        """What the daemon's HTTP server serves for the function: its result callback."""
        return self.web.routes()

    async def before(self, call: Call, fields: dict[str, Any]) -> State | None:
        call = _web(call)
        if not call.needs:
            return None
        task_id = await self.web.task_id(call)  # what Pause..Describe act on
        if isinstance(task_id, ProviderError):
            await self.ctx.ledger.update(
                call.key, State.FAILED, self.ctx.clock(), detail=task_id.message
            )
            log.warning("call.skipped", **fields, reason=task_id.message)
            return self.ctx.outcome(call, State.FAILED)
        if call.action != web_api.DESCRIBE:
            return None
        state, detail = await self.web.poll(call, task_id)
        if state == State.CLAIMED:
            return state  # the daemon is stopping: the next run asks again
        await self.ctx.ledger.update(
            call.key, state, self.ctx.clock(), task_id=task_id, detail=detail
        )
        return self.ctx.outcome(call, state)

    def prepare(self, call: Call) -> None:
        """Nothing: a web/LIVE request is signed at its send (its body and headers carry the
        time, and it may depend on an earlier call's outcome)."""

    async def request(self, call: Call, sent_at: datetime) -> Request | ProviderError:
        call = _web(call)
        task_id = await self.web.task_id(call) if call.needs else ""
        if isinstance(task_id, ProviderError):
            return task_id
        body = self.web.body(call, task_id)
        provider = self.web.provider(call)

        async def send() -> str:
            answer = await self.web.send(provider, call.action, body)
            return str(answer.get("TaskID") or task_id)

        return send

    async def on_unknown(
        self, call: Call, fields: dict[str, Any], facts: dict[str, Any], first_sent: datetime
    ) -> tuple[State | None, bool]:
        call = _web(call)
        if call.action != web_api.START:
            return None, False  # Pause/Resume/Refresh/Stop/Describe: safe to repeat
        found = await self.web.find(call, first_sent)
        return await self.settle_unknown_start(call, fields, facts, found, first_sent), True

    async def after_crash(
        self, call: Call, entry: Entry, fields: dict[str, Any], facts: dict[str, Any]
    ) -> State | None:
        call = _web(call)
        if call.action != web_api.START:  # Pause/Resume/Refresh/Stop: safe to repeat
            log.info("call.recovered", **fields, **facts, reason="sent, never answered")
            return None
        sent_at = entry.sent_at or entry.updated_at or self.ctx.clock()
        found = await self.web.find(call, sent_at)
        return await self.settle_unknown_start(call, fields, facts, found, sent_at)

    async def settle_unknown_start(
        self,
        call: WebCall,
        fields: dict[str, Any],
        facts: dict[str, Any],
        found: Found,
        first_sent: datetime,
    ) -> State | None:
        """After a web Start with no answer: adopt the task List found, or give up when it
        could not look; None means none was found (or cannot be looked for): start again."""
        if (
            found.task_id
            and found.status == web_api.NOT_INVOKED
            and not await self._confirm_adopted(call, fields, facts, found, first_sent)
        ):
            return None  # the task is gone: no recorder runs, start again
        if found.task_id:
            await self.ctx.ledger.update(
                call.key,
                State.OK,
                self.ctx.clock(),
                task_id=found.task_id,
                uncertain=bool(found.others),  # more than one candidate: a duplicate may exist
                detail="adopted through List",
            )
            log.warning(
                "call.uncertain",
                **fields,
                **facts,
                resent=False,
                adopted_task_id=found.task_id,
                other_candidates=list(found.others),
                message="Start was not answered; List shows the task it created: adopted",
            )
            return self.ctx.outcome(call, State.OK)
        if not found.checked and self.web.provider(call).list_tasks:
            await self.ctx.ledger.update(
                call.key, State.UNCERTAIN, self.ctx.clock(), uncertain=True, detail=found.message
            )
            log.error(
                "call.uncertain",
                **fields,
                **facts,
                resent=False,
                list=found.message,
                message=f"Start was not answered and {found.message}: not started again "
                "(that could make a second recorder); check the function's console",
            )
            return self.ctx.outcome(call, State.UNCERTAIN)
        log.warning(
            "call.uncertain",
            **fields,
            **facts,
            resent=True,
            checked=found.checked,
            message=f"Start was not answered; {found.message}: starting it again",
        )
        return None

    async def _confirm_adopted(
        self,
        call: WebCall,
        fields: dict[str, Any],
        facts: dict[str, Any],
        found: Found,
        first_sent: datetime,
    ) -> bool:
        """A task List shows as `normal` may still be deleted by the Start that made it (its
        recorder invoke failed). Keep it as this Start's task meanwhile (a Pause or Stop due
        now acts on it), and ask Describe once the gateway's service timeout has passed since
        the first attempt: False if the function no longer knows it."""
        await self.ctx.ledger.update(
            call.key,
            State.SENT,
            self.ctx.clock(),
            task_id=found.task_id,
            detail="adopted, unconfirmed",
        )
        wait = (first_sent + web_api.GATEWAY_SERVICE_TIMEOUT - self.ctx.clock()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        exists = await self.web.exists(call, found.task_id)
        if exists is False:
            log.error(
                "call.uncertain",
                **fields,
                **facts,
                adopted_task_id=found.task_id,
                resent=self.ctx.clock() + DUPLICATE_WINDOW < call.deadline,
                message="the task List showed for the unanswered Start is gone (the Start "
                "failed after creating it): no recorder runs; starting it again",
            )
            return False
        return True
