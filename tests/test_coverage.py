"""Window coverage (the `window.closed` line): how many seconds of a window no task recorded,
and whether that is worth an operator's attention."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.config import CST, parse_config
from scheduler.coverage import TOLERANCE_PER_CHUNK_S, coverage, log_window_closed
from scheduler.ledger import Entry, State
from scheduler.planner import plan
from tests.conftest import LogCapture

T0 = datetime(2026, 12, 1, 20, 0, tzinfo=CST)
CHUNK_S = 10
START, END = T0, T0 + timedelta(seconds=3 * CHUNK_S)


def _entries(*states: State, late_s: tuple[float, ...] = (0.0, 0.0, 0.0)) -> list[Entry]:
    """The window's three 10 s chunks, each in the given state; OK ones sent `late_s` late."""
    text = f"""
providers:
  lvb: {{appid: 1234, key: "${{LVB_KEY}}"}}
recordings:
  - {{name: news, channel_id: c, start: '{T0:%Y-%m-%d %H:%M:%S}', duration: 30s, chunk: 10s}}
"""
    calls = plan(parse_config(text, "recsched.yaml", env={"LVB_KEY": "k"}), T0)
    assert [(c.start, c.deadline) for c in calls] == [
        (T0 + timedelta(seconds=CHUNK_S * i), T0 + timedelta(seconds=CHUNK_S * (i + 1)))
        for i in range(3)
    ]
    entries = []
    for call, state, late in zip(calls, states, late_s, strict=True):
        entry = Entry.claimed(call, call.at)
        if state != State.CLAIMED:
            sent = call.at + timedelta(seconds=late)
            entry = replace(entry, state=state, attempts=1, sent_at=sent, updated_at=sent)
        entries.append(entry)
    return entries


def _closed(capture: LogCapture, entries: list[Entry]) -> dict[str, object]:
    log_window_closed("news", START, END, entries)
    (line,) = capture.events("window.closed")
    return line


def test_three_chunks_sent_on_time_cover_the_window(captured_logs: LogCapture) -> None:
    entries = _entries(State.OK, State.OK, State.OK)
    facts = coverage(entries, START, END)
    assert facts["uncovered_s"] == pytest.approx(0.0, abs=1e-3)
    assert (facts["chunks"], facts["ok"], facts["failed"], facts["missed"]) == (3, 3, 0, 0)
    assert (facts["uncertain"], facts["unfinished"], facts["suppressed"]) == (0, 0, 0)
    line = _closed(captured_logs, entries)
    assert line["level"] == "info" and line["recording"] == "news"
    assert line["window_start"] == "2026-12-01T20:00:00+08:00"
    assert line["window_end"] == "2026-12-01T20:00:30+08:00"
    assert line["uncovered_s"] == 0


def test_a_late_chunk_covers_from_its_send_time_within_tolerance(
    captured_logs: LogCapture,
) -> None:
    entries = _entries(State.OK, State.OK, State.OK, late_s=(0.0, 1.5, 0.0))
    assert coverage(entries, START, END)["uncovered_s"] == pytest.approx(1.5)
    assert TOLERANCE_PER_CHUNK_S * 3 > 1.5  # 1 s per chunk, 3 chunks: latency, not a gap
    assert _closed(captured_logs, entries)["level"] == "info"


def test_late_chunks_beyond_the_tolerance_are_an_error(captured_logs: LogCapture) -> None:
    entries = _entries(State.OK, State.OK, State.OK, late_s=(1.5, 1.5, 1.5))
    line = _closed(captured_logs, entries)
    assert line["uncovered_s"] == pytest.approx(4.5)
    assert line["level"] == "error"


def test_a_missed_middle_chunk_is_a_gap_of_its_length(captured_logs: LogCapture) -> None:
    entries = _entries(State.OK, State.MISSED, State.OK)
    line = _closed(captured_logs, entries)
    assert line["uncovered_s"] == pytest.approx(CHUNK_S)
    assert (line["missed"], line["ok"]) == (1, 2)
    assert line["level"] == "error"


def test_a_failed_chunk_is_a_gap_too(captured_logs: LogCapture) -> None:
    line = _closed(captured_logs, _entries(State.FAILED, State.OK, State.OK))
    assert line["uncovered_s"] == pytest.approx(CHUNK_S)
    assert line["failed"] == 1 and line["level"] == "error"


