"""Section 3: a 10,000-recording schedule — check, plan, start-up, memory, firing, reload."""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Daemon, Fake, config_text, run_timed, stamp, workdir, write_config
from bench.runners import analyse, daemon_log_facts
from bench.workloads import Workload, change_one, scale

Result = dict[str, Any]
#: Seconds from writing the file to the first firing call: start-up (~4 s) plus margin.
LEAD_S = 12.0
#: `recsched check`'s floor: PyYAML's CSafeLoader alone reading the file, in a fresh process.
_LOAD = [
    sys.executable,
    "-c",
    "import sys, yaml\nwith open(sys.argv[1], 'rb') as f: yaml.load(f, Loader=yaml.CSafeLoader)",
]


def _median_wall(args: list[str], runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        seconds, done = run_timed(args)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[2:4])} failed: {done.stderr[-1000:]}")
        times.append(round(seconds, 3))
    return statistics.median(times), times


def cli_times(fake: Fake, runs: int) -> Result:
    """`recsched check` and `recsched plan --hours 48` wall time (a fresh process each run)."""
    directory = workdir("scale-cli")
    now = datetime.now(UTC)
    workload = scale(now, now + timedelta(hours=1))
    config = write_config(directory, config_text(directory, fake.url, workload.recordings))
    cmd = [sys.executable, "-m", "scheduler"]
    # The floor, measured side by side: a fresh interpreter doing nothing but PyYAML's C
    # loader on the same file. check and plan are reported as multiples of it, which moves
    # far less with the machine's load than seconds do.
    load = [*_LOAD, str(config)]
    floor, floor_runs = _median_wall(load, runs)
    check, check_runs = _median_wall([*cmd, "check", "-c", str(config)], runs)
    plan, plan_runs = _median_wall([*cmd, "plan", "-c", str(config), "--hours", "48"], runs)
    floor_after, floor_after_runs = _median_wall(load, runs)
    floor = min(floor, floor_after)
    _, done = run_timed([*cmd, "plan", "-c", str(config), "--hours", "48"])
    return {
        "recordings": workload.count,
        "file_bytes": config.stat().st_size,
        "planned_calls_48h": int(done.stdout.split()[0]),
        "check_s": check,
        "check_runs_s": check_runs,
        "plan_s": plan,
        "plan_runs_s": plan_runs,
        "csafe_load_s": floor,
        "csafe_load_runs_s": floor_runs + floor_after_runs,
        "check_over_load": round(check / floor, 2),
        "plan_over_load": round(plan / floor, 2),
    }


def _reload(daemon: Daemon, config: Path, text: str, nth: int) -> Result:
    """Rewrite the file, SIGHUP, wait for the nth config.reloaded line."""
    config.write_text(text)
    sent = daemon.hup()
    line = daemon.wait_event("config.reloaded", timeout=30, since=nth)
    return {
        "reload_s": round(stamp(line) - sent, 3),
        **{k: line[k] for k in ("added", "removed", "changed", "unchanged")},
    }


def daemon_run(fake: Fake, *, firing: int = 1000, chunks: int = 10, chunk_s: int = 10) -> Result:
    """Start the daemon on 10,000 recordings; `firing` of them make firing * chunks calls at
    the fake over chunks * chunk_s seconds. Reload twice once they are done: with the last
    chunks still open (nothing may be sent again) and idle."""
    fake.reset()
    directory = workdir("scale")
    now = datetime.now(UTC)
    workload: Workload = scale(
        now, now + timedelta(seconds=LEAD_S), firing=firing, chunks=chunks, chunk_s=chunk_s
    )
    text = config_text(directory, fake.url, workload.recordings)
    config = write_config(directory, text)
    daemon = Daemon(config)
    result: Result = {"calls_fired_expected": len(workload.shots)}
    try:
        ready = daemon.wait_event("plan.loaded", timeout=60)
        result["ready_s"] = round(stamp(ready) - daemon.spawned_at, 3)
        result["calls_armed"] = ready["calls"]
        time.sleep(1.0)
        result["rss_ready_mb"] = round(daemon.rss_mb(), 1)
        result["first_call_after_ready_s"] = round(
            workload.shots[0].at.timestamp() - stamp(ready), 3
        )
        last = workload.shots[-1].at.timestamp()
        fake.wait_for(len(workload.shots), timeout=max(0.0, last - time.time()) + 60)
        time.sleep(0.5)
        result["rss_after_calls_mb"] = round(daemon.rss_mb(), 1)
        result["rss_growth_mb"] = round(result["rss_after_calls_mb"] - result["rss_ready_mb"], 1)
        before = fake.count()
        open_reload = _reload(daemon, config, change_one(text), 0)
        time.sleep(3.0)  # anything re-sent by the reload would be on its way by now
        open_reload["refired"] = fake.count() - before
        idle_reload = _reload(daemon, config, text, 1)
        time.sleep(1.0)
        idle_reload["refired"] = fake.count() - before - open_reload["refired"]
        result["reload_with_open_chunks"] = open_reload
        result["reload_idle"] = idle_reload
        result["rss_after_reloads_mb"] = round(daemon.rss_mb(), 1)
        result["firing"] = analyse(workload, fake, workload.shots[0].at.timestamp())
    finally:
        result["exit_code"] = daemon.stop()
    if "firing" in result:
        result["firing"].update(daemon_log_facts(daemon))
    return result
