"""Created LIVE API 3.0 tasks the YAML no longer has: after each reload, once at start-up (after
recovery) and with each rolling re-plan, the ledger's open tasks are compared with the plan
(live_plan.reconcile) and the Deletes and Stops it decides become calls armed in the engine
beside the plan: sent by the dispatcher through the live sender like every call (claimed once
under their own key, `sent` before the request, `call.ok` / `call.failed`), so a restart or a
peer sharing the ledger never sends one twice. A Stop at a shortened window's new end is armed
until then; a later reload that no longer wants it disarms it (engine.apply).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from scheduler import live_plan
from scheduler.calls import Call
from scheduler.config import CST, Config
from scheduler.config_live import LiveProvider
from scheduler.ledger import FINAL, Ledger
from scheduler.logs import get_logger
from scheduler.providers import live as live_api

log = get_logger("recsched.live")
#: Plans the config from now up to an instant (a longer horizon than the daemon's, when a task
#: was created further ahead than the horizon reaches).
PlanUntil = Callable[[datetime], Awaitable[list[Call]]]


async def follow_ups(
    config: Config, ledger: Ledger, planned: list[Call], now: datetime, plan_until: PlanUntil
) -> list[Call]:
    """The Delete / Stop calls the open tasks need against `planned` (the plan of `config` at
    `now`); those the ledger shows settled already are left out."""
    live = {name for name, p in config.providers.items() if isinstance(p, LiveProvider)}
    entries = await ledger.open_tasks(live_plan.TASK_ACTIONS, now)
    if not entries:
        return []
    creates = [e for e in entries if e.action == live_api.CREATE]
    orphans = [e for e in creates if e.provider not in live]
    for e in orphans:
        log.error(
            "recording.task_orphaned",
            recording=e.recording,
            provider=e.provider,
            task_id=e.task_id,
            until=e.span_end.astimezone(CST).isoformat(),
            message="its live provider is no longer in the config: the task cannot be stopped "
            "from here; stop it in the console",
        )
    entries = [e for e in entries if e.provider in live]
    reach = max((e.span_start for e in creates if e.provider in live), default=now)
    horizon_end = now + config.daemon.horizon
    if reach >= horizon_end:  # a task created beyond the horizon: plan as far as it starts
        planned = await plan_until(reach + timedelta(seconds=1))
    calls: list[Call] = []
    for decision in live_plan.reconcile(entries, planned, now):
        call = live_plan.follow_up_call(decision)
        done = await ledger.get(call.key)
        if done is not None and done.state in FINAL:
            continue
        if done is None:
            log.warning(
                "recording.task_cut",
                recording=call.recording,
                provider=call.provider,
                action=call.action,
                task_id=decision.entry.task_id,
                at=call.at.astimezone(CST).isoformat(),
                call_key=call.key,
                message=f"{decision.reason}: the created task is "
                + ("deleted" if call.action == live_api.DELETE else "stopped"),
            )
        calls.append(call)
    return calls
