"""A real `recsched run` process for tests: its JSON log lines, read as they arrive."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import LVB_KEY
from tests.output_sink import record_output

Event = dict[str, Any]
#: Every daemon started by a test; conftest kills those a failing test left running.
RUNNING: set[asyncio.subprocess.Process] = set()


class DaemonProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        RUNNING.add(process)
        self.lines: list[Event] = []
        self.stderr = ""
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, config: Path, *, tz: str = "UTC", args: tuple[str, ...] = ()
    ) -> DaemonProcess:
        env = {**os.environ, "TZ": tz, "LVB_KEY": LVB_KEY}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "scheduler",
            "run",
            "-c",
            str(config),
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            record_output(raw.decode())
            async with self._changed:
                self.lines.append(json.loads(raw))
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    def events(self, name: str) -> list[Event]:
        return [line for line in self.lines if line.get("event") == name]

    async def wait_for(
        self,
        name: str,
        where: Callable[[Event], bool] = lambda _: True,
        *,
        timeout: float = 20,  # noqa: ASYNC109
    ) -> Event:
        """The first line with event `name` matching `where`, waiting for it if need be."""

        def found() -> Event | None:
            return next((e for e in self.events(name) if where(e)), None)

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: found() is not None or self._reader.done())
        event = found()
        if event is None:
            await self._finish()
            raise AssertionError(f"daemon exited without {name}; stderr: {self.stderr}")
        return event

    async def kill(self) -> None:
        """SIGKILL: no cleanup, exactly like a power cut of the process."""
        self.process.kill()
        await self._finish()

    async def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return await self._finish()

    async def _finish(self) -> int:
        assert self.process.stderr is not None
        self.stderr = (await asyncio.wait_for(self.process.stderr.read(), timeout=30)).decode()
        record_output(self.stderr)
        code = await asyncio.wait_for(self.process.wait(), timeout=30)
        RUNNING.discard(self.process)
        await self._reader
        return code
