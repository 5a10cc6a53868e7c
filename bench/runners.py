"""One workload through one system (recsched, the curl loop, the APScheduler script), measured
at the fake: lateness = arrival at the fake - planned instant."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import (
    APPID,
    BENCH,
    Daemon,
    Fake,
    config_text,
    env,
    pct,
    stamp,
    summary_ms,
    wire,
    workdir,
    write_config,
)
from bench.workloads import Workload

Result = dict[str, Any]


def analyse(workload: Workload, fake: Fake, origin: float) -> Result:
    """Lateness of every expected call at the fake; `origin` is the instant a burst starts."""
    planned = workload.planned()
    arrivals = fake.arrivals()
    seen = Counter((a.channel, a.start_time) for a in arrivals)
    lateness = [
        a.at - planned[(a.channel, a.start_time)]
        for a in arrivals
        if (a.channel, a.start_time) in planned and a.ok
    ]
    last = max((a.at for a in arrivals), default=float("nan"))
    missing = sum(1 for key in planned if key not in seen)
    refused = [a for a in arrivals if not a.ok]
    return {
        **summary_ms(lateness),
        "expected": len(planned),
        "arrived_ok": sum(a.ok for a in arrivals),
        "missing": missing,
        "rejected": len(refused),
        # why the fake refused calls (bad sign, expired t, a parameter rule...), by reason
        "rejected_reasons": dict(Counter(f"ret {a.ret}: {a.error}" for a in refused)),
        # calls that are not in the workload at all (another process, a stale daemon)
        "unexpected": sum(1 for a in arrivals if (a.channel, a.start_time) not in planned),
        "duplicates": sum(n - 1 for n in seen.values() if n > 1),
        "last_arrival_s": round(last - origin, 3),
        "min_ms": round(min(lateness) * 1000, 1) if lateness else float("nan"),
        # p99 over every planned call, a call that never arrived counting as infinitely late:
        # a system that drops its late calls cannot look punctual by dropping them
        "p99_all_ms": round(pct([x * 1000 for x in lateness] + [math.inf] * missing, 99), 1),
    }


def _wait_all(fake: Fake, workload: Workload, extra_s: float) -> None:
    last = workload.shots[-1].at.timestamp()
    fake.wait_for(len(workload.shots), timeout=max(0.0, last - time.time()) + extra_s)
    time.sleep(0.5)  # anything late or duplicated still in flight


def daemon_log_facts(daemon: Daemon) -> Result:
    """What the daemon says about its own calls: lateness at send, transit to the fake."""
    lines = daemon.events(
        "call.sent",
        "call.failed",
        "call.missed",
        "call.retry",
        "call.uncertain",
        "call.duplicate_suppressed",
        "call.crashed",
    )
    sent = [e for e in lines if e["event"] == "call.sent"]
    problems = Counter(e["event"] for e in lines if e["event"] != "call.sent")
    return {
        "sent_lateness": summary_ms(e["lateness_ms"] / 1000 for e in sent),
        "problems": dict(problems),
    }


def transit(daemon: Daemon, fake: Fake) -> Result:
    """arrival at the fake - the daemon's own `sent_at` (the client → fake leg)."""
    sent_at = {}
    for e in daemon.events("call.sent"):
        scheduled = datetime.fromisoformat(e["scheduled_at"])
        sent_at[(e["channel_id"], wire(scheduled))] = datetime.fromisoformat(e["sent_at"])
    legs = [
        a.at - sent_at[(a.channel, a.start_time)].timestamp()
        for a in fake.arrivals()
        if (a.channel, a.start_time) in sent_at
    ]
    return summary_ms(legs)


def recsched(
    fake: Fake,
    make: Callable[[datetime], Workload],
    *,
    lead_s: float,
    concurrency: int = 10000,
    rate: str | None = None,
    wait_s: float = 30,
) -> Result:
    """Write the workload (instants `lead_s` from now), start the daemon, wait for every call
    at the fake, stop the daemon."""
    fake.reset()
    directory = workdir("run")
    t0 = datetime.now(UTC) + timedelta(seconds=lead_s)
    workload = make(t0)
    config = write_config(
        directory,
        config_text(directory, fake.url, workload.recordings, concurrency=concurrency, rate=rate),
    )
    daemon = Daemon(config)
    try:
        ready = daemon.wait_event("plan.loaded", timeout=lead_s + 30)
        _wait_all(fake, workload, wait_s)
        result = analyse(workload, fake, workload.shots[0].at.timestamp())
        result["ready_before_first_call_s"] = round(
            workload.shots[0].at.timestamp() - stamp(ready), 3
        )
    finally:
        code = daemon.stop()
    result.update(daemon_log_facts(daemon))
    result["transit"] = transit(daemon, fake)
    result["exit_code"] = code
    return result


def baseline(
    fake: Fake,
    make: Callable[[datetime], Workload],
    script: str,
    *,
    lead_s: float,
    wait_s: float = 60,
) -> Result:
    """Run bench/<script> on the workload (instants `lead_s` from now) as a subprocess."""
    fake.reset()
    directory = workdir("baseline")
    t0 = datetime.now(UTC) + timedelta(seconds=lead_s)
    workload = make(t0)
    spec = {
        "url": fake.url,
        "appid": APPID,
        "shots": [
            [s.at.timestamp(), s.channel, s.start, s.end, s.sub_type] for s in workload.shots
        ],
    }
    path = directory / "workload.json"
    path.write_text(json.dumps(spec))
    last = workload.shots[-1].at.timestamp()
    done = subprocess.run(
        [sys.executable, str(BENCH / script), str(path)],
        env=env(),
        capture_output=True,
        text=True,
        timeout=max(0.0, last - time.time()) + wait_s + 60,
    )
    time.sleep(0.5)
    result = analyse(workload, fake, workload.shots[0].at.timestamp())
    try:
        result["own_report"] = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        result["own_report"] = {"exit": done.returncode, "stderr": done.stderr[-500:]}
    return result
