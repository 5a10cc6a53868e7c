"""The only module that touches APScheduler: it turns planned calls into timers.

APScheduler 3.11 is used as a timer and nothing more (APScheduler 3.11 user guide,
apscheduler.readthedocs.io/en/3.x): `AsyncIOScheduler` with an in-memory store, every trigger in
an explicit zone, no misfire deadline of its own (the dispatcher decides late vs missed from the
chunk's end), and a job that only spawns our own tracked task, so APScheduler's
cancel-on-shutdown never cuts a provider call in half. Re-applying a plan never re-adds a key
this engine has seen (APScheduler would fire a re-added date job again), and the ledger refuses
a second send anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.date import DateTrigger

from scheduler.calls import Call, WebCall
from scheduler.config import CST
from scheduler.coverage import TASK_ACTIONS, log_window_closed
from scheduler.dispatch import Dispatcher
from scheduler.logs import get_logger

log = get_logger("recsched.engine")
#: How often the scheduler re-reads the wall clock. APScheduler sleeps on the monotonic clock,
#: so after a wall-clock step or a suspend a timer could fire late by up to this much.
HEARTBEAT_SECONDS = 15.0
#: How long before its instant a call leaves its timer for the dispatcher (when the service
#: asks for it): the dispatcher claims it durably at once and sends it at the instant. A burst's
#: claims commit, and APScheduler's firing of its jobs, then lie before the instant instead of
#: between it and the requests (docs/benchmarks.md). The price: a reload applied within this
#: last second before a call's instant no longer holds that call back. A choice, not a Tencent
#: fact: one constant to change.
STAGE_LEAD = timedelta(seconds=1)


@dataclass(frozen=True)
class Diff:
    """What a reload changed: counts of calls, and fired calls still recording that the new
    config no longer plans (their tasks run to their end: a reload never cuts a recording)."""

    added: int
    removed: int
    changed: int
    unchanged: int
    kept_live: list[Call]


#: Web calls that end a started task or report its result: a reload that drops the recording
#: keeps them, or the recorder would run (paid) until its MaxDurationLimit.
FINISHES_A_TASK = frozenset({"Stop", "Describe"})


def _records(call: Call, now: datetime) -> bool:
    """The task this call created is recording at `now` (a web task's Pause, Stop or Describe
    creates none)."""
    return call.action in TASK_ACTIONS and call.start <= now < call.deadline


def _window_id(call: Call) -> str:
    return f"window:{call.recording}/{call.window_start.astimezone(CST).isoformat()}"


def _job_function(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """`method` as a plain coroutine function that carries its signature.

    APScheduler checks every new job's arguments with `inspect.signature(func)`; for a bound
    method that is rebuilt on each add_job and costs more than the rest of add_job together
    (10,000 recordings: ~35,000 jobs). A function with `__signature__` is answered at once."""

    async def job(*args: Any) -> None:
        await method(*args)

    job.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    return job


class Engine:
    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
        lead: timedelta = timedelta(0),
    ) -> None:
        self.dispatcher = dispatcher
        #: Calls are handed to the dispatcher this long before their instant (STAGE_LEAD).
        self.lead = lead
        self._scheduler = AsyncIOScheduler(
            timezone=CST,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._known: dict[str, datetime] = {}  # call key -> deadline, for every call taken on
        self._armed: dict[str, Call] = {}  # calls whose timer has not fired yet
        self._fired: dict[str, Call] = {}  # calls handed to the dispatcher (until window end)
        #: window id -> (recording, start, end) of each window whose window.closed is armed
        self._windows: dict[str, tuple[str, datetime, datetime]] = {}
        self._inflight: set[asyncio.Task[object]] = set()
        self._heartbeat = heartbeat
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._accepting = True
        self._due_job = _job_function(self._due)
        self._close_window_job = _job_function(self._close_window)

    def start(self) -> None:
        self._scheduler.start()
        self._heartbeat_task = asyncio.create_task(self._beat(), name="recsched-heartbeat")

    def schedule(self, calls: Iterable[Call], now: datetime) -> int:
        """Arm a timer for each call not seen before; fire at once those already due.
        Returns how many calls were newly taken on."""
        self._known = {key: end for key, end in self._known.items() if end > now}
        self._fired = {key: c for key, c in self._fired.items() if c.window_end > now}
        self._windows = {key: w for key, w in self._windows.items() if w[2] > now}
        # APScheduler wakes itself up (re-scanning every job store) after each job added to a
        # running scheduler; paused, it does so once, on resume, for the whole batch.
        bulk = self._scheduler.state == STATE_RUNNING
        if bulk:
            self._scheduler.pause()
        try:
            return self._add(calls, now)
        finally:
            if bulk:
                self._scheduler.resume()

    def _add(self, calls: Iterable[Call], now: datetime) -> int:
        added = 0
        for call in calls:
            if call.key in self._known or not self._accepting:
                continue
            self._arm_window_close(call)
            self._known[call.key] = call.deadline
            added += 1
            if call.at - self.lead <= now:
                self._spawn(call)
            else:
                self._armed[call.key] = call
                self._scheduler.add_job(
                    self._due_job,
                    DateTrigger(run_date=call.at - self.lead, timezone=CST),
                    args=[call],
                    id=call.key,
                    name=call.key,
                    replace_existing=True,
                )
        return added

    def apply(self, calls: list[Call], now: datetime) -> Diff:
        """Make the armed timers match a new full plan (a config reload).

        Unchanged calls keep their timers; armed calls no longer planned are cancelled; an armed
        call whose details changed under the same key is re-armed; calls already fired are
        left alone (the ledger would refuse to send them again anyway)."""
        wanted = {call.key: call for call in calls}
        removed = changed = 0
        for key, armed in list(self._armed.items()):
            new = wanted.get(key)
            if new is armed or new == armed:  # the planner hands back unchanged calls as they were
                continue
            if (
                key not in wanted
                and isinstance(armed, WebCall)
                and armed.action in FINISHES_A_TASK
                and armed.needs in self._fired
            ):
                continue  # its task is recording (and billed): still stop it, still report it
            self._scheduler.remove_job(key)
            del self._armed[key], self._known[key]
            if key in wanted:
                changed += 1
            else:
                removed += 1
        unchanged = sum(key in self._known for key in wanted)
        # Windows by (recording, start), not by id: writing the ids of 25,000 calls took more
        # than half of a large reload's apply (0.09 s -> 0.04 s with the `is` test above).
        keep = {(c.recording, c.window_start) for c in calls}
        keep.update((c.recording, c.window_start) for c in self._fired.values())
        gone = [w for w, (name, start, _) in self._windows.items() if (name, start) not in keep]
        for window in gone:
            self._scheduler.remove_job(window)
            del self._windows[window]
        added = self.schedule(calls, now) - changed
        live = [c for c in self._fired.values() if c.key not in wanted and _records(c, now)]
        return Diff(added, removed, changed, unchanged, live)

    def _arm_window_close(self, call: Call) -> None:
        window = _window_id(call)
        if window in self._windows:
            return
        self._windows[window] = (call.recording, call.window_start, call.window_end)
        self._scheduler.add_job(
            self._close_window_job,
            DateTrigger(run_date=call.window_end, timezone=CST),
            args=[call.recording, call.window_start, call.window_end],
            id=window,
            name=window,
            replace_existing=True,
        )

    async def _close_window(self, recording: str, start: datetime, end: datetime) -> None:
        structlog.contextvars.clear_contextvars()
        try:
            log_window_closed(
                recording, start, end, await self.dispatcher.ledger.window(recording, start)
            )
        except Exception:
            log.exception("window.crashed", recording=recording)

    def active(self, now: datetime) -> int:
        """Calls fired by this process whose span is being recorded now."""
        return sum(_records(c, now) for c in self._fired.values())

    def in_flight(self) -> int:
        return len(self._inflight)

    def pending(self) -> int:
        """Calls armed and not yet handed to the dispatcher."""
        return len(self._armed)

    def next_at(self) -> datetime | None:
        """The instant of the next armed call (its timer fires `lead` before it)."""
        return min((call.at for call in self._armed.values()), default=None)

    async def _due(self, call: Call) -> None:
        self._armed.pop(call.key, None)
        self._spawn(call)

    def _spawn(self, call: Call) -> None:
        if not self._accepting:
            return
        self._fired[call.key] = call
        task: asyncio.Task[object] = asyncio.create_task(self._fire(call), name=call.key)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _fire(self, call: Call) -> object:
        structlog.contextvars.clear_contextvars()  # tasks inherit the creator's context
        try:
            return await self.dispatcher.fire(call, early=self.lead > timedelta(0))
        except Exception:  # a bug must not kill the daemon or the other calls
            log.exception("call.crashed", call_key=call.key)
            return None

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            self._scheduler.wakeup()

    def abort(self) -> None:
        """Cancel every in-flight call now (second SIGTERM)."""
        self._accepting = False
        for task in self._inflight:
            task.cancel()

    async def stop(self, timeout: float) -> int:  # noqa: ASYNC109 (a drain bound)
        """Take no new calls, let in-flight ones finish for up to `timeout` seconds, then
        cancel the rest. Returns how many had to be cancelled."""
        self._accepting = False
        self.dispatcher.stop_polling()
        if self._heartbeat_task:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if not self._inflight:
            return 0
        log.info("daemon.draining", in_flight=len(self._inflight), timeout_s=timeout)
        _, pending = await asyncio.wait(set(self._inflight), timeout=timeout)
        for task in pending:
            task.cancel()
            log.error("call.abandoned", call_key=task.get_name(), reason="shutdown")
        if pending:
            await asyncio.wait(pending)
        return len(pending)