def test_a_suppressed_chunk_counts_as_covered(captured_logs: LogCapture) -> None:
    entries = _entries(State.OK, State.SUPPRESSED, State.OK)
    facts = coverage(entries, START, END)
    assert facts["uncovered_s"] == pytest.approx(0.0, abs=1e-3)
    assert facts["suppressed"] == 1
    assert _closed(captured_logs, entries)["level"] == "info"


def test_an_ok_chunk_that_was_once_uncertain_is_counted_and_warned(
    captured_logs: LogCapture,
) -> None:
    entries = _entries(State.OK, State.OK, State.OK)
    entries[1] = replace(entries[1], uncertain=True, attempts=2)  # re-sent: maybe two tasks
    facts = coverage(entries, START, END)
    assert (facts["ok"], facts["uncertain"]) == (3, 1)
    assert facts["uncovered_s"] == pytest.approx(0.0, abs=1e-3)
    assert _closed(captured_logs, entries)["level"] == "warning"


def test_an_uncertain_chunk_is_counted_once() -> None:
    entries = _entries(State.OK, State.UNCERTAIN, State.OK)
    entries[1] = replace(entries[1], uncertain=True)
    assert coverage(entries, START, END)["uncertain"] == 1


@pytest.mark.parametrize("leftover", [State.CLAIMED, State.SENT])
def test_claimed_or_sent_leftovers_are_unfinished_and_never_info(
    captured_logs: LogCapture, leftover: State
) -> None:
    entries = _entries(State.OK, State.OK, leftover)
    line = _closed(captured_logs, entries)
    assert line["unfinished"] == 1 and line["ok"] == 2
    assert line["level"] in {"warning", "error"}


def test_an_unfinished_chunk_that_is_too_short_to_be_a_gap_is_still_a_warning(
    captured_logs: LogCapture,
) -> None:
    entries = _entries(State.OK, State.OK, State.SENT)
    # the leftover's span is under the window's tolerance, so only `unfinished` can raise it
    short = replace(entries[2], span_start=END - timedelta(seconds=0.5))
    entries = [entries[0], replace(entries[1], span_end=short.span_start), short]
    line = _closed(captured_logs, entries)
    assert line["uncovered_s"] == pytest.approx(0.5)
    assert line["level"] == "warning"


def test_a_window_nobody_recorded_is_entirely_uncovered(captured_logs: LogCapture) -> None:
    log_window_closed("news", START, END, [])
    (line,) = captured_logs.events("window.closed")
    assert line["uncovered_s"] == pytest.approx(3 * CHUNK_S)
    assert line["level"] == "error"


def test_overlapping_spans_are_not_counted_twice() -> None:
    ok = _entries(State.OK, State.OK, State.OK)
    # the same chunk recorded twice (a suppressed duplicate from another entry) adds nothing
    duplicate = replace(ok[0], key="copy", state=State.SUPPRESSED)
    facts = coverage([ok[0], duplicate, ok[2]], START, END)
    assert facts["uncovered_s"] == pytest.approx(CHUNK_S)


def test_coverage_is_about_instants_not_zones() -> None:
    entries = [
        replace(
            e,
            span_start=e.span_start.astimezone(UTC),
            span_end=e.span_end.astimezone(UTC),
            sent_at=e.sent_at.astimezone(UTC) if e.sent_at else None,
        )
        for e in _entries(State.OK, State.OK, State.OK, late_s=(0.0, 1.5, 0.0))
    ]
    facts = coverage(entries, START, END)
    assert facts["uncovered_s"] == pytest.approx(1.5)


def test_a_live_api_task_covers_its_window() -> None:
    """A LIVE API 3.0 CreateRecordTask records its window (it is sent `lead` ahead): before,
    its window counted as uncovered and no live task as "recording now"."""
    ok = [replace(e, action="CreateRecordTask") for e in _entries(State.OK, State.OK, State.OK)]
    facts = coverage(ok, START, END)
    assert facts["ok"] == 3 and facts["uncovered_s"] == pytest.approx(0.0, abs=1e-3)
