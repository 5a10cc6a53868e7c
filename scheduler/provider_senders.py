"""Every provider type's sender: the one module that names them all, so the dispatcher names
none (tests/test_architecture.py). The daemon (service.py) hands `provider_senders` to its
Dispatcher, which calls it once with its Context. A new provider's sender is added here."""

from __future__ import annotations

from collections.abc import Callable

from scheduler.live_sender import LiveSender
from scheduler.lvb_sender import LvbSender
from scheduler.senders import Context, Sender
from scheduler.web_sender import WebSender

#: The sender of each provider `type` of the config.
SENDERS: dict[str, Callable[[Context], Sender]] = {
    "lvb": LvbSender,
    "web": WebSender,
    "live": LiveSender,
}


def provider_senders(context: Context) -> dict[str, Sender]:
    """A `Senders` for a Dispatcher: one sender per provider type, sharing its context."""
    return {kind: make(context) for kind, make in SENDERS.items()}
