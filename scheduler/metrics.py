"""Prometheus metrics of one daemon, in a private registry (never prometheus_client's global).

A private `CollectorRegistry` per `Metrics` keeps two daemons in one process (tests) from
sharing counts; it carries its own `process_*` collector (CPU, memory, open files, start time).

Every series an alert reads exists from the first scrape, at 0 (`declare`: each provider, action
and outcome of the loaded config): `increase()` cannot see the first failure of a series
that appears with it.

Label values are bounded: provider names and action names from the config, and the final
ledger outcomes. Never pass a recording name, call key, channel id or URL as a label value.

Conventions:
- `recsched_next_call_timestamp_seconds` is NaN while no call is armed (also at start): a
  "next call is overdue" alert such as `recsched_next_call_timestamp_seconds < time() - 60`
  then stays quiet instead of seeing 1970. Use `recsched_pending_calls` to tell "nothing
  planned" apart.
- `recsched_store_healthy` is 0 until the daemon first reports on the store.
- prometheus_client also exports a `*_created` gauge next to each counter and histogram
  (standard; `PROMETHEUS_DISABLE_CREATED_SERIES=true` turns that off process-wide).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)

from scheduler.ledger import FINAL

#: The outcomes `call_outcome` accepts: the final ledger states.
OUTCOMES = frozenset(str(state) for state in FINAL)
#: Seconds a call went out after its scheduled time.
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RELOAD_RESULTS = ("success", "failure")


class Metrics:
    def __init__(self, version: str = "") -> None:
        self.registry = CollectorRegistry()
        #: Labelled series by (metric, label values), looked up once each: `labels()` checks
        #: and sorts its arguments under a lock (1.3-1.9 us, three times a call in a burst).
        self._series: dict[tuple[Any, ...], Any] = {}
        r = self.registry
        ProcessCollector(registry=r)
        Info("recsched_build", "The running recsched's version.", registry=r).info(
            {"version": version}
        )
        self._ready = Gauge(
            "recsched_ready",
            "1 once the plan is armed and until a stop begins (what /healthz answers 200 for).",
            registry=r,
        )
        self._calls = Counter(
            "recsched_calls",
            "Planned calls by final outcome (a ledger state).",
            ["provider", "action", "outcome"],
            registry=r,
        )
        self._lateness = Histogram(
            "recsched_call_lateness_seconds",
            "Seconds between a call's scheduled time and its first send (early counts as 0).",
            ["provider"],
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self._retries = Counter(
            "recsched_call_retries",
            "Retries of calls after a transient failure.",
            ["provider"],
            registry=r,
        )
        self._duplicates = Counter(
            "recsched_duplicates_suppressed",
            "Calls not sent because the same task was (possibly) already requested.",
            ["provider"],
            registry=r,
        )
        self._active = Gauge(
            "recsched_active_recordings",
            "Calls recording now: LVB chunks and web tasks whose span includes this moment.",
            registry=r,
        )
        self._next_call = Gauge(
            "recsched_next_call_timestamp_seconds",
            "UNIX time of the next armed call; NaN when none is armed.",
            registry=r,
        )
        self._next_call.set(math.nan)
        self._pending = Gauge(
            "recsched_pending_calls",
            "Calls armed and not yet due.",
            registry=r,
        )
        self._reloads = Counter(
            "recsched_config_reloads",
            "Configuration reloads by result.",
            ["result"],
            registry=r,
        )
        for result in RELOAD_RESULTS:
            self._reloads.labels(result=result)  # both series exist from the start
        self._reload_ok_at = Gauge(
            "recsched_config_last_reload_success_timestamp_seconds",
            "UNIX time of the last successful configuration reload; 0 before the first.",
            registry=r,
        )
        self._skew = Gauge(
            "recsched_clock_skew_seconds",
            "Provider Date header minus local time, in seconds (1 s resolution: +-1 s is noise).",
            ["provider"],
            registry=r,
        )
        self._store = Gauge(
            "recsched_store_healthy",
            "1 when the durable ledger store works, else 0.",
            registry=r,
        )

    def _child(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)` (values in the metric's label order), looked up once."""
        key = (metric, *values)
        child = self._series.get(key)
        if child is None:
            child = self._series[key] = metric.labels(*values)
        return child

    def declare(self, actions: Mapping[str, Iterable[str]]) -> None:
        """Create, at 0, every per-provider series for `actions` (provider -> its actions)."""
        for provider, names in actions.items():
            for action in names:
                for outcome in sorted(OUTCOMES):
                    self._calls.labels(provider=provider, action=action, outcome=outcome)
            self._lateness.labels(provider=provider)
            self._retries.labels(provider=provider)
            self._duplicates.labels(provider=provider)
            self._skew.labels(provider=provider)  # 0 until the provider's first answer

    def set_ready(self, ready: bool) -> None:
        self._ready.set(1 if ready else 0)

    def call_outcome(self, provider: str, action: str, outcome: str) -> None:
        """Count one call that ended in `outcome`, a final ledger state (ok failed missed
        suppressed uncertain; `State.OK` etc. work too). Raises ValueError for anything else,
        e.g. `sent`/`claimed`, which `Dispatcher.fire` returns for calls it did not handle."""
        outcome = str(outcome)
        if outcome not in OUTCOMES:
            raise ValueError(
                f"call outcome must be one of {', '.join(sorted(OUTCOMES))}, not {outcome!r}"
            )
        self._child(self._calls, provider, action, outcome).inc()

    def call_lateness(self, provider: str, seconds: float) -> None:
        """Observe how late a call was sent; negative (early) is recorded as 0."""
        self._child(self._lateness, provider).observe(max(0.0, seconds))

    def retry(self, provider: str) -> None:
        self._retries.labels(provider=provider).inc()

    def duplicate_suppressed(self, provider: str) -> None:
        self._duplicates.labels(provider=provider).inc()

    def set_active_recordings(self, n: int) -> None:
        self._active.set(n)

    def set_next_call(self, at: datetime | None) -> None:
        """The next armed call's time (aware datetime), or None (exported as NaN)."""
        if at is None:
            self._next_call.set(math.nan)
            return
        if at.tzinfo is None:
            raise ValueError("refusing a naive datetime: its zone would be the host's")
        self._next_call.set(at.timestamp())

    def set_pending_calls(self, n: int) -> None:
        self._pending.set(n)

    def config_reload(self, ok: bool) -> None:
        self._reloads.labels(result="success" if ok else "failure").inc()
        if ok:
            self._reload_ok_at.set(time.time())

    def clock_skew(self, provider: str, seconds: float) -> None:
        """Provider's clock minus ours (see scheduler.clock.provider_skew)."""
        self._child(self._skew, provider).set(seconds)

    def store_healthy(self, ok: bool) -> None:
        self._store.set(1 if ok else 0)

    def render(self) -> bytes:
        """The Prometheus text exposition format (version 0.0.4) of this registry."""
        return generate_latest(self.registry)
