"""`recsched demo`: the daemon against a local stand-in of Tencent's LVB API, in one process.

It starts the fake provider on 127.0.0.1, writes a schedule whose real-time window begins a few
seconds from now, runs the real daemon on it, and stops once the window is over, so a newcomer
sees calls planned, sent, answered and logged without a Tencent account.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path

from scheduler import daemon
from scheduler.clock import wall_clock
from scheduler.config import CST, load_config
from scheduler.fakes.lvb import serve_forever
from scheduler.logs import get_logger

log = get_logger("recsched.demo")
KEY_VARIABLE = "RECSCHED_DEMO_KEY"

TEMPLATE = """\
# Written by `recsched demo`: one real-time window, cut into {chunks} chunks of {chunk}s.
timezone: Asia/Shanghai
providers:
  demo:
    type: lvb
    endpoint: {endpoint}     # the local fake provider
    appid: 1234
    key: ${{{variable}}}    # read from the environment, never written here
state:
  url: sqlite:///{folder}/state/recsched.db   # the demo's own ledger
recordings:
  - name: demo-show
    provider: demo
    channel_id: 8888_demo
    mode: realtime
    start: {start}
    duration: {duration}s
    chunk: {chunk}s
    file_format: mp4
"""


def _write_private(path: Path, text: str) -> None:
    """Write `path` readable by its owner only (0600, whatever the umask, also when it exists):
    the demo's own check warns about a config file every user can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text)


async def run_demo(*, chunk: int, chunks: int, lead: int, directory: str | None) -> int:
    os.environ.setdefault(KEY_VARIABLE, secrets.token_hex(16))
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[str] = loop.create_future()
    fake = asyncio.create_task(
        serve_forever("127.0.0.1", 0, 1234, os.environ[KEY_VARIABLE], ready=ready.set_result)
    )
    endpoint = await ready
    start = (wall_clock() + timedelta(seconds=lead)).astimezone(CST)
    folder = Path(directory or tempfile.mkdtemp(prefix="recsched-demo-"))
    path = folder / "demo.yaml"
    _write_private(
        path,
        TEMPLATE.format(
            chunks=chunks,
            chunk=chunk,
            folder=folder,
            endpoint=endpoint,
            variable=KEY_VARIABLE,
            start=start.strftime("%Y-%m-%d %H:%M:%S"),
            duration=chunk * chunks,
        ),
    )
    log.info(
        "demo.config_written",
        path=str(path),
        window_start=start.isoformat(),
        chunks=chunks,
        chunk_s=chunk,
    )
    config = load_config(path)
    stop = asyncio.Event()
    window_over = (
        start.replace(microsecond=0) + timedelta(seconds=chunk * chunks + 1)
    ) - wall_clock()
    loop.call_later(max(window_over.total_seconds(), 0), stop.set)
    try:
        return await daemon.run(config, stop=stop)
    finally:
        fake.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fake
