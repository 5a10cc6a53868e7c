"""Hot reload: SIGHUP (or a watched file change) re-reads the YAML and applies only the diff.

Invalid file: `config.rejected` with every problem (file:line:col: key path: message), and the
running schedule is untouched. Valid file: plan it, diff by idempotency key against the armed
timers (engine.apply, one synchronous step so no timer fires half-way), swap the config, log
`config.reloaded` with the counts. A recording that is live and removed or changed keeps its
running task until that task's end (`recording.kept_running`). Signals that arrive during a
reload are coalesced into one more reload.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from scheduler.config import CST, Config, load_config
from scheduler.dispatch import Dispatcher
from scheduler.engine import Engine
from scheduler.errors import ConfigError
from scheduler.logs import get_logger
from scheduler.planner import plan

log = get_logger("recsched.config")
#: `daemon.watch: true`: how often the file is checked; a change is applied once the file has
#: stayed the same for one more interval (editors write in several steps).
WATCH_SECONDS = 1.0


class Reloader:
    def __init__(
        self,
        config: Config,
        engine: Engine,
        dispatcher: Dispatcher,
        *,
        clock: Callable[[], datetime],
        on_start: Callable[[], None] | None = None,
        on_result: Callable[[bool, Config], None] | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.dispatcher = dispatcher
        self.clock = clock
        self.on_start = on_start
        self.on_result = on_result
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def request(self) -> None:
        """Ask for a reload (signal handler); coalesced while one is running."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._run(), name="recsched-reload")

    async def _run(self) -> None:
        while True:
            self._again = False
            self.reload_once()
            if not self._again:
                return
            await asyncio.sleep(0)

    def reload_once(self) -> bool:
        """Re-read the file and apply it (or reject it). The cyclic garbage collector is paused
        meanwhile: with a large schedule the daemon holds about a million objects, and each
        full collection triggered by the new plan's allocations scans them all (0.25 s each)."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._reload_once()
        finally:
            if enabled:
                gc.enable()

    def _reload_once(self) -> bool:
        if self.on_start is not None:
            self.on_start()
        old = self.config
        try:
            new = load_config(old.file)
        except ConfigError as exc:
            log.error(
                "config.rejected",
                file=old.file,
                problems=[str(p) for p in exc.problems],
                kept_config_hash=old.config_hash[:12],
                message="the running schedule is unchanged",
            )
            self._report(False, old)
            return False
        for warning in new.warnings:
            log.warning("config.warning", message=warning)
        if new.state != old.state:
            log.warning("config.restart_needed", key="state", message="takes effect on restart")
        now = self.clock()
        diff = self.engine.apply(plan(new, now), now)
        self.dispatcher.use(new)
        self.config = new
        log.info(
            "config.reloaded",
            file=new.file,
            config_hash=new.config_hash[:12],
            previous_hash=old.config_hash[:12],
            added=diff.added,
            removed=diff.removed,
            changed=diff.changed,
            unchanged=diff.unchanged,
        )
        for call in diff.kept_live:
            log.warning(
                "recording.kept_running",
                recording=call.recording,
                channel_id=call.param("Param.s.channel_id"),
                chunk=f"{call.chunk}/{call.chunks}",
                until=call.deadline.astimezone(CST).isoformat(),
                message="removed or changed by the reload; its running task is not cut short",
            )
        self._report(True, new)
        return True

    def _report(self, ok: bool, config: Config) -> None:
        if self.on_result is not None:
            self.on_result(ok, config)

    async def watch(self) -> None:
        """Reload when the file's content differs from what was loaded and has stayed the same
        for WATCH_SECONDS. Comparing with the loaded content (not with a first look at the file)
        means an edit made while the daemon was starting is not missed."""
        seen: tuple[int, int, int] | None = None
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            current = _signature(self.config.file)
            if current == seen:
                continue
            if _digest(self.config.file) == self.config.config_hash:
                seen = current  # touched, or edited back: nothing to apply
                continue
            await asyncio.sleep(WATCH_SECONDS)
            if _signature(self.config.file) != current:
                continue  # still being written; look again next round
            seen = current  # a rejected file is not retried until it changes again
            log.info("config.changed", file=self.config.file)
            self.request()


def _digest(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)
