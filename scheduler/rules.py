"""The send rules, as pure decisions: given what the ledger says and the time, what the
dispatcher must do with a call. No I/O, no clock of its own: `now` is passed in, so every rule
is tested in microseconds without sleeping (tests/test_rules.py).

The dispatcher (dispatch.py) carries the decisions out: it reads the ledger, asks here, then
sends, waits or records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from scheduler.domain import DUPLICATE_WINDOW
from scheduler.ledger import Entry, State

#: `sent_at` is recorded just before the durable `sent` write, and the request leaves when that
#: write returns (at most the store's busy timeout later, or at once while the store is down and
#: writes are queued). A re-send after a crash waits this much beyond the duplicate window.
SENT_AT_MARGIN = timedelta(seconds=1)


class Admit(StrEnum):
    """What to do with a call that is due, before any request."""

    SEND = "send"  # nobody has it: claim and send
    SETTLED = "settled"  # already has an outcome: never again
    WATCH = "watch"  # a live peer holds it: look again when its lease ends
    TAKE_OVER = "take_over"  # unsettled and nobody holds it: take it over
    MISSED = "missed"  # its chunk is over: record it missed, send nothing


def admit(
    entry: Entry | None, peer_lease_s: float | None, now: datetime, deadline: datetime
) -> Admit:
    """The admission rule for a due call: a call with an outcome is never sent again; one a
    live peer holds is watched until its lease ends (however short the chunk: a dead owner's
    call must still be settled); an abandoned one is taken over; a new one whose chunk is
    over is missed."""
    if entry is not None:
        if entry.state not in (State.CLAIMED, State.SENT):
            return Admit.SETTLED
        return Admit.WATCH if peer_lease_s is not None else Admit.TAKE_OVER
    return Admit.MISSED if now >= deadline else Admit.SEND


@dataclass(frozen=True)
class Retry:
    """Send again at `at`, or give up (`at` is None) for `reason`."""

    at: datetime | None
    reason: str = ""


def retry(
    attempt: int, max_attempts: int, now: datetime, spacing: timedelta, deadline: datetime
) -> Retry:
    """After a transient failure: again after `spacing` (never less than the duplicate
    window, which config validation guarantees), unless attempts are used up or the retry
    would land within DUPLICATE_WINDOW of the chunk's end (a task too short to matter)."""
    at = now + spacing
    if attempt >= max_attempts:
        return Retry(None, "out of attempts")
    if at + DUPLICATE_WINDOW >= deadline:
        return Retry(None, "chunk ending")
    return Retry(at)


class AfterCrash(StrEnum):
    """A call found `sent` but unanswered (the owner crashed mid-request)."""

    UNCERTAIN = "uncertain"  # record it uncertain; do not send (a task probably exists)
    RESEND = "resend"  # send again, outside the duplicate window
    TOO_LATE = "too_late"  # would resend, but the chunk ends inside the duplicate window


def after_crash(
    entry: Entry, resend: bool, max_attempts: int, now: datetime, deadline: datetime
) -> tuple[AfterCrash, datetime]:
    """The recovery rule for LVB (which cannot be asked whether a task exists): with
    `resend_after_crash` false, or attempts used up, uncertain; else re-send no sooner than
    DUPLICATE_WINDOW + SENT_AT_MARGIN after the first send, if the chunk is still open then.
    Returns the decision and the earliest send time."""
    sent_at = entry.sent_at or entry.updated_at or now
    if not resend or entry.attempts >= max_attempts:
        return AfterCrash.UNCERTAIN, now
    earliest = max(now, sent_at + DUPLICATE_WINDOW + SENT_AT_MARGIN)
    if earliest + DUPLICATE_WINDOW >= deadline:
        return AfterCrash.TOO_LATE, earliest
    return AfterCrash.RESEND, earliest
