"""A real `recsched run` process for tests: its JSON log lines, read as they arrive.

Starting one costs about 1.4 s before its first line, nearly all of it importing aiohttp,
SQLAlchemy, APScheduler and structlog; on a busy machine several times that. A test whose
daemon must be up before a window a few seconds away (or back up inside a chunk after a kill)
would then depend on how busy the machine is. So each process is started ahead of its test,
as a launcher (`_LAUNCHER`) that does those imports and waits: DaemonProcess.start hands it the
command line, environment and directory and it runs `scheduler.cli.console()`, the function
`python -m scheduler` runs, with them. From there on it is the same process, code and
arguments as `python -m scheduler run -c FILE` (tests/test_e2e.py starts that cold, as is).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import scheduler
from tests.conftest import LVB_KEY
from tests.output_sink import record_output

Event = dict[str, Any]
#: Every daemon started by a test; conftest kills those a failing test left running.
RUNNING: set[Process] = set()
#: How many daemons were started in this process so far.
STARTED = 0

#: Runs in the launcher: the daemon's imports, a byte on the ready pipe (its fd is argv[1]),
#: then one request on stdin, then the daemon.
_LAUNCHER = """
import json, os, sys, time
import scheduler.cli, scheduler.daemon  # what `run` imports, before it is asked to run
os.write(int(sys.argv[1]), b"1")
os.close(int(sys.argv[1]))
request = json.loads(sys.stdin.readline() or "null")
if request is None:
    sys.exit(0)  # not needed after all
null = os.open(os.devnull, os.O_RDONLY)  # stdin as `python -m scheduler` would have it
os.dup2(null, 0)
os.close(null)
os.chdir(request["cwd"])
os.environ.clear()
os.environ.update(request["env"])
time.tzset()
sys.argv = request["argv"]
scheduler.cli.console()
"""
#: sys.argv[0] as `python -m scheduler` sets it.
_MAIN = str(Path(scheduler.__file__).parent / "__main__.py")


class Launcher:
    """A Python process doing the daemon's imports, then waiting for its command line."""

    def __init__(self) -> None:
        ready_r, ready_w = os.pipe()
        self.popen = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(ready_w)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(ready_w,),
        )
        os.close(ready_w)
        self._ready_r: int | None = ready_r

    def wait_imported(self, timeout: float) -> None:
        """Block until the imports are done (or the launcher died: its start then fails
        loudly). Called outside any event loop (a fixture's set-up)."""
        if self._ready_r is not None:
            select.select([self._ready_r], [], [], timeout)

    def taken(self) -> None:
        """Its daemon is starting: the ready pipe is not needed any more."""
        if self._ready_r is not None:
            os.close(self._ready_r)
            self._ready_r = None

    def close(self) -> None:
        self.taken()
        self.popen.kill()
        self.popen.wait()
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


#: Launchers started and not yet used. A test takes at most two (a kill and a restart, or two
#: instances); with four, the two the test before it started have had the time to import.
_POOL: list[Launcher] = []
POOL_SIZE = 4
#: The most daemons one test starts.
PER_TEST = 2


def _take() -> Launcher:
    """A launcher that has done (or is doing) its imports, else a new one."""
    while _POOL:
        launcher = _POOL.pop(0)
        if launcher.popen.poll() is None:
            return launcher
        launcher.close()
    return Launcher()


def top_up(size: int = POOL_SIZE) -> None:
    """Start the launchers the next starts will take. conftest calls it once the run's tests
    are known (for the first test's daemons only: every worker does it at once) and after each
    test that took one, not while a test starts its daemons: their imports would compete with
    the daemons starting."""
    while len(_POOL) < size:
        _POOL.append(Launcher())


def warm() -> None:
    """Wait until the launchers this test's daemons will take have done their imports, so a
    window the test then sets a few seconds ahead is not eaten by them (conftest, before each
    test of a module that uses DaemonProcess)."""
    top_up()
    for launcher in _POOL[:PER_TEST]:
        launcher.wait_imported(timeout=120)


@atexit.register
def _close_pool() -> None:
    for launcher in _POOL:
        launcher.close()
    _POOL.clear()


class Process:
    """What the tests use of asyncio.subprocess.Process, for a process started before the
    event loop of the test that runs it: signals, the exit status, stdout and stderr."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.stdout = asyncio.StreamReader()
        self.stderr = asyncio.StreamReader()
        self._pipes: list[asyncio.BaseTransport] = []
        self._exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pidfd = os.pidfd_open(popen.pid)
        asyncio.get_running_loop().add_reader(self._pidfd, self._on_exit)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        for stream, reader in (
            (self._popen.stdout, self.stdout),
            (self._popen.stderr, self.stderr),
        ):
            assert stream is not None
            transport, _ = await loop.connect_read_pipe(
                lambda reader=reader: asyncio.StreamReaderProtocol(reader), stream
            )
            self._pipes.append(transport)

    def _on_exit(self) -> None:
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._popen.wait()  # exited: reaps it at once
        if not self._exited.done():
            self._exited.set_result(None)

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def send_signal(self, sig: int) -> None:
        self._popen.send_signal(sig)

    def kill(self) -> None:
        self._popen.kill()

    async def wait(self) -> int:
        await asyncio.shield(self._exited)
        code = self._popen.returncode
        assert code is not None
        return code


class DaemonProcess:
    def __init__(self, process: Process) -> None:
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
        """`python -m scheduler run -c CONFIG ARGS` with $TZ and $LVB_KEY, in this directory
        and otherwise this environment."""
        global STARTED
        STARTED += 1
        launcher = _take()
        env = {**os.environ, "TZ": tz, "LVB_KEY": LVB_KEY}
        argv = [_MAIN, "run", "-c", str(config), *args]
        request = json.dumps({"argv": argv, "env": env, "cwd": os.getcwd()})
        stdin: IO[bytes] | None = launcher.popen.stdin
        assert stdin is not None
        stdin.write(request.encode() + b"\n")
        stdin.close()
        process = Process(launcher.popen)
        launcher.taken()
        await process.connect()
        return cls(process)

    async def _read(self) -> None:
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
        self.stderr = (await asyncio.wait_for(self.process.stderr.read(), timeout=30)).decode()
        record_output(self.stderr)
        code = await asyncio.wait_for(self.process.wait(), timeout=30)
        RUNNING.discard(self.process)
        await self._reader
        return code
