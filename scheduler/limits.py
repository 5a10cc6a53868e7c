"""Per-provider request limits: a concurrency cap and a token-bucket rate.

Tencent's 3.0 APIs allow 20 requests/s per API; the legacy fcgi API documents no limit [U], so
by default only the concurrency cap applies. A call waiting here is sent late, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

DEFAULT_CONCURRENCY = 100


class TokenBucket:
    """Allows `rate` requests per second on average and bursts of up to `burst`."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(burst if burst is not None else rate, 1.0)
        self.clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        async with self._lock:  # first come, first served
            self._refill()
            while self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.rate)
                self._refill()
            self._tokens -= 1


class Limiter:
    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY, rate: float | None = None) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._bucket = TokenBucket(rate) if rate else None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            if self._bucket is not None:
                await self._bucket.acquire()
            yield
