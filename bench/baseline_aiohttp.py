"""The floor: what our own stack can do at best. One aiohttp session (default connector: 100
connections, as recsched's transport.CONNECTIONS), every call of an instant gathered at that
instant, nothing else: no ledger, no scheduler, no logging. recsched's burst lateness is
reported as a multiple of this one's, measured in the same run against the same fake.

    LVB_KEY=... python bench/baseline_aiohttp.py WORKLOAD.json

WORKLOAD.json: {"url": ..., "appid": ..., "shots": [[at, channel, start, end, sub_type], ...]}
(`at` in UNIX seconds). Prints one JSON line: {"submitted", "errors", "done"}.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp

KEY = os.environ["LVB_KEY"]


async def main(workload: dict[str, Any]) -> None:
    url, appid = workload["url"], workload["appid"]
    by_instant: dict[float, list[list[str]]] = defaultdict(list)
    for at, *rest in workload["shots"]:
        by_instant[at].append(rest)
    counts = {"submitted": len(workload["shots"]), "errors": 0, "done": 0}
    async with aiohttp.ClientSession() as session:

        async def fire(channel: str, start: str, end: str, sub_type: str) -> None:
            t = int(time.time()) + 60
            params = {
                "appid": str(appid),
                "interface": "Live_Tape_Start",
                "t": str(t),
                "sign": hashlib.md5(f"{KEY}{t}".encode()).hexdigest(),
                "Param.s.channel_id": channel,
                "Param.s.start_time": start,
                "Param.s.end_time": end,
                "Param.n.task_sub_type": sub_type,
            }
            try:
                async with session.get(url, params=params) as response:
                    body = await response.json(content_type=None)
                ok = body.get("ret") == 0
            except (aiohttp.ClientError, ValueError):
                ok = False
            counts["done" if ok else "errors"] += 1

        async def instant(at: float, shots: list[list[str]]) -> None:
            await asyncio.sleep(max(0.0, at - time.time()))
            await asyncio.gather(*(fire(*shot) for shot in shots))

        await asyncio.gather(*(instant(at, shots) for at, shots in by_instant.items()))
    print(json.dumps(counts))


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
