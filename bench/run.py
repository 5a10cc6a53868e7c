"""recsched benchmark: firing precision, bursts, a 10,000-recording schedule, and baselines.

    .venv/bin/python bench/run.py [--quick] [--skip SECTION ...]

Runs the real daemon (`python -m scheduler run`) as a subprocess against the fake LVB provider
(bench/fake_server.py, its own process) on 127.0.0.1, then the same workloads through a
one-curl-per-call loop and a naive APScheduler + requests script. Prints a table, PASS/MISS per
target, and writes bench/results/latest.json. docs/benchmarks.md explains every number.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import runners, scale, workloads
from bench.common import BENCH, ROOT, WORKDIRS, Fake, summary_ms

RESULTS = BENCH / "results"
SECTIONS = ("precision", "burst", "scale")
Result = dict[str, Any]


def machine() -> Result:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem.splitlines()[1].split()[1] if mem else "?",
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
    }


def bytecode() -> Result:
    """Compile recsched's modules to bytecode before anything is timed, as `pip install` and
    any first run leave them on an operator's host. Where PYTHONDONTWRITEBYTECODE is set (it
    is on this project's machines) nothing writes them, and every measured process compiled
    scheduler/ from source (40-50 ms of each `check` and `plan`, and of start-up) while the
    floor, PyYAML, loads the bytecode its install wrote."""
    started = time.perf_counter()
    ok = compileall.compile_dir(ROOT / "scheduler", quiet=1)
    return {
        "compiled": bool(ok),
        "seconds": round(time.perf_counter() - started, 3),
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
    }


def cron_granularity(make: Any) -> Result:
    """What cron adds by itself: it starts jobs only at whole minutes, so a call planned at
    HH:MM:SS.mmm goes out at the next minute at best (plus the job's own start-up)."""
    shots = make(datetime.now(UTC)).shots
    waits = [(60 - (s.at.timestamp() % 60)) % 60 for s in shots]
    return summary_ms(waits)


def precision(fake: Fake, baselines: dict[str, bool]) -> Result:
    make = workloads.precision
    out: Result = {"workload": "200 one-off real-time recordings at random ms over 60 s"}
    print("precision: recsched …", flush=True)
    out["recsched"] = runners.recsched(fake, make, lead_s=5)
    if baselines["curl"]:
        print("precision: curl per call …", flush=True)
        out["curl"] = runners.baseline(fake, make, "baseline_curl.py", lead_s=2)
    if baselines["apscheduler"]:
        print("precision: APScheduler + requests …", flush=True)
        out["apscheduler"] = runners.baseline(fake, make, "baseline_apscheduler.py", lead_s=3)
    out["cron_granularity"] = cron_granularity(make)
    return out


def burst(fake: Fake, sizes: list[int], baselines: dict[str, bool]) -> Result:
    out: Result = {}
    for n in sizes:

        def make(t0: datetime, n: int = n) -> workloads.Workload:
            return workloads.burst(t0, n)

        lead = 5 + n / 1000
        row: Result = {}
        print(f"burst {n}: recsched, no limit …", flush=True)
        row["recsched"] = runners.recsched(fake, make, lead_s=lead)
        if n <= 1000:
            print(f"burst {n}: recsched, rate 20/s …", flush=True)
            row["recsched_rate20"] = runners.recsched(
                fake, make, lead_s=lead, rate="20/s", wait_s=n / 20 + 30
            )
            row["recsched_rate20"]["expected_spread_s"] = round((n - 20) / 20, 1)
        else:
            row["recsched_rate20"] = {
                "skipped": f"would take ~{n / 20:.0f} s (N/20); the 1,000 run shows the limiter"
            }
        if n == 1000:
            print(f"burst {n}: the floor, one aiohttp session gathering them …", flush=True)
            row["aiohttp_floor"] = runners.baseline(fake, make, "baseline_aiohttp.py", lead_s=3)
            if baselines["curl"]:
                print(f"burst {n}: curl per call …", flush=True)
                row["curl"] = runners.baseline(fake, make, "baseline_curl.py", lead_s=3)
            if baselines["apscheduler"]:
                print(f"burst {n}: APScheduler + requests …", flush=True)
                row["apscheduler"] = runners.baseline(
                    fake, make, "baseline_apscheduler.py", lead_s=4
                )
        out[str(n)] = row
    return out


#: Alternating floor / recsched pairs of the full run, whose median pair is the floor target.
FULL_RUN_PAIRS = 3


def burst_pairs(fake: Fake, pairs: int) -> Result:
    """The 1,000-call burst through recsched and through the aiohttp floor, alternately,
    `pairs` times: each pair's ratio is taken within the pair (the machine's load moves
    between pairs more than within one), and the median pair is reported.

    One floor burst runs first and is not counted: in 12 of 12 two-pair runs the first pair had
    the lower ratio (its floor was the slower one in 11), which flattered recsched. The cause is
    inferred, not measured: the first 1,000 requests a fresh fake process serves."""

    def make(t0: datetime) -> workloads.Workload:
        return workloads.burst(t0, 1000)

    print("burst 1000: warming the fake up with one floor burst (not counted) …", flush=True)
    runners.baseline(fake, make, "baseline_aiohttp.py", lead_s=3)
    runs = []
    for index in range(pairs):
        print(f"burst 1000, pair {index + 1}/{pairs}: floor, then recsched …", flush=True)
        floor = runners.baseline(fake, make, "baseline_aiohttp.py", lead_s=3)
        ours = runners.recsched(fake, make, lead_s=6)
        runs.append(
            {
                "floor": floor,
                "recsched": ours,
                "p99_over_floor": round(ours["p99_ms"] / floor["p99_ms"], 2),
                "p50_over_floor": round(ours["p50_ms"] / floor["p50_ms"], 2),
            }
        )
    runs.sort(key=lambda x: x["p99_over_floor"])
    median = runs[len(runs) // 2]
    return {
        "pairs": runs,
        "median_p99_over_floor": median["p99_over_floor"],
        "aiohttp_floor": median["floor"],
        "recsched": median["recsched"],
    }


def ratio(base: float, ours: float) -> float:
    return (
        round(base / ours, 1)
        if ours and not math.isnan(base) and not math.isnan(ours)
        else math.nan
    )


def targets(r: Result) -> list[Result]:
    """(name, value, limit, pass) for every target of issue 7 that this run measured."""
    rows: list[Result] = []

    def add(name: str, value: float, limit: float, ok: bool | None = None) -> None:
        passed = (value <= limit) if ok is None else ok
        rows.append(
            {
                "target": name,
                "value": value,
                "limit": limit,
                "pass": bool(passed) and not math.isnan(value),
            }
        )

    if "precision" in r:
        add("precision p99 lateness (ms) <= 20", r["precision"]["recsched"]["p99_ms"], 20)
    b = r.get("burst", {}).get("1000")
    if b:
        ours = b["recsched"]
        add("burst 1000: last call after the instant (s) <= 1", ours["last_arrival_s"], 1)
        add("burst 1000: all calls arrived, none rejected", ours["missing"] + ours["rejected"], 0)
        if "apscheduler" in b:
            x = ratio(b["apscheduler"]["p99_ms"], ours["p99_ms"])
            add("burst 1000: p99 >= 5x better than APScheduler+requests (x)", x, 5, x >= 5)
        if "aiohttp_floor" in b and "burst_pairs" not in r:  # --quick: the one pair there is
            x = round(ours["p99_ms"] / b["aiohttp_floor"]["p99_ms"], 2)
            add("burst 1000: p99 <= 1.5x the aiohttp floor's (x)", x, 1.5)
    pairs = r.get("burst_pairs")
    if pairs:
        x = pairs["median_p99_over_floor"]
        add("burst 1000: p99 <= 1.5x the aiohttp floor's, median pair (x)", x, 1.5)
    s = r.get("scale")
    if s:
        add("10k recordings: check (s) <= 2", s["cli"]["check_s"], 2)
        add(
            "10k recordings: check <= 1.5x the CSafeLoader load (x)",
            s["cli"]["check_over_load"],
            1.5,
        )
        add(
            "10k recordings: plan --hours 48 <= 1.5x the CSafeLoader load (x)",
            s["cli"]["plan_over_load"],
            1.5,
        )
        if "daemon" not in s:  # --cli-only
            return rows
        d = s["daemon"]
        add("10k recordings: start to ready (s) <= 5", d["ready_s"], 5)
        add("10k recordings: RSS after ready (MB) <= 150", d["rss_ready_mb"], 150)
        add("10k recordings: RSS growth after 10k calls (MB) <= 10", d["rss_growth_mb"], 10)
        f = d["firing"]
        add(
            "10k recordings: every fired call arrived, none refused",
            f["missing"] + f["rejected"],
            0,
        )
        check = s["cli"]["check_s"]
        for kind in ("reload_with_open_chunks", "reload_idle"):
            rl = d[kind]
            of_check = round(rl["reload_s"] / check, 2)
            add(
                f"10k recordings: {kind.replace('_', ' ')} <= 0.5x check, zero re-fired (x)",
                of_check,
                0.5,
                of_check <= 0.5
                and rl["refired"] == 0
                and 1 <= rl["changed"] + rl["added"] + rl["removed"] <= 8,
            )
    return rows


def table(r: Result) -> str:
    lines = []

    def row(label: str, x: Result | None, extra: str = "") -> None:
        if not x or "p50_ms" not in x:
            return
        lines.append(
            f"  {label:<34} {x['p50_ms']:>9.1f} {x['p99_ms']:>9.1f} {x['max_ms']:>9.1f}"
            f" {x.get('last_arrival_s', math.nan):>8.3f} "
            f"{x['missing'] + x['rejected']:>6}  {extra}"
        )
        problems(x)

    def problems(x: Result) -> None:
        """Why calls went wrong, when any did: the fake's refusals by reason, strangers."""
        for reason, n in sorted(x.get("rejected_reasons", {}).items(), key=lambda kv: -kv[1]):
            lines.append(f"      refused by the fake: {n} x {reason}")
        if x.get("unexpected"):
            lines.append(f"      {x['unexpected']} call(s) at the fake not in the workload")

    head = f"  {'':<34} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'last s':>8} {'errors':>6}"
    if "precision" in r:
        p = r["precision"]
        lines += ["PRECISION: " + p["workload"] + " (lateness at the fake)", head]
        row("recsched", p["recsched"])
        for name in ("curl", "apscheduler"):
            if name in p:
                row(
                    f"baseline {name}",
                    p[name],
                    f"recsched p99 {ratio(p[name]['p99_ms'], p['recsched']['p99_ms'])}x better",
                )
        g = p["cron_granularity"]
        lines.append(
            f"  cron's minute granularity alone: p50 {g['p50_ms'] / 1000:.1f} s, "
            f"p99 {g['p99_ms'] / 1000:.1f} s, max {g['max_ms'] / 1000:.1f} s"
        )
    for n, b in r.get("burst", {}).items():
        lines += [f"BURST {n}: {n} calls due at the same second", head]
        row("recsched, no limit", b["recsched"])
        rate = b.get("recsched_rate20", {})
        if "skipped" in rate:
            lines.append(f"  recsched, rate 20/s: skipped ({rate['skipped']})")
        else:
            row("recsched, rate 20/s", rate, f"expected spread ~{rate.get('expected_spread_s')} s")
        if "aiohttp_floor" in b:
            floor = b["aiohttp_floor"]
            row(
                "floor: one aiohttp session",
                floor,
                f"recsched p99 {round(b['recsched']['p99_ms'] / floor['p99_ms'], 2)}x the floor's",
            )
        for name in ("curl", "apscheduler"):
            if name in b:
                row(
                    f"baseline {name}",
                    b[name],
                    f"recsched p99 {ratio(b[name]['p99_ms'], b['recsched']['p99_ms'])}x better"
                    f" (counting dropped calls: p99 {b[name].get('p99_all_ms')} ms vs "
                    f"{b['recsched'].get('p99_all_ms')} ms); own report "
                    f"{b[name].get('own_report')}",
                )
    if "burst_pairs" in r:
        bp = r["burst_pairs"]
        lines += ["BURST 1000, floor and recsched alternately (pairs by ratio)", head]
        for index, pair in enumerate(bp["pairs"], 1):
            row(f"pair {index}: floor", pair["floor"])
            row(f"pair {index}: recsched", pair["recsched"], f"p99 {pair['p99_over_floor']}x")
        lines.append(f"  median pair: recsched p99 {bp['median_p99_over_floor']}x the floor's")
    if "scale" in r:
        c = r["scale"]["cli"]
        lines += [
            f"SCALE: {c['recordings']} recordings ({c['planned_calls_48h']} calls in 48 h, "
            f"{c['file_bytes'] / 1e6:.1f} MB of YAML)",
            f"  check {c['check_s']} s, plan --hours 48 {c['plan_s']} s (median of "
            f"{len(c['check_runs_s'])})",
            f"  floor: CSafeLoader load of the same file {c['csafe_load_s']} s; check "
            f"{c['check_over_load']}x, plan {c['plan_over_load']}x that load",
        ]
    if "daemon" in r.get("scale", {}):
        d = r["scale"]["daemon"]
        lines += [
            f"  daemon: ready {d['ready_s']} s, RSS ready {d['rss_ready_mb']} MB, after "
            f"{d['calls_fired_expected']} calls {d['rss_after_calls_mb']} MB "
            f"(+{d['rss_growth_mb']}), after reloads {d['rss_after_reloads_mb']} MB",
        ]
        f = d["firing"]
        lines.append(
            f"  {d['calls_fired_expected']} calls fired: lateness p50 {f['p50_ms']} ms,"
            f" p99 {f['p99_ms']} ms, max {f['max_ms']} ms, errors "
            f"{f['missing'] + f['rejected']}, duplicates {f['duplicates']}"
        )
        problems(f)
        for kind in ("reload_with_open_chunks", "reload_idle"):
            rl = d[kind]
            lines.append(
                f"  {kind.replace('_', ' ')}: {rl['reload_s']} s, added {rl['added']} "
                f"removed {rl['removed']} changed {rl['changed']} unchanged "
                f"{rl['unchanged']}, re-fired {rl['refired']}"
            )
    lines.append("TARGETS")
    for t in r["targets"]:
        lines.append(f"  {'PASS' if t['pass'] else 'MISS'}  {t['target']}: {t['value']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="bursts of 100 and 1,000 only")
    parser.add_argument("--skip", nargs="*", choices=SECTIONS, default=[])
    parser.add_argument(
        "--cli-only",
        action="store_true",
        help="only the 10,000-recording check / plan times and their CSafeLoader floor",
    )
    parser.add_argument(
        "--burst-only",
        type=int,
        metavar="PAIRS",
        help="only the 1,000-call burst: PAIRS runs of the aiohttp floor then recsched",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the run's directories under /var/tmp (configs, ledgers, daemon logs)",
    )
    args = parser.parse_args()
    baselines = {
        "curl": shutil.which("curl") is not None,
        "apscheduler": importlib.util.find_spec("requests") is not None,
    }
    if not baselines["apscheduler"]:
        print(
            f"requests is missing, so the APScheduler baseline is skipped; install it with:\n"
            f"  {sys.executable} -m pip install requests",
            file=sys.stderr,
        )
    if not baselines["curl"]:
        print(
            "curl is missing, so the curl baseline is skipped (apt-get install curl)",
            file=sys.stderr,
        )
    started = time.time()
    result: Result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "baselines": baselines,
        "bytecode": bytecode(),
    }
    fake = Fake()
    try:
        result["fake_capacity_rps"] = round(fake.capacity(2000))
        print(f"fake provider: {result['fake_capacity_rps']} requests/s (2,000 at once)")
        if args.burst_only:
            args.skip = SECTIONS
            result["burst_pairs"] = burst_pairs(fake, args.burst_only)
        if args.cli_only:
            args.skip = SECTIONS
            print("scale: check / plan …", flush=True)
            result["scale"] = {"cli": scale.cli_times(fake, runs=5)}
        if "precision" not in args.skip:
            result["precision"] = precision(fake, baselines)
        if "burst" not in args.skip:
            sizes = [100, 1000] if args.quick else [100, 1000, 5000]
            result["burst"] = burst(fake, sizes, baselines)
            if not args.quick:
                # the floor target from the median of pairs run back to back: one pair's ratio
                # moved from 0.87x to 1.61x for the same code in one run (docs/benchmarks.md)
                result["burst_pairs"] = burst_pairs(fake, FULL_RUN_PAIRS)
        if "scale" not in args.skip:
            print("scale: check / plan …", flush=True)
            result["scale"] = {"cli": scale.cli_times(fake, runs=3)}
            print("scale: daemon …", flush=True)
            result["scale"]["daemon"] = scale.daemon_run(fake)
    finally:
        fake.stop()
        if args.keep:
            print("directories kept:", *map(str, WORKDIRS), sep="\n  ")
        else:
            for directory in WORKDIRS:
                shutil.rmtree(directory, ignore_errors=True)
    result["targets"] = targets(result)
    result["duration_s"] = round(time.time() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2, default=str))
    print()
    print(table(result))
    print(f"\n{result['duration_s']} s; results in {RESULTS / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
