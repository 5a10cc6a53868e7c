"""One sender per provider, behind one protocol: how a call of that provider is prepared and
sent, what an unknown outcome means for it, and what to do when the ledger shows it `sent` but
unanswered after a crash. The dispatcher (dispatch.py) applies the rules every provider shares
(admission, claims, the durable `sent`, retries, outcomes) and names no provider: its caller
hands it `Senders`, which builds each provider type's sender from the dispatcher's `Context`
(provider_senders.py is the one module that names them all).

Adding a provider: a wire module in providers/, a sender beside lvb_sender.py, web_sender.py
and live_sender.py (listed in provider_senders.py), a config section.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from scheduler.calls import Call
from scheduler.config import Config, Provider
from scheduler.errors import ProviderError
from scheduler.ledger import Entry, Ledger, State
from scheduler.metrics import Metrics
from scheduler.transport import Transport

#: Sends the prepared request; returns the provider's task id or raises ProviderError.
Request = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class Context:
    """What a sender may use of the dispatcher that sends its calls."""

    ledger: Ledger
    transport: Transport
    clock: Callable[[], datetime]
    #: The config calls are sent with now (a reload replaces it).
    config: Callable[[], Config]
    #: Counts a call's final state (metrics) and returns it.
    outcome: Callable[[Call, State], State]
    #: The named provider's concurrency and rate limiter, for requests besides the call's own
    #: (a lookup, a poll).
    slot: Callable[[str], AbstractAsyncContextManager[None]]
    metrics: Metrics
    #: Set when the daemon stops: long waits (Describe polls) end, to resume after the restart.
    closing: asyncio.Event

    def provider(self, call: Call) -> Provider:
        return self.config().providers[call.provider]


class Sender(Protocol):
    async def before(self, call: Call, fields: dict[str, Any]) -> State | None:
        """Settle `call` without a request (e.g. nothing to act on), or None to send it."""

    def prepare(self, call: Call) -> None:
        """Before the call's instant (it was handed over early): work that makes `request`
        cheaper at the instant and never changes what it builds. May do nothing."""

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


#: Builds the sender of each provider type (`lvb`, `web`, `live`) for a dispatcher's context.
Senders = Callable[[Context], Mapping[str, Sender]]
