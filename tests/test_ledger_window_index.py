"""MemoryLedger.window() reads a per-window index (kept so that 1,000 windows closing at one
instant do not each scan every entry). Whatever the ledger went through, it answers exactly
what a scan of every entry answers: the window's entries, by chunk, in the order they came."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.ledger import Entry, MemoryLedger, State

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
RECORDINGS = ("news", "sport")


def _entry(recording: str, window: int, chunk: int, action: str) -> Entry:
    start = T0 + timedelta(hours=window)
    return Entry(
        key=f"{recording}/{window}/{chunk}/{action}",
        recording=recording,
        provider="lvb",
        action=action,
        target=f"t/{recording}",
        chunk=chunk,
        chunks=3,
        window_start=start,
        window_end=start + timedelta(minutes=90),
        span_start=start + timedelta(minutes=30 * (chunk - 1)),
        span_end=start + timedelta(minutes=30 * chunk),
        scheduled_at=start,
        state=State.CLAIMED,
        updated_at=start,
    )


entries = st.builds(
    _entry,
    st.sampled_from(RECORDINGS),
    st.integers(0, 3),
    st.integers(1, 3),
    st.sampled_from(("Start", "Stop")),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("put"), entries),
        st.tuples(st.just("update"), entries),
        st.tuples(st.just("prune"), st.integers(0, 5)),
        st.tuples(st.just("forget"), st.integers(0, 5)),
    ),
    max_size=40,
)


def _scanned(ledger: MemoryLedger, recording: str, start: datetime) -> list[Entry]:
    found = [e for e in ledger.entries() if e.recording == recording and e.window_start == start]
    return sorted(found, key=lambda e: e.chunk)


@settings(max_examples=300, deadline=None)
@given(first=st.lists(entries, max_size=10), steps=steps)
def test_window_answers_what_a_scan_of_every_entry_answers(
    first: list[Entry], steps: list[tuple[str, object]]
) -> None:
    ledger = MemoryLedger(first)
    for op, arg in steps:
        if op == "put":
            assert isinstance(arg, Entry)
            ledger.put(arg)
        elif op == "update":  # an entry of a known key moves on (claim_now when it is new)
            assert isinstance(arg, Entry)
            if asyncio.run(ledger.get(arg.key)) is None:
                ledger.put(replace(arg, state=State.CLAIMED))
            ledger.update_now(arg.key, State.OK, T0 + timedelta(hours=9), task_id="7")
        elif op == "prune":
            assert isinstance(arg, int)
            asyncio.run(ledger.prune(T0 + timedelta(hours=arg), timedelta(0)))
        else:
            assert isinstance(arg, int)
            ledger.forget_before(T0 + timedelta(hours=arg))
        for recording in RECORDINGS:
            for window in range(4):
                start = T0 + timedelta(hours=window)
                got = asyncio.run(ledger.window(recording, start))
                assert got == _scanned(ledger, recording, start)
