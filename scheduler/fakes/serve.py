"""Serving a fake on loopback: one aiohttp runner, no access log (request lines carry query
strings with signatures)."""

from __future__ import annotations

from aiohttp import web


async def serve(app: web.Application, host: str, port: int, *, grace: float) -> web.AppRunner:
    """Serve `app` on host:port (0 = any free port). Raises OSError if it cannot bind."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=grace)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
