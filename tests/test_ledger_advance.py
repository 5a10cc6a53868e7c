"""`advance` (a ledger entry moved to a new state) is `dataclasses.replace` with its rules:
given fields change, the rest keep their value, `uncertain` only turns on."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.ledger import Entry, State, advance

_MOMENTS = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
_ENTRIES = st.builds(
    Entry,
    key=st.text(max_size=5),
    recording=st.text(max_size=5),
    provider=st.text(max_size=5),
    action=st.text(max_size=5),
    target=st.text(max_size=5),
    chunk=st.integers(1, 9),
    chunks=st.integers(1, 9),
    window_start=_MOMENTS,
    window_end=_MOMENTS,
    span_start=_MOMENTS,
    span_end=_MOMENTS,
    scheduled_at=_MOMENTS,
    state=st.sampled_from(State),
    attempts=st.integers(0, 5),
    task_id=st.text(max_size=5),
    detail=st.text(max_size=5),
    sent_at=st.none() | _MOMENTS,
    uncertain=st.booleans(),
    updated_at=st.none() | _MOMENTS,
    owner=st.text(max_size=5),
)


@given(
    entry=_ENTRIES,
    state=st.sampled_from(State),
    now=_MOMENTS,
    attempts=st.none() | st.integers(0, 5),
    task_id=st.text(max_size=5),
    detail=st.text(max_size=5),
    sent_at=st.none() | _MOMENTS,
    uncertain=st.booleans(),
)
def test_advance_is_replace_with_the_ledger_rules(
    entry: Entry,
    state: State,
    now: datetime,
    attempts: int | None,
    task_id: str,
    detail: str,
    sent_at: datetime | None,
    uncertain: bool,
) -> None:
    expected = replace(
        entry,
        state=state,
        attempts=entry.attempts if attempts is None else attempts,
        task_id=task_id or entry.task_id,
        detail=detail or entry.detail,
        sent_at=sent_at or entry.sent_at,
        uncertain=entry.uncertain or uncertain,
        updated_at=now,
    )
    moved = advance(
        entry,
        state,
        now,
        attempts=attempts,
        task_id=task_id,
        detail=detail,
        sent_at=sent_at,
        uncertain=uncertain,
    )
    assert moved == expected and hash(moved) == hash(expected)
    assert [getattr(moved, f.name) for f in fields(Entry)] == [
        getattr(expected, f.name) for f in fields(Entry)
    ]
    assert type(moved) is Entry and moved is not entry
    assert vars(moved).keys() == vars(expected).keys()


def test_an_advanced_entry_is_still_frozen_and_leaves_the_old_one_alone() -> None:
    now = datetime(2026, 12, 2, tzinfo=UTC)
    entry = Entry("k", "r", "p", "a", "t", 1, 1, now, now, now, now, now, State.CLAIMED)
    moved = advance(entry, State.SENT, now + timedelta(seconds=1), attempts=1, sent_at=now)
    assert entry.state == State.CLAIMED and entry.attempts == 0 and entry.sent_at is None
    assert moved.state == State.SENT and moved.attempts == 1 and moved.sent_at == now
    with pytest.raises(FrozenInstanceError):
        moved.state = State.OK  # type: ignore[misc]
