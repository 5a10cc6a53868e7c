"""The daemon's heap and the cyclic garbage collector.

A large schedule keeps about a million objects alive (the config, the plan, the armed jobs).
Any full collection scans them all: 0.1-0.25 s on this project's 2-core machine, triggered by
allocations, so most likely during a burst of calls, the worst moment (docs/benchmarks.md).
`settle` moves what is alive into the collector's permanent generation (gc.freeze) each time
a plan is armed; later collections scan only what came after. Frozen objects are still freed
when their last reference goes; only reference cycles among them wait, for the next `settle`
that has time to spare.
"""

from __future__ import annotations

import gc

#: Collect first only when no call is due sooner than this: a full collection of a large
#: heap holds the event loop for a few tenths of a second.
IDLE_COLLECT_S = 5.0
#: The collector's thresholds in the daemon (Python's defaults are 700, 10, 10). A burst
#: allocates many short-lived objects that reference counting frees at once. At the defaults a
#: 1,000-call burst ran about 100 collections in its first 0.6 s, 45-57 ms of the event loop
#: in all, among them a full one of 20-35 ms, and not one of them freed an object (gc
#: callbacks, docs/benchmarks.md). At these: 6 young collections, 15-23 ms, no older one.
#: Cycles wait longer to be freed; `settle` still collects whenever it has time. A choice,
#: measured on one machine: one constant to change.
THRESHOLDS = (10_000, 10, 100)


def tune() -> None:
    """Set the daemon's collector thresholds (THRESHOLDS)."""
    gc.set_threshold(*THRESHOLDS)


def settle(seconds_to_next_call: float | None) -> bool:
    """Freeze the heap as it is now; collect it first if nothing is due within
    IDLE_COLLECT_S (None: nothing is planned). Returns whether it collected."""
    idle = seconds_to_next_call is None or seconds_to_next_call > IDLE_COLLECT_S
    if idle:
        gc.unfreeze()
        gc.collect()
    gc.freeze()
    return idle
