"""The control socket: `recsched reload` asks the running daemon to reload and prints its verdict.

Why a socket and not `recsched check && kill -HUP`: the unit's `ExecReload=` used to run
`recsched check` itself, which must resolve the secrets, and systemd 252-254 hides the
credentials directory from the first `ExecReload=` command (systemd/systemd#35227), so every
reload failed. Here the daemon, which holds its credentials from the start, validates the file
and answers; the client only relays the answer and its exit status. Nothing depends on how
systemd mounts credentials for reload commands.

Protocol: one connection per request on an AF_UNIX stream socket (0600, in the daemon's
runtime directory, see paths.control_socket): the client writes `reload\n`; the daemon answers
one JSON line `{"ok": bool, "lines": [...]}` once a reload that started after the request is
done: the located problems if the file was rejected (the running schedule is untouched), the
applied diff otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from scheduler.logs import get_logger
from scheduler.reload import ReloadOutcome

log = get_logger("recsched.control")
#: How long the daemon waits for a client to say what it wants.
REQUEST_TIMEOUT = 5.0
#: `recsched reload --timeout` default: a reload of 10,000 recordings takes about a second;
#: below systemd's default TimeoutStartSec= (90 s), which bounds ExecReload= too.
RELOAD_TIMEOUT = 60.0


class ControlServer:
    def __init__(self, path: Path, reload: Callable[[], Awaitable[ReloadOutcome]]) -> None:
        self.path = path
        self._reload = reload
        self._server: asyncio.Server | None = None

    async def start(self) -> bool:
        """Listen on `path`; False (logged `control.unavailable`) if that is not possible, e.g.
        another daemon answers there. The daemon runs on without it: SIGHUP still reloads."""
        try:
            if _answers(self.path):
                raise OSError("another recsched daemon is listening there")
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # a stale socket left by a killed daemon
            self._server = await asyncio.start_unix_server(self._serve, path=self.path)
            os.chmod(self.path, 0o600)
        except OSError as exc:
            log.warning(
                "control.unavailable",
                socket=str(self.path),
                error=f"{type(exc).__name__}: {exc}",
                message="`recsched reload` cannot reach this daemon; SIGHUP still reloads",
            )
            return False
        log.info("control.listening", socket=str(self.path))
        return True

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                request = (await reader.readline()).strip()
            if request == b"reload":
                outcome = await self._reload()
                answer = {"ok": outcome.ok, "lines": list(outcome.lines)}
            else:
                answer = {"ok": False, "lines": [f"unknown request {request[:40]!r}"]}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            pass  # the client went away or said nothing: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _answers(path: Path) -> bool:
    """True if a process accepts connections on `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class ControlError(Exception):
    """The daemon could not be asked (not running, no socket, no answer in time)."""


def request_reload(path: Path, timeout: float = RELOAD_TIMEOUT) -> ReloadOutcome:
    """Ask the daemon listening on `path` to reload; its verdict, or ControlError."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise ControlError(
                f"no recsched daemon answers on {path} ({exc.strerror or exc}); "
                "is it running? (systemctl status recsched)"
            ) from None
        try:
            sock.sendall(b"reload\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            raise ControlError(
                f"the daemon on {path} did not finish the reload within {timeout:g} s"
            ) from None
        except OSError as exc:
            raise ControlError(f"lost the daemon on {path}: {exc}") from None
    try:
        data = json.loads(answer)
        return ReloadOutcome(bool(data["ok"]), tuple(str(line) for line in data["lines"]))
    except (ValueError, KeyError, TypeError):
        raise ControlError(f"the daemon on {path} closed without an answer") from None
