"""Planning one window of a LIVE API 3.0 recording: CreateRecordTask calls. Pure: no I/O.

A window becomes back-to-back tasks of at most 24 h (the API's limit). Each is created `lead`
before its start, but never before the API would take it: EndTime < now + 7 days and StartTime
<= now + 6 days, less a margin. The rolling horizon plans a far task once its instant nears.

`reconcile` decides what becomes of tasks already created (the ledger's `ok` creates with a
TaskId) when the YAML no longer plans them as they are: a task not started yet and no longer
planned is deleted (DeleteRecordTask); a running one removed is stopped now, and one whose
window was shortened is stopped at its new end (StopRecordTask). `follow_up_call` turns such a
decision into a Call the dispatcher sends like any other (claimed once, by its own key).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.calls import Call, LiveCall
from scheduler.chunks import chunk_window
from scheduler.config import CST, Recording
from scheduler.config_live import (
    AHEAD_MARGIN,
    MAX_END_AHEAD,
    MAX_START_AHEAD,
    MAX_TASK,
    LiveProvider,
)
from scheduler.ledger import Entry, State
from scheduler.providers import live

#: The ledger entries `reconcile` reads: live creates and what was done to their tasks since.
TASK_ACTIONS = (live.CREATE, live.STOP, live.DELETE)
#: A task starting sooner than this is stopped rather than deleted: a Delete that arrives once
#: it has started may not end it [I]; StopRecordTask also keeps a task from starting [I].
DELETE_MARGIN = timedelta(seconds=30)


def created_at(start: datetime, end: datetime, rec: Recording) -> datetime:
    """The instant a task [start, end) is created: `lead` ahead, within the forward limits."""
    return max(
        start - rec.lead,
        end - MAX_END_AHEAD + AHEAD_MARGIN,
        start - MAX_START_AHEAD + AHEAD_MARGIN,
    )


def window_calls(
    provider: LiveProvider, rec: Recording, window_start: datetime, window_end: datetime
) -> list[Call]:
    """Every task's create of one window (which of them are due is decided by the caller)."""
    options = rec.live
    assert options is not None, "a live provider's recordings carry live options"
    stamp = window_start.astimezone(CST).isoformat()
    pieces = chunk_window(window_start, window_end, MAX_TASK, MAX_TASK * 0, MAX_TASK)
    return [
        LiveCall(
            key=f"{rec.name}/{stamp}/{index}/{live.CREATE}",
            at=created_at(start, end, rec),
            start=start,
            deadline=end,
            recording=rec.name,
            provider=provider.name,
            action=live.CREATE,
            target=live.target(provider, options),
            chunk=index,
            chunks=len(pieces),
            window_start=window_start,
            window_end=window_end,
            data=json.dumps(live.create_body(options, start, end)),
        )
        for index, (start, end) in enumerate(pieces, 1)
    ]


@dataclass(frozen=True)
class FollowUp:
    """What to do to one created task: `action` (Delete or Stop) at `at`; `key` claims it."""

    entry: Entry  # the create's ledger entry (its TaskId, its span)
    action: str
    at: datetime
    key: str
    reason: str


def reconcile(entries: Iterable[Entry], planned: Iterable[Call], now: datetime) -> list[FollowUp]:
    """The Deletes and Stops that make the created tasks match the plan. `entries`: the
    ledger's ok entries of TASK_ACTIONS with a TaskId and an open span (creates, and the
    Deletes and Stops already done); `planned`: the new plan's calls, reaching at least every
    open task's start. A task keeps running if its create is still planned with the same span
    or a longer one (a lengthened window is not extended: its key was sent already)."""
    entries = list(entries)
    wanted = {c.key: c for c in planned if c.action == live.CREATE}
    done: dict[str, list[Entry]] = {}
    for e in entries:
        if e.action != live.CREATE and e.state == State.OK:
            done.setdefault(e.key.rsplit("/", 1)[0], []).append(e)
    decided = []
    for e in entries:
        if e.action != live.CREATE or e.state != State.OK or not e.task_id or e.span_end <= now:
            continue
        earlier = done.get(e.key, [])
        if any(d.action == live.DELETE for d in earlier):
            continue  # deleted already
        stopped = min((d.span_start for d in earlier if d.action == live.STOP), default=None)
        call = wanted.get(e.key)
        starts_later = call is not None and call.start > e.span_start
        if call is None or starts_later:
            reason = "its window starts later" if starts_later else "no longer planned"
            if e.span_start > now + DELETE_MARGIN:
                decided.append(FollowUp(e, live.DELETE, now, f"{e.key}/{live.DELETE}", reason))
            elif stopped is None or stopped > now:
                decided.append(FollowUp(e, live.STOP, now, f"{e.key}/{live.STOP}", reason))
            continue
        if call.deadline < e.span_end and (stopped is None or stopped > call.deadline):
            at = max(call.deadline, now)
            key = f"{e.key}/{live.STOP}@{int(call.deadline.timestamp())}"
            decided.append(FollowUp(e, live.STOP, at, key, "its window was shortened"))
    return decided


def follow_up_call(decision: FollowUp) -> LiveCall:
    """The Delete or Stop as a call: its own key and target (no 3 s rule against creates), its
    span from `at` to the task's planned end (acting after that is pointless)."""
    e = decision.entry
    return LiveCall(
        key=decision.key,
        at=decision.at,
        start=decision.at,
        deadline=e.span_end,
        recording=e.recording,
        provider=e.provider,
        action=decision.action,
        target=f"{e.target}/task:{e.task_id}",
        chunk=e.chunk,
        chunks=e.chunks,
        window_start=e.window_start,
        window_end=e.window_end,
        data=json.dumps({"TaskId": e.task_id}),
    )
