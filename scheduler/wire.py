"""Requests on the wire, and the wait of an answer's bookkeeping for them.

Recording an answer (its ledger row and group commit, its `call.ok` line, metrics) costs the
event loop about as much as sending a request. In a burst most requests wait in aiohttp for one
of its 100 connections, which the earlier answers free; those answers' bookkeeping ran first,
and each later request waited behind it (docs/benchmarks.md: a 1,000-call burst's p99 1.78x ->
1.47x the aiohttp floor's). So a successful answer is recorded once no request of this process
is waiting for its answer, or `RECORD_WAIT_MAX_S` after it was read, whichever comes first.
A call's `call.sent` line waits in the same way when other requests are on the wire (`later`):
writing 950 of them in the turn that sends a burst's requests cost ~38 ms of its p99; the
line carries `sent_at`, and it is always written before any other line about its call.

What this changes is only when an answered call's outcome row and its lines are written: its
`sent` was durable before the request left, as before, and the outcome is durable before the
call's task ends, as before. A crash inside the wait leaves the call `sent` without an answer, which
recovery treats as it treats a crash just after a request left (the sender decides: for LVB,
`uncertain`, never sent again unless `resend_after_crash`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: The longest an answered call waits to be recorded while other requests are on the wire.
#: A 1,000-call burst's requests are all answered within ~0.25 s here; a hung request (up to
#: the provider's timeout) never holds another call's outcome longer than this. A choice, not
#: a Tencent fact: one constant to change (0 records every answer at once, as before).
RECORD_WAIT_MAX_S = 0.5


class Wire:
    """How many requests of this process await their answer, and who waits for none to."""

    def __init__(self, wait_max: float = RECORD_WAIT_MAX_S) -> None:
        self.wait_max = wait_max
        self._open = 0
        self._waiting: list[asyncio.Future[None]] = []
        self._later: list[list[Callable[[], None] | None]] = []  # one cell an action, in order
        self._timer: asyncio.TimerHandle | None = None

    @property
    def open(self) -> int:
        """Requests sent and not answered (nor failed) yet."""
        return self._open

    @property
    def waiting(self) -> int:
        """Answers read and waiting to be recorded."""
        return len(self._waiting)

    @contextmanager
    def request(self) -> Iterator[None]:
        """Around one request, from just before it is sent until its answer or error."""
        self._open += 1
        try:
            yield
        finally:
            self._open -= 1
            if not self._open:
                self._wake()

    async def quiet(self) -> None:
        """Return once no request awaits its answer, or at most `wait_max` seconds after the
        first of the current waiters came (at once if none is open or `wait_max` is 0).
        Every action passed to `later` before has run by then."""
        if not self._open or self.wait_max <= 0:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._arm()
        await waiter

    def later(self, action: Callable[[], None]) -> Callable[[], None]:
        """Run `action` (a log line) when `quiet` would return: at once if no request is open,
        else once none is or `wait_max` from now, in the order given, before any waiter of
        `quiet` goes on. Returns a function that runs it now unless it has run (its caller's
        next line about the call must come after it)."""
        if not self._open or self.wait_max <= 0:
            action()
            return _done
        cell: list[Callable[[], None] | None] = [action]
        self._later.append(cell)
        self._arm()
        return lambda: _run(cell)

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.wait_max, self._wake)

    def _wake(self) -> None:
        actions, self._later = self._later, []
        waiting, self._waiting = self._waiting, []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for cell in actions:
            _run(cell)
        for waiter in waiting:
            if not waiter.done():  # a call cancelled while it waited (a forced stop)
                waiter.set_result(None)


def _run(cell: list[Callable[[], None] | None]) -> None:
    """Run the cell's action once. One that raises is reported as asyncio reports a failed
    callback, and stops neither the others nor the waiters."""
    action, cell[0] = cell[0], None
    if action is None:
        return
    try:
        action()
    except Exception as exc:  # a bug in a line's rendering must not hang the calls waiting
        asyncio.get_running_loop().call_exception_handler(
            {"message": "a deferred action failed", "exception": exc}
        )


def _done() -> None:
    """`later`'s answer when the action ran at once."""
