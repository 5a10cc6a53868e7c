"""The only module that touches aiohttp: one client session, errors mapped to our tree.

Timeout and dropped-connection errors become `OutcomeUnknown` (the provider may have acted);
connection refused becomes a plain `TransientError` (nothing was sent). Messages never include
the URL, which carries the signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from scheduler import __version__
from scheduler.errors import OutcomeUnknown, TransientError

#: Connections open at once, shared by every provider (aiohttp's default, made explicit).
#: Requests beyond wait in aiohttp for one, after their `sent` mark. Unbounded was slower:
#: a 1,000-call burst opened 1,000 connections at once (docs/benchmarks.md, 2026-12-03).
#: A choice, not a Tencent fact: one constant to change.
CONNECTIONS = 100


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    date: str | None  # the provider's Date header, for clock-skew checks


class Transport:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=CONNECTIONS),
                headers={"User-Agent": f"recsched/{__version__}"},
            )
            # aiohttp re-sends an idempotent-method request (GET) once, silently, when the
            # connection drops after sending. Live_Tape_Start is a GET that creates a paid task,
            # so that resend is a duplicate recording. There is no public switch; this slot is
            # the one aiohttp's own test tools use. A rename in aiohttp raises AttributeError
            # here (slots); tests/test_dispatch.py proves a dropped reply is not re-sent at once.
            session._retry_connection = False
            self._session = session
        return self._session

    async def get(self, url: str, *, timeout: float) -> Response:  # noqa: ASYNC109
        """GET `url` (already signed and encoded); raise TransientError/OutcomeUnknown on I/O."""
        return await self._request("GET", url, timeout=timeout)

    async def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> Response:
        """POST the exact `body` bytes with `headers` (already signed); errors as for get()."""
        return await self._request("POST", url, timeout=timeout, data=body, headers=headers)

    async def _request(self, method: str, url: str, *, timeout: float, **extra: Any) -> Response:  # noqa: ASYNC109
        try:
            async with self._client().request(
                method,
                url,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
                **extra,
            ) as response:
                text = await response.text(errors="replace")
                return Response(response.status, text, response.headers.get("Date"))
        except aiohttp.ClientConnectorError as exc:
            raise TransientError(f"cannot connect to {exc.host}:{exc.port}") from None
        except TimeoutError:
            raise OutcomeUnknown(f"no answer within {timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise OutcomeUnknown(f"connection dropped ({type(exc).__name__})") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
