"""Hot reload: SIGHUP (or a watched file change) re-reads the YAML and applies only the diff.

Invalid file: `config.rejected` with every problem (file:line:col: key path: message), and the
running schedule is untouched. Valid file: plan it, diff by idempotency key against the armed
timers (engine.apply, one synchronous step so no timer fires half-way), swap the config, log
`config.reloaded` with the counts. A recording that is live and removed or changed keeps its
running task until that task's end (`recording.kept_running`), except a LIVE API 3.0 task:
one not started yet is deleted, a running one stopped now or at its window's new end
(live_tasks.py; the Deletes and Stops are armed beside the plan). Signals that arrive during a
reload are coalesced into one more reload. `request()` returns a future that settles with the
outcome of a reload that began after the request (so `recsched reload`, the unit's ExecReload=,
can report what the daemon itself decided; see control.py).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from scheduler.calls import Call, LvbCall
from scheduler.config import CST, Config, load_config
from scheduler.dispatch import Dispatcher
from scheduler.engine import Engine
from scheduler.errors import ConfigError
from scheduler.live_tasks import follow_ups
from scheduler.logs import get_logger
from scheduler.planner import plan

log = get_logger("recsched.config")
#: `daemon.watch: true`: how often the file is checked; a change is applied once the file has
#: stayed the same for one more interval (editors write in several steps).
WATCH_SECONDS = 1.0


@dataclass(frozen=True)
class ReloadOutcome:
    """What one reload decided: applied (`ok`) or rejected, with one line per problem or one
    summary line of the applied diff."""

    ok: bool
    lines: tuple[str, ...]


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
        plan_lock: asyncio.Lock | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.dispatcher = dispatcher
        self.clock = clock
        self.on_start = on_start
        self.on_result = on_result
        #: Planning keeps memos shared by every plan() call, so plans are made one at a time:
        #: the daemon's periodic re-plan holds the same lock.
        self.plan_lock = plan_lock or asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._waiting: list[asyncio.Future[ReloadOutcome]] = []
        #: The Deletes and Stops of created live tasks last decided (kept if a reconciliation
        #: fails, so a failing ledger read does not disarm a Stop).
        self._follow_ups: list[Call] = []

    def request(self) -> asyncio.Future[ReloadOutcome]:
        """Ask for a reload (signal handler, control socket); coalesced while one is running.
        The future settles with the outcome of a reload that starts after this call: one
        already under way may have read the file before the edit being asked about."""
        waiter: asyncio.Future[ReloadOutcome] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        if self._task is not None and not self._task.done():
            self._again = True
            return waiter
        self._task = asyncio.create_task(self._run(), name="recsched-reload")
        return waiter

    async def _run(self) -> None:
        while True:
            self._again = False
            waiting, self._waiting = self._waiting, []
            outcome = await self.reload_once()
            for waiter in waiting:
                if not waiter.done():
                    waiter.set_result(outcome)
            if not self._again:
                return
            await asyncio.sleep(0)

    async def reload_once(self) -> ReloadOutcome:
        """Re-read the file and apply it (or reject it). Reading, validating and planning run
        in a worker thread, so timers, /healthz and the watchdog go on meanwhile (the YAML
        reader's bounds keep that work short); only the swap runs on the event loop. Whatever
        goes wrong, the reload ends in `config.reloaded` or `config.rejected`, and systemd
        hears READY=1 after RELOADING=1. The cyclic garbage collector is paused meanwhile:
        with a large schedule the daemon holds about a million objects, and each full
        collection triggered by the new plan's allocations scans them all (0.25 s each)."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            if self.on_start is not None:
                self.on_start()
            try:
                return await self._reload_once()
            except Exception as exc:  # a bug must not leave systemd "reloading"
                log.exception("config.reload_crashed", file=self.config.file)
                return self._reject((f"{self.config.file}: reload failed: {type(exc).__name__}",))
        finally:
            if enabled:
                gc.enable()

    async def _reload_once(self) -> ReloadOutcome:
        old = self.config
        now = self.clock()
        async with self.plan_lock:
            try:
                new, calls = await asyncio.to_thread(_read_and_plan, old, now)
            except ConfigError as exc:
                return self._reject(tuple(str(p) for p in exc.problems))
            except Exception as exc:  # a reader bug must not kill the reload (or its waiters)
                problem = f"{old.file}: cannot be loaded: {type(exc).__name__}: {exc}"
                return self._reject((problem,))
        for warning in new.warnings:
            log.warning("config.warning", message=warning)
        if new.state != old.state:
            log.warning("config.restart_needed", key="state", message="takes effect on restart")
        extra = await self.follow_ups(new, calls, now)
        diff = self.engine.apply(calls + extra, now)
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
        cut = {c.key.rsplit("/", 1)[0] for c in extra}
        for call in diff.kept_live:
            if call.key in cut:
                continue  # a live task being deleted or stopped: not kept running
            log.warning(
                "recording.kept_running",
                recording=call.recording,
                channel_id=call.param("Param.s.channel_id") if isinstance(call, LvbCall) else "",
                chunk=f"{call.chunk}/{call.chunks}",
                until=call.deadline.astimezone(CST).isoformat(),
                message="removed or changed by the reload; its running task is not cut short",
            )
        self._report(True, new)
        return ReloadOutcome(
            True,
            (
                f"{new.file}: reloaded (config {new.config_hash[:12]}): added {diff.added}, "
                f"removed {diff.removed}, changed {diff.changed}, unchanged {diff.unchanged}",
            ),
        )

    async def follow_ups(self, config: Config, calls: list[Call], now: datetime) -> list[Call]:
        """The Deletes and Stops that created live tasks need against `calls` (`config`'s
        plan at `now`); on a failure (the ledger unreadable) the last ones decided."""

        async def plan_until(until: datetime) -> list[Call]:
            async with self.plan_lock:
                return await asyncio.to_thread(plan, config, now, until - now)

        try:
            self._follow_ups = await follow_ups(
                config, self.dispatcher.ledger, calls, now, plan_until
            )
        except Exception as exc:
            log.error(
                "live.reconcile_failed",
                message=f"created tasks not compared with the plan: {type(exc).__name__}: {exc}",
            )
        return self._follow_ups

    def _reject(self, problems: tuple[str, ...]) -> ReloadOutcome:
        log.error(
            "config.rejected",
            file=self.config.file,
            problems=list(problems),
            kept_config_hash=self.config.config_hash[:12],
            message="the running schedule is unchanged",
        )
        self._report(False, self.config)
        return ReloadOutcome(False, problems)

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


def _read_and_plan(old: Config, now: datetime) -> tuple[Config, list[Call]]:
    """The worker thread's part of a reload: pure work, no event-loop state. Recordings whose
    text is unchanged since `old` was read are not read again (config_reuse.py)."""
    new = load_config(old.file, previous=old)
    return new, plan(new, now)


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
