"""`recsched status`: what is recording now, what comes next, what happened (problems first),
and with a shared ledger every instance and who sent what.

It reads the ledger directly (SQLite allows a reader beside the running daemon; PostgreSQL is
shared anyway) and works whether the daemon runs or not.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler.calls import Call
from scheduler.config import CST, Config
from scheduler.coverage import TASK_ACTIONS
from scheduler.ledger import PROBLEMS, Entry
from scheduler.lock import LOCK_NAME, holder_pid
from scheduler.planner import plan
from scheduler.store import Store, sqlite_path

NEXT_CALLS = 10
#: An instance whose heartbeat is older than this is shown as gone (heartbeats every 15 s).
INSTANCE_ALIVE_S = 45.0


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(CST).isoformat(timespec="seconds")


def _entry(e: Entry) -> dict[str, Any]:
    return {
        "recording": e.recording,
        "action": e.action,
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
        "owner": e.owner,
    }


async def collect(config: Config, now: datetime, last: int) -> dict[str, Any]:
    """Everything `status` shows, as plain data (the --json output)."""
    store = await Store.open(config.state.url, create=False)
    try:
        pid = None
        if not config.state.shared:
            pid = holder_pid(sqlite_path(config.state.url).parent / LOCK_NAME)
        peers = await store.instances()
        seen = await store.get_meta("last_seen")
        # what records: task-creating calls (not a web task's Stop or Describe)
        active = [e for e in await store.active(now) if e.action in TASK_ACTIONS]
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
            "running": pid is not None or any(age < INSTANCE_ALIVE_S for _, age in peers),
            "pid": pid,
            "last_seen": _when(datetime.fromtimestamp(float(seen), UTC)) if seen else None,
        },
        "ledger": {"url": config.state.url, "rows": rows},
        "instances": [
            {
                "id": row.id,
                "host": row.host,
                "pid": row.pid,
                "config_hash": row.config_hash[:12],
                "last_heartbeat_s_ago": round(age, 1),
                "alive": age < INSTANCE_ALIVE_S,
            }
            for row, age in peers
        ],
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
    daemon, instances = data["daemon"], data["instances"]
    if instances:
        state = f"{sum(i['alive'] for i in instances)} of {len(instances)} instance(s) alive"
    else:
        state = f"running (pid {daemon['pid']})" if daemon["running"] else "not running"
    lines = [f"daemon: {state}; last seen {daemon['last_seen'] or 'never'}"]
    lines += [
        f"  {i['id']} on {i['host']} (pid {i['pid']}): heartbeat {i['last_heartbeat_s_ago']}s ago"
        f"{'' if i['alive'] else ' (gone)'}, config {i['config_hash']}"
        for i in instances
    ]
    lines += [
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
        by = f"  by {e['owner']}" if e["owner"] else ""
        lines.append(
            f"  {e['state'].upper():<10} {e['span_start']}  {e['recording']} {e['chunk']} "
            f"{e['action']}  "
            f"attempts {e['attempts']}  task {e['task_id'] or '-'}{by}{detail}{flag}"
        )
    if not data["last_outcomes"]:
        lines.append("  none yet")
    return "\n".join(lines)
