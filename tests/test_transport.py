"""The one HTTP client: exactly one request per attempt, even when a kept-alive connection is
dropped after the request went out (aiohttp would otherwise re-send a GET, silently: for
Live_Tape_Start that is a second paid task). Issue 14.5."""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from scheduler.errors import OutcomeUnknown
from scheduler.transport import Transport

ROOT = Path(__file__).resolve().parent.parent


class DropsSecondRequest:
    """A raw HTTP/1.1 server on loopback: answers the first request on a connection (keeping
    it alive), reads the second one completely and closes the connection without a word."""

    def __init__(self) -> None:
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    return
                self.requests += 1
                served += 1
                if served == 1:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
                    )
                    await writer.drain()
                else:
                    return  # the request arrived and was acted on; the answer never comes
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/common_access?x=1"


@pytest.fixture
async def dropping() -> AsyncIterator[DropsSecondRequest]:
    fake = DropsSecondRequest()
    fake.server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    try:
        yield fake
    finally:
        fake.server.close()
        await fake.server.wait_closed()


async def test_a_get_on_a_dropped_kept_alive_connection_is_sent_once(
    dropping: DropsSecondRequest,
) -> None:
    transport = Transport()
    try:
        first = await transport.get(dropping.url, timeout=5)
        assert (first.status, first.body) == (200, "ok")
        with pytest.raises(OutcomeUnknown, match="connection dropped"):
            await transport.get(dropping.url, timeout=5)  # reuses the kept-alive connection
    finally:
        await transport.close()
    assert dropping.requests == 2  # aiohttp's silent retry would make it 3


async def test_aiohttp_alone_would_send_it_twice(dropping: DropsSecondRequest) -> None:
    """The control: the same exchange through a plain session re-sends the GET."""
    async with aiohttp.ClientSession() as session:
        async with session.get(dropping.url) as response:
            assert await response.text() == "ok"
        try:
            async with session.get(dropping.url) as response:
                await response.read()
        except aiohttp.ClientError:
            pass
    assert dropping.requests == 3


def test_the_aiohttp_bound_guarantees_the_guard() -> None:
    """`ClientSession._retry_connection`, which Transport turns off, exists from aiohttp 3.11.0:
    an older aiohttp allowed by pyproject would bring the silent re-send back."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (spec,) = [d for d in project["project"]["dependencies"] if d.startswith("aiohttp")]
    match = re.search(r">=\s*(\d+)\.(\d+)", spec)
    assert match and (int(match[1]), int(match[2])) >= (3, 11), spec
    assert "_retry_connection" in aiohttp.ClientSession.ATTRS  # the attribute aiohttp reads
