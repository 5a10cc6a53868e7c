"""Planning one window of a LIVE API 3.0 recording: CreateRecordTask calls. Pure: no I/O.

A window becomes back-to-back tasks of at most 24 h (the API's limit). Each is created `lead`
before its start, but never before the API would take it: EndTime < now + 7 days and StartTime
<= now + 6 days, less a margin. The rolling horizon plans a far task once its instant nears.
"""

from __future__ import annotations

import json
from datetime import datetime

from scheduler.calls import Call
from scheduler.chunks import chunk_window
from scheduler.config import CST, Recording
from scheduler.config_live import (
    AHEAD_MARGIN,
    MAX_END_AHEAD,
    MAX_START_AHEAD,
    MAX_TASK,
    LiveProvider,
)
from scheduler.providers import live


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
        Call(
            key=f"{rec.name}/{stamp}/{index}/{live.CREATE}",
            at=created_at(start, end, rec),
            start=start,
            deadline=end,
            recording=rec.name,
            provider=provider.name,
            action=live.CREATE,
            target=live.target(provider, options),
            params=(),
            chunk=index,
            chunks=len(pieces),
            window_start=window_start,
            window_end=window_end,
            data=json.dumps(live.create_body(options, start, end)),
        )
        for index, (start, end) in enumerate(pieces, 1)
    ]
