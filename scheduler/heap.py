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


def settle(seconds_to_next_call: float | None) -> bool:
    """Freeze the heap as it is now; collect it first if nothing is due within
    IDLE_COLLECT_S (None: nothing is planned). Returns whether it collected."""
    idle = seconds_to_next_call is None or seconds_to_next_call > IDLE_COLLECT_S
    if idle:
        gc.unfreeze()
        gc.collect()
    gc.freeze()
    return idle
