"""Planning one window of a web recording: Start, Pause/Resume, Refresh, Stop and Describe.

A window longer than `max_duration` becomes consecutive tasks: each task's Stop and the next
task's Start share an instant, so the gap between them is one call's latency. Each Start asks
for `MaxDurationLimit` = the task's length + `DURATION_MARGIN` (capped by `max_duration`), so a
Start that lands late is not cut short by the service before recsched's Stop. Pure: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.calls import Call, WebCall
from scheduler.chunks import Window, chunk_window
from scheduler.config import CST, Recording
from scheduler.config_web import DURATION_MARGIN, WebProvider
from scheduler.providers import web

#: Describe polling starts this long after Stop (the task is `canceled`, then transcoded). [I]
DESCRIBE_AFTER = timedelta(seconds=10)
#: How long after that recsched keeps asking for the result before it reports none. [I]
RESULT_WAIT = timedelta(hours=3)
_TASK_ONLY = json.dumps({"TaskID": web.TASK_ID})


def tasks(start: datetime, end: datetime, longest: timedelta) -> list[Window]:
    """[start, end) cut into back-to-back pieces of at most `longest` (no tail merging: a
    merged tail would exceed `longest`)."""
    return chunk_window(start, end, longest, timedelta(0), longest)


@dataclass(frozen=True)
class _Task:
    """One task of a window: makes its calls."""

    provider: WebProvider
    rec: Recording
    window: Window
    limit: timedelta  # MaxDurationLimit: the task's length + the margin, capped
    index: int
    count: int
    base: str  # recording/window stamp/index

    def call(self, action: str, at: datetime, deadline: datetime, suffix: str = "") -> WebCall:
        opts = self.rec.web
        assert opts is not None
        first = action == web.START
        start_key = f"{self.base}/{web.START}"
        return WebCall(
            key=start_key if first else f"{self.base}/{action}{suffix}",
            at=at,
            start=at,
            deadline=deadline,
            recording=self.rec.name,
            provider=self.provider.name,
            action=action,
            # only Start creates a recorder; the others never count as its duplicate
            target=web.target(self.provider, opts.url) if first else f"web:{self.base}/{action}",
            chunk=self.index,
            chunks=self.count,
            window_start=self.window[0],
            window_end=self.window[1],
            data=json.dumps(web.start_data(opts, self.limit)) if first else _TASK_ONLY,
            needs="" if first else start_key,
        )


def window_calls(
    provider: WebProvider, rec: Recording, window_start: datetime, window_end: datetime
) -> list[Call]:
    """Every call of one window (which of them are due is decided by the caller)."""
    opts = rec.web
    assert opts is not None, "a web provider's recordings carry web options"
    stamp = window_start.astimezone(CST).isoformat()
    pieces = tasks(window_start, window_end, opts.max_duration)
    calls: list[Call] = []
    for index, (start, end) in enumerate(pieces, 1):
        limit = min(end - start + DURATION_MARGIN, opts.max_duration)
        task = _Task(
            provider,
            rec,
            (window_start, window_end),
            limit,
            index,
            len(pieces),
            f"{rec.name}/{stamp}/{index}",
        )
        calls.append(task.call(web.START, start, end))
        busy = {start, end}
        for pause in opts.pauses:
            at = window_start + pause.at
            if start <= at < end:
                resume = at + pause.length
                calls.append(task.call(web.PAUSE, at, resume, f"+{_offset(pause.at)}"))
                calls.append(
                    task.call(web.RESUME, resume, end, f"+{_offset(resume - window_start)}")
                )
                busy |= {at, resume}
        if opts.refresh_every is not None:
            at = start + opts.refresh_every
            while at < end:
                if at not in busy:
                    offset = f"+{_offset(at - window_start)}"
                    calls.append(
                        task.call(web.REFRESH, at, min(at + opts.refresh_every, end), offset)
                    )
                at += opts.refresh_every
        # once the service has stopped the task itself, a Stop is pointless
        calls.append(task.call(web.STOP, end, start + limit))
        describe = end + DESCRIBE_AFTER
        calls.append(task.call(web.DESCRIBE, describe, describe + RESULT_WAIT))
    return sorted(calls, key=lambda c: c.at)


def _offset(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())}s"
