"""The daemon's only HTTP server: `GET /healthz` and `GET /metrics` (aiohttp.web).

`/healthz` answers 200 `ok` when the daemon's health callable says so, else 503 with its
reason; answering at all shows the event loop is alive. `/metrics` is the Prometheus text
format of the daemon's private registry. Every other path is 404. The access log is off: a
later route (e.g. a provider callback) may carry secrets in its query string.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiohttp import web

from scheduler.logs import get_logger
from scheduler.metrics import Metrics
from scheduler.parsing import parse_listen as parse_listen

log = get_logger("recsched.http")

#: The classic Prometheus text format, which `generate_latest` writes. Spelled out rather
#: than taken from prometheus_client: its CONTENT_TYPE_LATEST is `version=1.0.0` since 0.22.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Seconds `stop()` lets in-flight requests finish.
SHUTDOWN_TIMEOUT = 2.0


async def serve(app: web.Application, host: str, port: int, *, grace: float) -> web.AppRunner:
    """Serve `app` on host:port (0 = any free port) with no access log: request lines carry
    query strings and paths (signatures, callback tokens). Raises OSError if it cannot bind."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=grace)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def format_listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HttpApi:
    def __init__(
        self,
        metrics: Metrics,
        health: Callable[[], tuple[bool, str]],
        refresh: Callable[[], None] | None = None,
    ) -> None:
        """`refresh` is called before each /metrics answer, to update gauges."""
        self.metrics = metrics
        self.health = health
        self.refresh = refresh
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self._started = False

    def add_routes(self, routes: Iterable[web.AbstractRouteDef]) -> None:
        """Add routes for later features (e.g. a provider callback); only before start()."""
        if self._started:
            raise RuntimeError("HttpApi.add_routes must be called before start()")
        self.app.add_routes(routes)

    async def start(self, listen: str) -> str:
        """Serve on `listen` ("HOST:PORT", port 0 = any free port); return the bound address
        as "HOST:PORT" (the first socket's, IPv6 in brackets). Raises ValueError for a bad
        address and OSError when it cannot be bound."""
        if self._started:
            raise RuntimeError("HttpApi was already started; it cannot be started twice")
        host, port = parse_listen(listen)
        self._started = True
        runner = await serve(self.app, host, port, grace=SHUTDOWN_TIMEOUT)
        self._runner = runner
        bound = runner.addresses[0]
        return format_listen(str(bound[0]), int(bound[1]))

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            healthy, reason = self.health()
        except Exception as exc:
            log.exception("http.health_crashed")
            healthy, reason = False, f"health check crashed ({type(exc).__name__})"
        if healthy:
            return web.Response(text="ok\n", headers={"Cache-Control": "no-store"})
        return web.Response(
            status=503,
            text=f"{reason or 'unhealthy'}\n",
            headers={"Cache-Control": "no-store"},
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.refresh is not None:
            self.refresh()
        return web.Response(
            body=self.metrics.render(),
            headers={"Content-Type": METRICS_CONTENT_TYPE, "Cache-Control": "no-store"},
        )
