"""heap.settle: the plan's objects leave the collector's generations; garbage is collected
first only when no call is due soon."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from scheduler import heap


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the suite collects as usual


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def _cycle() -> weakref.ref[_Node]:
    return weakref.ref(_Node())


@pytest.mark.parametrize("seconds", [None, heap.IDLE_COLLECT_S + 1])
def test_with_time_to_spare_garbage_is_collected_then_the_heap_frozen(
    seconds: float | None,
) -> None:
    gone = _cycle()
    assert heap.settle(seconds) is True
    assert gone() is None
    assert gc.get_freeze_count() > 0


def test_with_a_call_due_soon_nothing_is_scanned_now() -> None:
    kept = _cycle()
    gc.disable()  # no automatic collection between the two lines
    try:
        assert heap.settle(heap.IDLE_COLLECT_S - 1) is False
        assert kept() is not None  # left for a settle with time to spare
        assert gc.get_freeze_count() > 0
    finally:
        gc.enable()
    assert heap.settle(None) is True  # unfreezes, so the frozen cycle is found now
    assert kept() is None
