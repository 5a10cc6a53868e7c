"""systemd notification protocol (sd_notify(3)) in plain Python, no libsystemd.

One datagram of `KEY=VALUE` lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or
`@name` for the abstract namespace). Without $NOTIFY_SOCKET (not run by systemd, tests, a dev
shell) every call is a silent no-op. Socket errors never propagate: the daemon must keep firing
calls even when it cannot talk to systemd; the first failure per socket is logged as a warning
(`notify.failed`), repeats are not, and a later success re-arms the warning.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger("recsched.notify")
#: Bound on a send: a stuck service manager must not stall the event loop for long.
SEND_TIMEOUT = 1.0
_failing: set[str] = set()  # sockets whose failure was already logged


def notify(*lines: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `lines` as one datagram; True if sent, False without $NOTIFY_SOCKET or on error."""
    target = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not target:
        return False
    try:
        if target[0] not in "/@":
            raise OSError(f"unsupported NOTIFY_SOCKET address {target!r}")
        address = "\0" + target[1:] if target[0] == "@" else target
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(SEND_TIMEOUT)
            sock.connect(address)
            sock.sendall("\n".join(lines).encode("utf-8", "replace"))
    except (OSError, ValueError) as exc:
        if target not in _failing:
            _failing.add(target)
            log.warning("notify.failed", socket=target, error=f"{type(exc).__name__}: {exc}")
        return False
    _failing.discard(target)
    return True


def _one_line(text: str) -> str:
    """STATUS= is one line: line breaks (and the blanks around them) become one space."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


class Notifier:
    """What the daemon tells systemd: readiness, reloads, status, stop, watchdog pings.

    The environment is read once, at construction.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        source = os.environ if env is None else env
        keys = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
        self._env = {key: source[key] for key in keys if key in source}
        self.enabled: bool = bool(self._env.get("NOTIFY_SOCKET"))

    def _send(self, *lines: str) -> None:
        if self.enabled:
            notify(*lines, env=self._env)

    def ready(self, status: str) -> None:
        """Start-up (or a reload) is complete."""
        self._send("READY=1", f"STATUS={_one_line(status)}")

    def reloading(self) -> None:
        """A reload starts. MONOTONIC_USEC must travel in the same datagram: systemd >= 253
        (Type=notify-reload) matches it against the moment it asked for the reload."""
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send("RELOADING=1", f"MONOTONIC_USEC={now_usec}")

    def status(self, text: str) -> None:
        self._send(f"STATUS={_one_line(text)}")

    def stopping(self, status: str = "stopping") -> None:
        self._send("STOPPING=1", f"STATUS={_one_line(status)}")

    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings (half of WatchdogSec=), or None if not asked for."""
        pid = self._env.get("WATCHDOG_PID")
        if pid is not None and pid.strip() != str(os.getpid()):
            return None  # the watchdog is meant for another process (e.g. our parent)
        try:
            usec = int(self._env.get("WATCHDOG_USEC", ""))
        except ValueError:
            return None
        return usec / 2 / 1e6 if usec > 0 else None

    async def watchdog(self) -> None:
        """Ping WATCHDOG=1 until cancelled. The pings come from this event loop, so a blocked
        loop stops them and systemd kills and restarts the service. Returns at once when
        systemd set no watchdog (or no notify socket)."""
        interval = self.watchdog_interval()
        if interval is None or not self.enabled:
            return
        while True:
            self._send("WATCHDOG=1")
            await asyncio.sleep(interval)
