"""One sender per provider, behind one protocol: how a call of that provider is prepared and
sent, what an unknown outcome means for it, and what to do when the ledger shows it `sent` but
unanswered after a crash. The dispatcher (dispatch.py) applies the rules every provider shares
(admission, claims, the durable `sent`, retries, outcomes) and names no provider.

Adding a provider: a wire module in providers/, a sender here (or beside it, like
web_sender.py), a config section.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from scheduler import rules
from scheduler.calls import Call, LvbCall
from scheduler.config import LvbProvider, Provider
from scheduler.errors import ProviderError
from scheduler.ledger import Entry, Ledger, State
from scheduler.logs import get_logger
from scheduler.providers import lvb
from scheduler.transport import Transport

log = get_logger("recsched.call")

#: Sends the prepared request; returns the provider's task id or raises ProviderError.
Request = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class Context:
    """What a sender may use of the dispatcher: the ledger, the clock, and `outcome`, which
    counts a call's final state (metrics) and returns it."""

    ledger: Ledger
    clock: Callable[[], datetime]
    outcome: Callable[[Call, State], State]


class Sender(Protocol):
    async def before(self, call: Call, fields: dict[str, Any]) -> State | None:
        """Settle `call` without a request (e.g. nothing to act on), or None to send it."""

    async def request(self, call: Call, sent_at: datetime) -> Request | ProviderError:
        """The signed request for one attempt at `sent_at`, built before it is marked `sent`;
        a ProviderError if it cannot be built (then nothing is sent)."""

    async def on_unknown(
        self, call: Call, fields: dict[str, Any], facts: dict[str, Any], first_sent: datetime
    ) -> tuple[State | None, bool]:
        """The request may have acted but its answer was lost: (a final state, or None to go
        on with the retry rules; whether the call is now `uncertain`)."""

    async def after_crash(
        self, call: Call, entry: Entry, fields: dict[str, Any], facts: dict[str, Any]
    ) -> State | None:
        """`call` was `sent` when its owner died: a final state, or None to send it again."""


class LvbSender:
    """Live_Tape_Start: a signed GET; the API cannot be asked whether a task exists."""

    def __init__(
        self,
        context: Context,
        transport: Transport,
        provider: Callable[[Call], Provider],
        check_clock: Callable[[Call, str | None], None],
    ) -> None:
        self.ctx = context
        self.transport = transport
        self.provider = provider
        self.check_clock = check_clock

    def _lvb(self, call: Call) -> LvbProvider:
        provider = self.provider(call)
        assert isinstance(provider, LvbProvider)
        return provider

    async def before(self, call: Call, fields: dict[str, Any]) -> State | None:
        return None

    async def request(self, call: Call, sent_at: datetime) -> Request | ProviderError:
        assert isinstance(call, LvbCall), call.key
        provider = self._lvb(call)
        assert provider.key is not None, "run() loads the config with secrets resolved"
        t = lvb.expiry(sent_at, provider.sign_ttl)
        url = f"{provider.endpoint}?{lvb.query(call.params, provider.key.reveal(), t)}"

        async def send() -> str:
            response = await self.transport.get(url, timeout=provider.timeout.total_seconds())
            self.check_clock(call, response.date)
            return lvb.parse_response(response.status, response.body)

        return send

    async def on_unknown(
        self, call: Call, fields: dict[str, Any], facts: dict[str, Any], first_sent: datetime
    ) -> tuple[State | None, bool]:
        log.warning(
            "call.uncertain",
            **fields,
            **facts,
            message=f"{facts.get('error', 'no answer')}: the provider may have created a "
            "task; it has no API to check, so verify in the console",
        )
        return None, True

    async def after_crash(
        self, call: Call, entry: Entry, fields: dict[str, Any], facts: dict[str, Any]
    ) -> State | None:
        provider = self._lvb(call)
        ledger, clock = self.ctx.ledger, self.ctx.clock
        decision, earliest = rules.after_crash(
            entry, provider.resend_after_crash, provider.max_attempts, clock(), call.deadline
        )
        if decision == rules.AfterCrash.UNCERTAIN:
            await ledger.update(
                call.key,
                State.UNCERTAIN,
                clock(),
                uncertain=True,
                detail="sent before the daemon stopped; no answer was recorded",
            )
            log.error(
                "call.uncertain",
                **fields,
                **facts,
                resent=False,
                message="sent before the daemon stopped and never answered: the task probably "
                "exists. Not re-sent (resend_after_crash is false); check the console",
            )
            return self.ctx.outcome(call, State.UNCERTAIN)
        if decision == rules.AfterCrash.TOO_LATE:
            await ledger.update(call.key, State.UNCERTAIN, clock(), uncertain=True)
            log.error("call.uncertain", **fields, **facts, resent=False, message="chunk ending")
            return self.ctx.outcome(call, State.UNCERTAIN)
        wait = (earliest - clock()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)  # never inside the provider's duplicate window
        log.warning(
            "call.uncertain",
            **fields,
            **facts,
            resent=True,
            message="sent before the daemon stopped and never answered; re-sending "
            "(resend_after_crash is true): a duplicate task may result",
        )
        return None
