"""Lifecycle of the running daemon: lock, ledger, recovery, the rolling plan, clean stop.

Start: take the state-directory lock, open the durable ledger, reconcile what happened while
the daemon was down (recovery.py), arm the plan. Run: extend the plan every `replan_every`,
record a heartbeat every 15 s, prune old ledger rows. SIGTERM/SIGINT: take no new calls, let
in-flight calls finish (bounded by `daemon.shutdown_timeout`), write the ledger, exit 0. A
second signal cancels what is still in flight; what was recorded stays recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from scheduler import __version__
from scheduler.clock import wall_clock
from scheduler.config import Config
from scheduler.durable import DurableLedger
from scheduler.ledger import Ledger, MemoryLedger
from scheduler.lock import StateLock
from scheduler.logs import get_logger
from scheduler.recovery import recover
from scheduler.service import Service
from scheduler.shared import SharedLedger, default_instance_id
from scheduler.store import StoreError, sqlite_path

log = get_logger("recsched.daemon")


@contextlib.asynccontextmanager
async def open_ledger(
    config: Config, *, dry_run: bool, clock: Callable[[], datetime]
) -> AsyncIterator[Ledger]:
    """The ledger for this run: memory for --dry-run (a preview must not mark calls as done),
    else the durable ledger, reconciled with what happened while the daemon was down."""
    if dry_run:
        yield MemoryLedger()
        return
    durable: DurableLedger | SharedLedger
    try:
        if config.state.shared:
            durable = await SharedLedger.open(
                config.state.url,
                owner=config.state.instance or default_instance_id(),
                lease=config.state.lease,
                config_hash=config.config_hash,
            )
            log.info("ledger.shared", url=_safe_url(config.state.url), instance=durable.owner)
        else:
            durable = await DurableLedger.open(config.state.url, clock())
    except StoreError as exc:
        if config.state.shared:
            raise  # without the shared ledger any call might be another instance's
        log.error(
            "store.error",
            url=config.state.url,
            message=str(exc),
            action="running without a durable ledger: calls sent before this start are "
            "unknown and a restart will not remember this run",
        )
        yield MemoryLedger()
        return
    durable.start()
    try:
        await recover(config, durable, clock())
        await durable.heartbeat(clock())  # from now on a crash is not mistaken for a first run
        await durable.prune(clock(), config.state.retention)
        yield durable
    finally:
        await durable.heartbeat(clock())
        await durable.close()


def _safe_url(url: str) -> str:
    """The URL without a password."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


async def run(
    config: Config,
    *,
    dry_run: bool = False,
    clock: Callable[[], datetime] = wall_clock,
    stop: asyncio.Event | None = None,
) -> int:
    """Run until `stop` is set or SIGTERM/SIGINT arrives; return the exit status.
    Raises AlreadyRunning when another daemon holds the state directory."""
    lock = (
        None if dry_run or config.state.shared else StateLock(sqlite_path(config.state.url).parent)
    )
    if lock is not None:
        lock.acquire()
    # SIGHUP during start-up would kill the process (Python's default); remember it instead.
    early_reload: list[bool] = []
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, early_reload.append, True)
    try:
        return await _run_locked(
            config,
            dry_run=dry_run,
            clock=clock,
            stop=stop or asyncio.Event(),
            early_reload=early_reload,
        )
    finally:
        if lock is not None:
            lock.release()


async def _run_locked(
    config: Config,
    *,
    dry_run: bool,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    early_reload: list[bool],
) -> int:
    log.info(
        "daemon.started",
        version=__version__,
        pid=os.getpid(),
        config=config.file,
        config_hash=config.config_hash[:12],
        dry_run=dry_run,
        recordings=len(config.recordings),
        ledger="memory (dry run)" if dry_run else config.state.url,
    )
    for warning in config.warnings:
        log.warning("config.warning", message=warning)
    async with open_ledger(config, dry_run=dry_run, clock=clock) as ledger:
        return await _serve(
            config, ledger, dry_run=dry_run, clock=clock, stop=stop, early_reload=early_reload
        )


async def _serve(
    config: Config,
    ledger: Ledger,
    *,
    dry_run: bool,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    early_reload: list[bool],
) -> int:
    service = Service(config, ledger, dry_run=dry_run, clock=clock)
    signals: list[str] = []
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        signals.append(sig.name)
        if len(signals) == 1:
            stop.set()
        else:
            log.warning("daemon.forced", signal=sig.name)
            service.engine.abort()

    # before start(): a SIGTERM while the plan is armed (or the heap settled after it) is a
    # clean stop once start() is done, not the default action's abrupt end (exit -15)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    await service.start()
    loop.add_signal_handler(signal.SIGHUP, service.reloader.request)
    if early_reload:
        service.reloader.request()  # a SIGHUP came while starting: the file may have changed
    try:
        await stop.wait()
    finally:
        abandoned = await service.stop(signals[0] if signals else None)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        log.info("daemon.stopped", abandoned=abandoned)
    return 0
