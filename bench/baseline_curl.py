"""Baseline (a): one `curl` process per call, started at the call's instant, as a crontab does.

cron itself only starts jobs at whole minutes (its own granularity is reported separately by
bench/run.py); here a plain Python timer loop stands in for cron's loop so that sub-second
instants can be compared: sleep until the instant, then fork/exec curl. The URLs are signed
beforehand (a crontab line cannot sign, a wrapper script would), so only process start-up and
the request itself are measured.

    LVB_KEY=... python bench/baseline_curl.py WORKLOAD.json

WORKLOAD.json as for baseline_apscheduler.py. Prints {"launched", "failed"} as one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

KEY = os.environ["LVB_KEY"]


def main() -> None:
    workload = json.loads(Path(sys.argv[1]).read_text())
    shots = sorted(workload["shots"])
    t = int(max(s[0] for s in shots)) + 120  # valid until two minutes after the last instant
    sign = hashlib.md5(f"{KEY}{t}".encode()).hexdigest()
    planned = []
    for at, channel, start, end, sub_type in shots:
        query = urlencode(
            {
                "appid": workload["appid"],
                "interface": "Live_Tape_Start",
                "t": t,
                "sign": sign,
                "Param.s.channel_id": channel,
                "Param.s.start_time": start,
                "Param.s.end_time": end,
                "Param.n.task_sub_type": sub_type,
            }
        )
        planned.append((at, f"{workload['url']}?{query}"))
    processes = []
    for at, url in planned:
        delay = at - time.time()
        if delay > 0:
            time.sleep(delay)
        processes.append(
            subprocess.Popen(
                ["curl", "-s", "-o", "/dev/null", "--noproxy", "*", "--max-time", "10", url]
            )
        )
    failed = sum(p.wait() != 0 for p in processes)
    print(json.dumps({"launched": len(processes), "failed": failed}))


if __name__ == "__main__":
    main()
