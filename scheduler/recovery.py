"""What happened while the daemon was not running, reconciled with the ledger at start.

Calls planned for chunks that ended while the daemon was down are recorded `missed`; calls
left `claimed` or `sent` for chunks that have since ended are closed as `missed` or
`uncertain`; windows that ended meanwhile get their `window.closed` line. Open chunks are not
touched here: the ordinary plan sends them (late, with their original end_time).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from scheduler.config import CST, Config
from scheduler.coverage import log_window_closed
from scheduler.ledger import Ledger, State
from scheduler.logs import get_logger
from scheduler.planner import plan

log = get_logger("recsched.recovery")
#: How far back a restart looks for missed calls at most.
MAX_LOOKBACK = timedelta(days=7)


async def recover(config: Config, ledger: Ledger, now: datetime) -> None:
    last_seen = await ledger.last_seen()
    if last_seen is None:
        shown = re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", config.state.url)  # no password
        log.info("recovery.first_run", ledger=shown)
        return
    since = max(last_seen, now - MAX_LOOKBACK)
    downtime = (now - last_seen).total_seconds()
    missed = 0
    windows: dict[tuple[str, datetime], datetime] = {}
    for call in plan(config, since, now - since):
        if call.deadline > now:
            continue  # still open: the ordinary plan sends it late
        if await ledger.get(call.key) is None and await ledger.claim(call, now):
            await ledger.update(call.key, State.MISSED, now, detail="daemon was not running")
            log.error(
                "call.missed",
                **call.log_fields(),
                reason="daemon was not running",
                lateness_ms=round((now - call.at).total_seconds() * 1000),
            )
            missed += 1
        windows[(call.recording, call.window_start)] = call.window_end
    for entry in await ledger.unsettled(now):
        if entry.state == State.SENT:
            await ledger.update(
                entry.key,
                State.UNCERTAIN,
                now,
                uncertain=True,
                detail="sent before the daemon stopped; no answer was recorded",
            )
            log.error(
                "call.uncertain",
                call_key=entry.key,
                recording=entry.recording,
                resent=False,
                message="sent before the daemon stopped and never answered;"
                " its chunk is over: check the console for the task",
            )
        else:
            await ledger.update(entry.key, State.MISSED, now, detail="daemon was not running")
            log.error(
                "call.missed",
                call_key=entry.key,
                recording=entry.recording,
                reason="claimed before the daemon stopped, never sent",
            )
        windows[(entry.recording, entry.window_start)] = entry.window_end
    for (recording, start), end in sorted(windows.items(), key=lambda item: item[1]):
        if last_seen < end <= now:
            log_window_closed(recording, start, end, await ledger.window(recording, start))
    log.info(
        "recovery.done",
        last_seen=last_seen.astimezone(CST).isoformat(),
        downtime_s=round(downtime, 1),
        missed=missed,
    )
