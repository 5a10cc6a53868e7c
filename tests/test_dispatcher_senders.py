"""The dispatcher is handed its senders: it builds them once from its Context and sends each
call through the sender of its provider's type, with no provider named in dispatch.py. Stub
senders, no HTTP, no sleeping."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from scheduler.calls import Call, LvbCall, WebCall
from scheduler.config import CST, Config, parse_config
from scheduler.dispatch import Dispatcher
from scheduler.errors import ProviderError
from scheduler.ledger import Entry, MemoryLedger, State
from scheduler.planner import plan
from scheduler.provider_senders import SENDERS, provider_senders
from scheduler.senders import Context, Request, Sender
from scheduler.transport import Transport
from scheduler.web_sender import WebSender
from tests.test_web_config import ENV as WEB_ENV
from tests.test_web_config import ISSUE_EXAMPLE

T0 = datetime(2030, 1, 1, 20, 0, tzinfo=CST)


def _config(channel: str = "8888_news") -> Config:
    text = f"""
providers:
  lvb: {{appid: 1234, key: "${{LVB_KEY}}"}}
recordings:
  - {{name: news, channel_id: {channel}, start: "2030-01-01 20:00:00", duration: 10m}}
"""
    return parse_config(text, "t.yaml", env={"LVB_KEY": "k"})


class StubSender:
    """Answers every call with a task id, and notes what it was asked."""

    def __init__(self, context: Context) -> None:
        self.ctx = context
        self.asked: list[tuple[str, str]] = []

    async def before(self, call: Call, fields: dict[str, Any]) -> State | None:
        self.asked.append(("before", call.key))
        return None

    async def request(self, call: Call, sent_at: datetime) -> Request | ProviderError:
        self.asked.append(("request", call.key))

        async def send() -> str:
            return "T1"

        return send

    async def on_unknown(
        self, call: Call, fields: dict[str, Any], facts: dict[str, Any], first_sent: datetime
    ) -> tuple[State | None, bool]:
        raise AssertionError("no unknown outcome here")

    async def after_crash(
        self, call: Call, entry: Entry, fields: dict[str, Any], facts: dict[str, Any]
    ) -> State | None:
        raise AssertionError("no crash here")


class Built:
    """A `Senders` that keeps what it built and the context it was given."""

    def __init__(self) -> None:
        self.contexts: list[Context] = []
        self.stub: StubSender | None = None

    def __call__(self, context: Context) -> Mapping[str, Sender]:
        self.contexts.append(context)
        self.stub = StubSender(context)
        return {"lvb": self.stub}


async def test_a_call_goes_through_the_sender_its_caller_handed_in() -> None:
    config = _config()
    (call,) = plan(config, T0, timedelta(hours=1))
    ledger = MemoryLedger()
    built = Built()
    dispatcher = Dispatcher(config, Transport(), ledger, senders=built, clock=lambda: T0)
    assert len(built.contexts) == 1 and built.stub is not None
    assert await dispatcher.fire(call) == State.OK
    assert built.stub.asked == [("before", call.key), ("request", call.key)]
    entry = await ledger.get(call.key)
    assert entry is not None and entry.state == State.OK and entry.task_id == "T1"
    assert await dispatcher.fire(call) == State.OK  # settled: not asked again
    assert len(built.stub.asked) == 2
    assert len(built.contexts) == 1  # built once, not per call


async def test_the_context_follows_reloads_and_the_stop() -> None:
    built = Built()
    ledger = MemoryLedger()
    dispatcher = Dispatcher(_config(), Transport(), ledger, senders=built, clock=lambda: T0)
    (context,) = built.contexts
    assert context.ledger is ledger and context.clock() == T0
    reloaded = _config("9999_other")
    dispatcher.use(reloaded)
    assert context.config() is reloaded  # senders send later calls with the new providers
    (call,) = plan(reloaded, T0, timedelta(hours=1))
    assert context.provider(call) is reloaded.providers["lvb"]
    async with context.slot("lvb"):  # the dispatcher's limiter of that provider
        pass
    assert not context.closing.is_set()
    dispatcher.stop_polling()
    assert context.closing.is_set()  # a web poll ends on it
    assert context.outcome(call, State.MISSED) == State.MISSED


def test_the_daemon_wires_one_sender_per_provider_type() -> None:
    senders = Dispatcher(_config(), Transport(), MemoryLedger(), senders=provider_senders).senders
    assert set(senders) == set(SENDERS) == {"lvb", "web", "live"}
    assert [type(s).__name__ for s in senders.values()] == [
        "LvbSender",
        "WebSender",
        "LiveSender",
    ]
    web = senders["web"]
    assert isinstance(web, WebSender)
    assert [r.path for r in web.routes()] == ["/callbacks/web/{token}"]


async def test_a_sender_refuses_another_providers_call() -> None:
    """Each sender is handed calls of its own kind only; one of another kind is a wiring bug."""
    web_config = parse_config(ISSUE_EXAMPLE, "w.yaml", env=WEB_ENV)
    web_call = plan(web_config, T0 - timedelta(days=400), timedelta(days=30))[0]
    assert isinstance(web_call, WebCall)
    (lvb_call,) = plan(_config(), T0, timedelta(hours=1))
    assert isinstance(lvb_call, LvbCall)
    senders = Dispatcher(_config(), Transport(), MemoryLedger(), senders=provider_senders).senders
    with pytest.raises(AssertionError):
        await senders["lvb"].request(web_call, T0)
    with pytest.raises(AssertionError):
        await senders["web"].request(lvb_call, T0)
