"""How much of a recording window was really covered: the `window.closed` line."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scheduler.domain import CST
from scheduler.ledger import Entry, State
from scheduler.logs import get_logger

log = get_logger("recsched.window")
#: A real-time task records from the moment its call lands, so each chunk loses its call's
#: latency (milliseconds). Uncovered time up to this much per chunk is not a problem.
TOLERANCE_PER_CHUNK_S = 1.0
#: The calls that create a recording task: LVB Live_Tape_Start, the web function's Start and
#: LIVE API 3.0's CreateRecordTask (its own name, so this leaf module imports no provider).
TASK_ACTIONS = frozenset({"Live_Tape_Start", "Start", "CreateRecordTask"})


def coverage(entries: list[Entry], window_start: datetime, window_end: datetime) -> dict[str, Any]:
    """Counts per outcome and the seconds of [window_start, window_end) no task recorded.

    A real-time task records from the moment the call lands, so a late chunk covers from its
    send time; a suppressed call's span is covered by the call it duplicated.
    """
    # The calls that create tasks; a web window's Pause/Resume/Refresh/Stop/Describe have
    # their own outcome lines and record nothing themselves.
    entries = [e for e in entries if e.action in TASK_ACTIONS]
    count = {state: sum(e.state == state for e in entries) for state in State}
    spans = sorted(
        (max(e.span_start, e.sent_at or e.span_start), e.span_end)
        for e in entries
        if e.state in (State.OK, State.SUPPRESSED)
    )
    covered, cursor = 0.0, window_start
    for start, end in spans:
        start, end = max(start, cursor), min(end, window_end)
        if end > start:
            covered += (end - start).total_seconds()
            cursor = end
    total = (window_end - window_start).total_seconds()
    return {
        "chunks": max((e.chunks for e in entries), default=0),
        "ok": count[State.OK],
        "failed": count[State.FAILED],
        "missed": count[State.MISSED],
        "uncertain": count[State.UNCERTAIN]
        + sum(e.uncertain and e.state != State.UNCERTAIN for e in entries),
        "suppressed": count[State.SUPPRESSED],
        "unfinished": count[State.CLAIMED] + count[State.SENT],
        "uncovered_s": round(max(total - covered, 0.0), 3),
    }


def log_window_closed(
    recording: str, window_start: datetime, window_end: datetime, entries: list[Entry]
) -> dict[str, Any]:
    facts = coverage(entries, window_start, window_end)
    problems = facts["failed"] + facts["missed"] + facts["uncertain"] + facts["unfinished"]
    gap = facts["uncovered_s"] > TOLERANCE_PER_CHUNK_S * max(facts["chunks"], 1)
    level = "error" if gap else ("warning" if problems else "info")
    getattr(log, level)(
        "window.closed",
        recording=recording,
        window_start=window_start.astimezone(CST).isoformat(),
        window_end=window_end.astimezone(CST).isoformat(),
        **facts,
    )
    return facts
