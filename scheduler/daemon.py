"""Lifecycle of the running daemon: start, keep the rolling plan armed, stop cleanly.

SIGTERM/SIGINT: take no new calls, let in-flight calls finish (bounded by
`daemon.shutdown_timeout`), exit 0. A second signal cancels what is still in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from datetime import datetime

from scheduler import __version__
from scheduler.config import CST, Config
from scheduler.dispatch import Dispatcher, wall_clock
from scheduler.engine import Engine
from scheduler.ledger import Ledger, MemoryLedger
from scheduler.logs import get_logger
from scheduler.planner import plan
from scheduler.transport import Transport

log = get_logger("recsched.daemon")


def _arm(engine: Engine, config: Config, now: datetime) -> int:
    return engine.schedule(plan(config, now), now)


def _summary(engine: Engine) -> dict[str, object]:
    next_at = engine.next_at()
    return {
        "pending": engine.pending(),
        "next_call_at": next_at.astimezone(CST).isoformat() if next_at else None,
    }


async def run(
    config: Config,
    *,
    dry_run: bool = False,
    clock: Callable[[], datetime] = wall_clock,
    ledger: Ledger | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run until `stop` is set or SIGTERM/SIGINT arrives; return the exit status."""
    stop = stop or asyncio.Event()
    log.info(
        "daemon.started",
        version=__version__,
        pid=os.getpid(),
        config=config.file,
        config_hash=config.config_hash[:12],
        dry_run=dry_run,
        recordings=len(config.recordings),
    )
    for warning in config.warnings:
        log.warning("config.warning", message=warning)
    transport = Transport()
    engine = Engine(
        Dispatcher(config, transport, ledger or MemoryLedger(), dry_run=dry_run, clock=clock)
    )
    engine.start()
    added = _arm(engine, config, clock())
    log.info(
        "plan.loaded",
        calls=added,
        horizon_h=config.daemon.horizon.total_seconds() / 3600,
        **_summary(engine),
    )
    signals: list[str] = []
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        signals.append(sig.name)
        if len(signals) == 1:
            stop.set()
        else:
            log.warning("daemon.forced", signal=sig.name)
            engine.abort()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)

    async def replan() -> None:
        while True:
            await asyncio.sleep(config.daemon.replan_every.total_seconds())
            added = _arm(engine, config, clock())
            log.info("plan.extended", calls=added, **_summary(engine))

    replanner = asyncio.create_task(replan(), name="recsched-replan")
    try:
        await stop.wait()
    finally:
        log.info("daemon.stopping", signal=signals[0] if signals else None, **_summary(engine))
        replanner.cancel()
        abandoned = await engine.stop(config.daemon.shutdown_timeout.total_seconds())
        await transport.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("daemon.stopped", abandoned=abandoned)
    return 0
