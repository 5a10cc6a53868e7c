"""The send rules as pure decisions: no ledger, no network, no sleeping; time is passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduler import rules
from scheduler.ledger import Entry, State

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def _entry(state: State, *, sent_at: datetime | None = None, attempts: int = 1) -> Entry:
    return Entry(
        key="k",
        recording="r",
        provider="lvb",
        action="Live_Tape_Start",
        target="t",
        chunk=1,
        chunks=1,
        window_start=T0,
        window_end=T0 + 30 * S,
        span_start=T0,
        span_end=T0 + 30 * S,
        scheduled_at=T0,
        state=state,
        attempts=attempts,
        sent_at=sent_at,
        updated_at=T0,
    )


@pytest.mark.parametrize(
    ("state", "lease", "expected"),
    [
        (State.OK, None, rules.Admit.SETTLED),
        (State.FAILED, None, rules.Admit.SETTLED),
        (State.UNCERTAIN, 5.0, rules.Admit.SETTLED),  # an outcome is final, whoever holds it
        (State.SENT, 5.0, rules.Admit.WATCH),
        (State.CLAIMED, 0.5, rules.Admit.WATCH),
        (State.SENT, None, rules.Admit.TAKE_OVER),
        (State.CLAIMED, None, rules.Admit.TAKE_OVER),
    ],
)
def test_admission_of_a_call_the_ledger_knows(
    state: State, lease: float | None, expected: rules.Admit
) -> None:
    assert rules.admit(_entry(state), lease, T0, T0 + 30 * S) == expected


def test_a_peer_s_call_is_watched_even_when_its_lease_outlives_the_chunk() -> None:
    """A dead owner's `sent` lease (timeout + 5 s) may end after the chunk: still watch, so
    the call gets settled when it ends (issue 14.4)."""
    assert rules.admit(_entry(State.SENT), 15.0, T0, T0 + 3 * S) == rules.Admit.WATCH


def test_a_new_call_is_sent_until_its_chunk_is_over() -> None:
    assert rules.admit(None, None, T0, T0 + S) == rules.Admit.SEND
    assert rules.admit(None, None, T0 + S, T0 + S) == rules.Admit.MISSED


@pytest.mark.parametrize(
    ("attempt", "deadline_s", "at", "reason"),
    [
        (1, 60, 5, ""),
        (3, 60, None, "out of attempts"),
        (1, 8, None, "chunk ending"),  # 5 s spacing + 3 s window reaches the end
        (1, 8.5, 5, ""),
    ],
)
def test_retry_spacing_and_deadline(
    attempt: int, deadline_s: float, at: float | None, reason: str
) -> None:
    decision = rules.retry(attempt, 3, T0, 5 * S, T0 + deadline_s * S)
    assert decision.at == (None if at is None else T0 + at * S)
    assert decision.reason == reason


def test_after_a_crash_lvb_is_uncertain_unless_resending_is_allowed() -> None:
    sent = _entry(State.SENT, sent_at=T0)
    decision, _ = rules.after_crash(sent, False, 3, T0 + S, T0 + 30 * S)
    assert decision == rules.AfterCrash.UNCERTAIN
    decision, _ = rules.after_crash(_entry(State.SENT, attempts=3), True, 3, T0, T0 + 30 * S)
    assert decision == rules.AfterCrash.UNCERTAIN  # attempts used up


def test_a_resend_after_a_crash_keeps_clear_of_the_duplicate_window() -> None:
    sent = _entry(State.SENT, sent_at=T0)
    decision, earliest = rules.after_crash(sent, True, 3, T0 + S, T0 + 30 * S)
    assert decision == rules.AfterCrash.RESEND
    assert earliest == T0 + 3 * S + rules.SENT_AT_MARGIN  # not one second sooner
    decision, later = rules.after_crash(sent, True, 3, T0 + 10 * S, T0 + 30 * S)
    assert decision == rules.AfterCrash.RESEND and later == T0 + 10 * S
    decision, _ = rules.after_crash(sent, True, 3, T0 + S, T0 + 6 * S)
    assert decision == rules.AfterCrash.TOO_LATE  # it would land in the chunk's last 3 s
