"""The running daemon's parts, wired together: timers, dispatcher, reload, systemd, HTTP.

`Service.start()` arms the first plan and tells systemd READY=1 (with a one-line STATUS);
background tasks extend the plan, record the heartbeat, ping the systemd watchdog from the
event loop (a blocked loop stops the pings and systemd restarts the unit), refresh STATUS and,
if configured, watch the file. A reload is framed by RELOADING=1 … READY=1 whether the file is
applied or rejected. `stop()` says STOPPING=1 and drains in-flight calls.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from scheduler import __version__, heap
from scheduler.config import CST, Config
from scheduler.control import ControlServer
from scheduler.dispatch import Dispatcher
from scheduler.engine import STAGE_LEAD, Engine
from scheduler.http_api import HttpApi
from scheduler.ledger import Ledger
from scheduler.logs import get_logger
from scheduler.metrics import Metrics
from scheduler.notify import Notifier
from scheduler.paths import control_socket
from scheduler.planner import plan
from scheduler.provider_senders import provider_senders
from scheduler.providers import live as live_api
from scheduler.providers import lvb
from scheduler.providers import web as web_api
from scheduler.reload import Reloader
from scheduler.transport import Transport
from scheduler.web_sender import WebSender

log = get_logger("recsched.daemon")
HEARTBEAT_SECONDS = 15.0


def provider_actions(config: Config) -> dict[str, tuple[str, ...]]:
    """Each provider's plannable actions, for the metrics' series."""
    return {
        name: {"web": web_api.ACTIONS, "live": live_api.ACTIONS}.get(provider.type, lvb.ACTIONS)
        for name, provider in config.providers.items()
    }


class Service:
    def __init__(
        self, config: Config, ledger: Ledger, *, dry_run: bool, clock: Callable[[], datetime]
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.metrics = Metrics(__version__)
        self.metrics.declare(provider_actions(config))
        self.notifier = Notifier()
        self.transport = Transport()
        self.dispatcher = Dispatcher(
            config,
            self.transport,
            ledger,
            senders=provider_senders,
            dry_run=dry_run,
            clock=clock,
            metrics=self.metrics,
        )
        # A shared ledger's claim is leased, and reserves the provider target on the database's
        # clock: claiming there a second early would hold leases longer and move the 3 s rule's
        # clock by as much. Calls are handed over early only with a single-owner ledger.
        lead = timedelta(0) if ledger.owner else STAGE_LEAD
        self.engine = Engine(self.dispatcher, lead=lead)
        self.reloader = Reloader(
            config,
            self.engine,
            self.dispatcher,
            clock=clock,
            on_start=self.notifier.reloading,
            on_result=self._reloaded,
        )
        self.plan_lock = self.reloader.plan_lock
        self.control = ControlServer(control_socket(os.environ), self.reloader.request)
        self.http: HttpApi | None = None
        self.ready = False
        self.stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def config(self) -> Config:
        return self.reloader.config

    async def start(self) -> None:
        self.engine.start()
        now = self.clock()
        calls = plan(self.config, now)
        calls += await self.reloader.follow_ups(self.config, calls, now)  # after recovery
        added = self.engine.schedule(calls, now)
        if self.config.http.listen:
            self.http = HttpApi(self.metrics, self.health, refresh=self.refresh)
            paths = ["/healthz", "/metrics"]
            web = self.dispatcher.senders["web"]
            if any(p.type == "web" for p in self.config.providers.values()):
                assert isinstance(web, WebSender)
                self.http.add_routes(web.routes())
                paths.append("/callbacks/web/…")
            bound = await self.http.start(self.config.http.listen)
            log.info("http.listening", listen=bound, paths=paths)
        await self.control.start()  # before READY=1: systemd may ask for a reload right after
        self.ready = True
        self.refresh()
        log.info(
            "plan.loaded",
            calls=added,
            horizon_h=self.config.daemon.horizon.total_seconds() / 3600,
            **self.summary(),
        )
        self.notifier.ready(self.status_line())
        self.settle_heap()
        self._spawn(self._replan(), self._heartbeat(), self.notifier.watchdog())
        if self.config.daemon.watch:
            self._spawn(self.reloader.watch())

    def _spawn(self, *coroutines: Coroutine[Any, Any, None]) -> None:
        for coroutine in coroutines:
            self._tasks.append(asyncio.create_task(coroutine))

    def summary(self) -> dict[str, object]:
        next_at = self.engine.next_at()
        return {
            "pending": self.engine.pending(),
            "next_call_at": next_at.astimezone(CST).isoformat() if next_at else None,
        }

    def status_line(self) -> str:
        next_at = self.engine.next_at()
        when = (
            f"next call {next_at.astimezone(CST):%Y-%m-%d %H:%M:%S} CST"
            if next_at
            else "no call planned"
        )
        return (
            f"{self.engine.pending()} call(s) armed, {when}, "
            f"{self.engine.active(self.clock())} recording now"
        )

    def refresh(self) -> None:
        """Bring the gauges up to date (before each /metrics answer and every heartbeat)."""
        self.metrics.set_pending_calls(self.engine.pending())
        self.metrics.set_next_call(self.engine.next_at())
        self.metrics.set_active_recordings(self.engine.active(self.clock()))
        self.metrics.store_healthy(self.ledger.healthy)
        self.metrics.set_ready(self.health()[0])

    def health(self) -> tuple[bool, str]:
        if self.stopping:
            return False, "stopping"
        if not self.ready:
            return False, "starting: the plan is not loaded yet"
        return True, "ok"

    def settle_heap(self) -> None:
        """After a plan is armed: heap.settle (no full collection may scan it mid-burst)."""
        next_at = self.engine.next_at()
        heap.settle(None if next_at is None else (next_at - self.clock()).total_seconds())

    def _reloaded(self, ok: bool, config: Config) -> None:
        self.settle_heap()
        self.metrics.config_reload(ok)
        if ok:
            self.metrics.declare(provider_actions(config))
        status = self.status_line()
        self.notifier.ready(status if ok else f"reload rejected, old schedule kept; {status}")

    async def _replan(self) -> None:
        while True:
            await asyncio.sleep(self.config.daemon.replan_every.total_seconds())
            now = self.clock()
            async with self.plan_lock:  # off the event loop, one plan at a time
                calls = await asyncio.to_thread(plan, self.config, now)
            calls += await self.reloader.follow_ups(self.config, calls, now)
            added = self.engine.schedule(calls, now)
            self.settle_heap()
            log.info("plan.extended", calls=added, **self.summary())
            await self.ledger.prune(now, self.config.state.retention)

    async def _heartbeat(self) -> None:
        while True:
            await self.ledger.heartbeat(self.clock())
            self.refresh()
            self.notifier.status(self.status_line())
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def stop(self, signal_name: str | None) -> int:
        """Take no new calls, let in-flight ones finish (bounded); return how many were cut."""
        self.stopping = True
        self.notifier.stopping(f"stopping: {self.engine.in_flight()} call(s) in flight")
        log.info("daemon.stopping", signal=signal_name, **self.summary())
        for task in self._tasks:
            task.cancel()
        abandoned = await self.engine.stop(self.config.daemon.shutdown_timeout.total_seconds())
        await self.control.stop()
        await self.transport.close()
        if self.http is not None:
            await self.http.stop()
        return abandoned
