"""Baseline (b): the quick script people write instead of recsched.

APScheduler 3's `BackgroundScheduler` with its defaults (a 10-thread pool, misfire grace time
1 s, in-memory store), one date job per call, and `requests.get` in the job. Nothing tuned:
this is the comparison point, not a straw man; it is what the README of APScheduler suggests.

    LVB_KEY=... python bench/baseline_apscheduler.py WORKLOAD.json

WORKLOAD.json: {"url": ..., "appid": ..., "shots": [[at, channel, start, end, sub_type], ...]}
(`at` in UNIX seconds). Prints one JSON line: {"submitted", "missed", "errors", "done"}.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
from apscheduler.schedulers.background import BackgroundScheduler

KEY = os.environ["LVB_KEY"]


def main() -> None:
    workload = json.loads(Path(sys.argv[1]).read_text())
    url, appid = workload["url"], workload["appid"]
    counts = {"submitted": 0, "missed": 0, "errors": 0, "done": 0}
    lock = threading.Lock()
    finished = threading.Event()
    total = len(workload["shots"])

    def fire(channel: str, start: str, end: str, sub_type: str) -> None:
        t = int(time.time()) + 60
        sign = hashlib.md5(f"{KEY}{t}".encode()).hexdigest()
        params = {
            "appid": appid,
            "interface": "Live_Tape_Start",
            "t": t,
            "sign": sign,
            "Param.s.channel_id": channel,
            "Param.s.start_time": start,
            "Param.s.end_time": end,
            "Param.n.task_sub_type": sub_type,
        }
        response = requests.get(url, params=params, timeout=10)
        if response.json().get("ret") != 0:
            raise RuntimeError(f"ret {response.json().get('ret')}")

    def listener(event: object) -> None:
        code = getattr(event, "code", 0)
        with lock:
            if code == EVENT_JOB_MISSED:
                counts["missed"] += 1
            elif code == EVENT_JOB_ERROR:
                counts["errors"] += 1
            else:
                counts["done"] += 1
            if counts["missed"] + counts["errors"] + counts["done"] >= total:
                finished.set()

    scheduler = BackgroundScheduler()
    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    for at, channel, start, end, sub_type in workload["shots"]:
        scheduler.add_job(
            fire,
            "date",
            run_date=datetime.fromtimestamp(at, UTC),
            args=[channel, start, end, sub_type],
        )
        counts["submitted"] += 1
    scheduler.start()
    last = max(shot[0] for shot in workload["shots"])
    finished.wait(timeout=max(0.0, last - time.time()) + 60)
    scheduler.shutdown(wait=True)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
