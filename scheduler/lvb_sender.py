"""The LVB sender: Live_Tape_Start as a signed GET. The API cannot be asked whether a task
exists, so an unknown outcome leaves the call `uncertain`; after a crash it is re-sent only if
the provider sets `resend_after_crash` (and never inside the 3 s duplicate window)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime
from typing import Any

from scheduler import rules
from scheduler.calls import Call, LvbCall
from scheduler.clock import SKEW_WARN_SECONDS, provider_skew, skew_is_significant
from scheduler.config import LvbProvider
from scheduler.errors import ProviderError
from scheduler.ledger import Entry, State
from scheduler.logs import get_logger
from scheduler.providers import lvb
from scheduler.senders import Context, Request

log = get_logger("recsched.call")
#: Signed URLs built before their instant and not used yet, kept at most (a call that is
#: suppressed or missed never uses its own; the oldest goes first). Beyond it, a URL is only
#: built at the instant, as without `prepare`. A choice, not a Tencent fact.
PREPARED_MAX = 20_000


class LvbSender:
    """Live_Tape_Start: a signed GET; the API cannot be asked whether a task exists."""

    def __init__(self, context: Context) -> None:
        self.ctx = context
        #: call key -> (the call, its provider, t, the signed URL), from `prepare`
        self._prepared: OrderedDict[str, tuple[Call, LvbProvider, int, str]] = OrderedDict()

    def _lvb(self, call: Call) -> LvbProvider:
        provider = self.ctx.provider(call)
        assert isinstance(provider, LvbProvider)
        return provider

    def _check_clock(self, call: Call, date_header: str | None) -> None:
        """Warn when the provider's Date header says its clock differs from ours: `t` (the
        signature's expiry) and the CST times sent depend on ours being right."""
        skew = provider_skew(date_header, self.ctx.clock())
        if skew is None:
            return
        self.ctx.metrics.clock_skew(call.provider, skew)
        if skew_is_significant(skew):
            log.warning(
                "clock.skew",
                provider=call.provider,
                skew_s=round(skew, 1),
                message=f"the provider's clock differs from ours by more than "
                f"{SKEW_WARN_SECONDS:g}s: check NTP (t expiry and CST times depend on it)",
            )

    async def before(self, call: Call, fields: dict[str, Any]) -> State | None:
        return None

    @staticmethod
    def _url(call: LvbCall, provider: LvbProvider, t: int) -> str:
        assert provider.key is not None, "run() loads the config with secrets resolved"
        return f"{provider.endpoint}?{lvb.query(call.params, provider.key.reveal(), t)}"

    def prepare(self, call: Call) -> None:
        """Sign the URL for a send within the second of `call.at` (its `t` then is the one the
        instant gives): a 1,000-call burst's signatures are then made before its instant."""
        assert isinstance(call, LvbCall), call.key
        provider = self._lvb(call)
        t = lvb.expiry(call.at, provider.sign_ttl)
        self._prepared[call.key] = (call, provider, t, self._url(call, provider, t))
        while len(self._prepared) > PREPARED_MAX:
            self._prepared.popitem(last=False)

    async def request(self, call: Call, sent_at: datetime) -> Request | ProviderError:
        assert isinstance(call, LvbCall), call.key
        provider = self._lvb(call)
        t = lvb.expiry(sent_at, provider.sign_ttl)
        prepared = self._prepared.pop(call.key, None)
        # the prepared URL only if it is the one built now would be: the same call, provider
        # (a reload may have changed its key or endpoint since) and second
        if (
            prepared is not None
            and prepared[0] is call
            and prepared[2] == t
            and (prepared[1] is provider or prepared[1] == provider)
        ):
            url = prepared[3]
        else:
            url = self._url(call, provider, t)

        async def send() -> str:
            response = await self.ctx.transport.get(url, timeout=provider.timeout.total_seconds())
            self._check_clock(call, response.date)
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
