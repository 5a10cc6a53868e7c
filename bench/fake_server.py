"""The benchmark's fake provider: `scheduler.fakes.lvb.FakeLvb` in a process of its own.

Why a separate process: the bench process launches baselines, reads log files and parses
results; on a 2-core machine any of that work on the fake's event loop would delay the
handler and show up as lateness of the system under test. Here the loop does nothing but
answer requests. Arrival time is `FakeLvb.received[i].arrived_at` (time.time() when the
handler starts). Unlike `recsched fake-provider` it logs nothing per request (structlog +
redaction per line would make the fake slower than the daemon it measures).

    python bench/fake_server.py --port-file F      # writes the endpoint URL to F when ready
    GET  /bench/received?since=N   -> [[arrived_at, channel_id, start_time, ok, ret, error], ...]
                                      (error: why the fake refused it, '' if accepted; the
                                      fake never puts the key or a sign in it)
    GET  /bench/count              -> {"count": N}
    POST /bench/reset              -> forget everything received

`python bench/fake_server.py --probe URL --requests N` instead fires N concurrent GETs at a
running fake (its capacity check) and prints {"seconds": ..., "rate": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from aiohttp import ClientSession, TCPConnector, web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scheduler.fakes.lvb import FakeLvb


async def serve(port_file: Path, appid: int, key: str) -> None:
    fake = FakeLvb(appid=appid, key=key)

    async def received(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        rows = [
            [
                r.arrived_at,
                r.params.get("Param.s.channel_id", ""),
                r.params.get("Param.s.start_time", ""),
                r.ok,
                r.ret,
                r.error,
            ]
            for r in fake.received[since:]
        ]
        return web.json_response(rows)

    async def count(_: web.Request) -> web.Response:
        return web.json_response({"count": len(fake.received)})

    async def reset(_: web.Request) -> web.Response:
        fake.received.clear()
        fake.tasks.clear()
        return web.json_response({"count": 0})

    fake.app.router.add_get("/bench/received", received)
    fake.app.router.add_get("/bench/count", count)
    fake.app.router.add_post("/bench/reset", reset)
    url = await fake.start("127.0.0.1", 0)
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(url)
    tmp.rename(port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.stop()


async def probe(url: str, requests: int, appid: int, key: str) -> None:
    """Fire `requests` GETs at once (valid Live_Tape_Start calls) and time their answers."""
    import hashlib
    from datetime import datetime, timedelta, timezone
    from urllib.parse import urlencode

    cst = timezone(timedelta(hours=8))
    t = int(time.time()) + 120
    sign = hashlib.md5(f"{key}{t}".encode()).hexdigest()
    now = datetime.now(cst)
    fmt = "%Y-%m-%d %H:%M:%S"

    def one(i: int) -> str:
        return (
            url
            + "?"
            + urlencode(
                {
                    "appid": appid,
                    "interface": "Live_Tape_Start",
                    "t": t,
                    "sign": sign,
                    "Param.s.channel_id": f"probe_{i}",
                    "Param.s.start_time": now.strftime(fmt),
                    "Param.s.end_time": (now + timedelta(minutes=5)).strftime(fmt),
                    "Param.n.task_sub_type": "1",
                }
            )
        )

    urls = [one(i) for i in range(requests)]
    async with ClientSession(connector=TCPConnector(limit=1000)) as session:

        async def get(u: str) -> None:
            async with session.get(u) as response:
                await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(get(u) for u in urls))
        seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rate": requests / seconds}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", type=Path)
    parser.add_argument("--appid", type=int, default=1234)
    parser.add_argument("--probe", metavar="URL")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    key = os.environ["LVB_KEY"]
    if args.probe:
        asyncio.run(probe(args.probe, args.requests, args.appid, key))
    else:
        asyncio.run(serve(args.port_file, args.appid, key))


if __name__ == "__main__":
    main()
