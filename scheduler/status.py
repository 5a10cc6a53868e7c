"""`recsched status`: what is recording now, what comes next, what happened (failures first).

It reads the ledger directly (SQLite allows a reader beside the running daemon) and works
whether the daemon runs or not.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler.calls import Call
from scheduler.config import CST, Config
from scheduler.ledger import PROBLEMS, Entry
from scheduler.lock import LOCK_NAME, holder_pid
from scheduler.planner import plan
from scheduler.store import Store, sqlite_path

NEXT_CALLS = 10


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(CST).isoformat(timespec="seconds")


def _entry(e: Entry) -> dict[str, Any]:
    return {
        "recording": e.recording,
        "chunk": f"{e.chunk}/{e.chunks}",
        "state": str(e.state),
        "span_start": _when(e.span_start),
        "span_end": _when(e.span_end),
        "attempts": e.attempts,
        "task_id": e.task_id,
        "detail": e.detail,
        "uncertain": e.uncertain,
        "updated_at": _when(e.updated_at),
        "call_key": e.key,
    }


async def collect(config: Config, now: datetime, last: int) -> dict[str, Any]:
    """Everything `status` shows, as plain data (the --json output)."""
    store = await Store.open(config.state.url, create=False)
    try:
        pid = holder_pid(sqlite_path(config.state.url).parent / LOCK_NAME)
        seen = await store.get_meta("last_seen")
        active = await store.active(now)
        problems = await store.recent(last, states=PROBLEMS)  # however old, up to `last`
        recent = list({e.key: e for e in [*problems, *await store.recent(last)]}.values())
        upcoming: list[Call] = []
        for call in plan(config, now, timedelta(hours=48)):
            if len(upcoming) == NEXT_CALLS:
                break
            if await store.get(call.key) is None:
                upcoming.append(call)
        rows = await store.count()
    finally:
        await store.close()
    recent.sort(
        key=lambda e: (
            e.state not in PROBLEMS and not e.uncertain,
            -(e.updated_at or now).timestamp(),
        )
    )
    return {
        "now": _when(now),
        "daemon": {
            "running": pid is not None,
            "pid": pid,
            "last_seen": _when(datetime.fromtimestamp(float(seen), UTC)) if seen else None,
        },
        "ledger": {"url": config.state.url, "rows": rows},
        "recording_now": [_entry(e) for e in active],
        "next_calls": [
            {
                "at": _when(c.at),
                "recording": c.recording,
                "chunk": f"{c.chunk}/{c.chunks}",
                "call_key": c.key,
            }
            for c in upcoming
        ],
        "last_outcomes": [_entry(e) for e in recent],
    }


def render(data: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(data, ensure_ascii=False, indent=2)
    daemon = data["daemon"]
    state = f"running (pid {daemon['pid']})" if daemon["running"] else "not running"
    lines = [
        f"daemon: {state}; last seen {daemon['last_seen'] or 'never'}",
        f"ledger: {data['ledger']['url']} ({data['ledger']['rows']} calls)",
        "",
        f"recording now ({len(data['recording_now'])}):",
    ]
    lines += [
        f"  {e['recording']}  chunk {e['chunk']}  until {e['span_end']}  task {e['task_id']}"
        for e in data["recording_now"]
    ] or ["  nothing"]
    lines += ["", f"next calls ({len(data['next_calls'])}):"]
    lines += [f"  {c['at']}  {c['recording']}  chunk {c['chunk']}" for c in data["next_calls"]] or [
        "  none in the next 48h"
    ]
    lines += ["", "last outcomes (problems first):"]
    for e in data["last_outcomes"]:
        flag = " (uncertain: a duplicate or missing task is possible)" if e["uncertain"] else ""
        detail = f"  {e['detail']}" if e["detail"] else ""
        lines.append(
            f"  {e['state'].upper():<10} {e['span_start']}  {e['recording']} "
            f"{e['chunk']}  attempts {e['attempts']}  task {e['task_id'] or '-'}"
            f"{detail}{flag}"
        )
    if not data["last_outcomes"]:
        lines.append("  none yet")
    return "\n".join(lines)
