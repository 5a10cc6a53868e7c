"""scheduler.notify against a fake systemd: a datagram socket the code under test writes to."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler import notify as notify_module
from scheduler.notify import Notifier, notify
from tests.conftest import LogCapture

RECV_TIMEOUT = 2.0


class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET, as the service manager holds it."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address  # what goes into NOTIFY_SOCKET

    @property
    def env(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.address}

    def recv(self, timeout: float = RECV_TIMEOUT) -> list[str]:
        """The next datagram as its lines; fails the test if none arrives in `timeout`."""
        self.sock.settimeout(timeout)
        return self.sock.recv(65536).decode().split("\n")

    async def arecv(self) -> list[str]:
        """`recv` without blocking the event loop (the sender may be a task on it)."""
        self.sock.setblocking(False)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(RECV_TIMEOUT):
            data = await loop.sock_recv(self.sock, 65536)
        return data.decode().split("\n")

    def pending(self) -> bool:
        """Whether a datagram is waiting, without waiting for one."""
        self.sock.setblocking(False)
        try:
            self.sock.recv(65536, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        return True


def _bound(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    return sock


@pytest.fixture(params=["path", "abstract"])
def systemd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakeSystemd]:
    """A fake systemd on a filesystem socket, and on an abstract one (`@name` in the env)."""
    if request.param == "path":
        path = str(tmp_path / "notify.sock")
        assert len(path.encode()) < 108, f"socket path too long for AF_UNIX: {path}"
        sock, address = _bound(path), path
    else:
        name = f"recsched-test-{secrets.token_hex(8)}"
        sock, address = _bound("\0" + name), "@" + name
    with sock:
        yield FakeSystemd(sock, address)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """notify() warns once per failing socket per process; start each test with a clean slate."""
    monkeypatch.setattr(notify_module, "_failing", set())


# -- notify() ----------------------------------------------------------------------------------


def test_notify_sends_one_datagram_of_lines(systemd: FakeSystemd) -> None:
    assert notify("READY=1", "STATUS=hello", env=systemd.env) is True
    assert systemd.recv() == ["READY=1", "STATUS=hello"]


def test_notify_reads_os_environ_by_default(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.address)
    assert notify("STATUS=from environ") is True
    assert systemd.recv() == ["STATUS=from environ"]


def test_notify_without_notify_socket_is_a_silent_no_op(
    monkeypatch: pytest.MonkeyPatch, captured_logs: LogCapture
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
    assert notify("READY=1", env={}) is False
    assert notify("READY=1", env={"NOTIFY_SOCKET": ""}) is False
    assert captured_logs.events() == []


def test_notify_to_a_missing_socket_returns_false_and_warns_once(
    tmp_path: Path, captured_logs: LogCapture
) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "no-such.sock")}
    assert notify("READY=1", env=env) is False
    assert notify("WATCHDOG=1", env=env) is False
    failures = captured_logs.events("notify.failed")
    assert len(failures) == 1
    assert failures[0]["level"] == "warning"
    assert failures[0]["logger"] == "recsched.notify"
    assert failures[0]["socket"] == env["NOTIFY_SOCKET"]
    assert "FileNotFoundError" in failures[0]["error"]


def test_a_success_rearms_the_warning(tmp_path: Path, captured_logs: LogCapture) -> None:
    path = tmp_path / "flaky.sock"
    env = {"NOTIFY_SOCKET": str(path)}
    assert notify("STATUS=1", env=env) is False
    with _bound(str(path)):
        assert notify("STATUS=2", env=env) is True
    path.unlink()
    assert notify("STATUS=3", env=env) is False
    assert len(captured_logs.events("notify.failed")) == 2


def test_an_unsupported_address_is_a_failure_not_an_exception(captured_logs: LogCapture) -> None:
    assert notify("READY=1", env={"NOTIFY_SOCKET": "vsock:2:1234"}) is False
    assert len(captured_logs.events("notify.failed")) == 1


def test_a_manager_that_stops_reading_costs_one_bounded_wait(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch, captured_logs: LogCapture
) -> None:
    """Nobody reads: the receive queue fills (net.unix.max_dgram_qlen, 10 by default), then a
    send waits SEND_TIMEOUT at most and fails softly instead of stalling the event loop."""
    monkeypatch.setattr(notify_module, "SEND_TIMEOUT", 0.2)
    sent = 0
    while True:
        started = time.monotonic()
        if not notify(f"STATUS={sent}", env=systemd.env):
            waited = time.monotonic() - started
            break
        sent += 1
        assert sent < 10_000, "the receive queue never filled"
    assert sent > 0
    assert 0.1 < waited < 2.0
    failures = captured_logs.events("notify.failed")
    assert len(failures) == 1
    assert "TimeoutError" in failures[0]["error"]


# -- Notifier messages -------------------------------------------------------------------------


def test_ready_sends_ready_and_status(systemd: FakeSystemd) -> None:
    Notifier(systemd.env).ready("12 calls planned, next 2026-12-01T20:00:00+08:00")
    assert systemd.recv() == ["READY=1", "STATUS=12 calls planned, next 2026-12-01T20:00:00+08:00"]


def test_reloading_carries_monotonic_usec_in_the_same_datagram(systemd: FakeSystemd) -> None:
    Notifier(systemd.env).reloading()
    now_usec = time.monotonic_ns() // 1000
    lines = systemd.recv()
    assert len(lines) == 2
    assert lines[0] == "RELOADING=1"
    key, _, value = lines[1].partition("=")
    assert key == "MONOTONIC_USEC"
    assert value.isdigit()
    assert abs(int(value) - now_usec) < 1_000_000


def test_status_is_one_line(systemd: FakeSystemd) -> None:
    Notifier(systemd.env).status("reload rejected:\n  recsched.yaml:3:5 bad key\r\nkeeping plan\n")
    assert systemd.recv() == ["STATUS=reload rejected: recsched.yaml:3:5 bad key keeping plan"]


def test_stopping_sends_stopping_and_status(systemd: FakeSystemd) -> None:
    notifier = Notifier(systemd.env)
    notifier.stopping()
    assert systemd.recv() == ["STOPPING=1", "STATUS=stopping"]
    notifier.stopping("draining 2 calls")
    assert systemd.recv() == ["STOPPING=1", "STATUS=draining 2 calls"]


def test_notifier_reads_the_environment_once(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.address)
    notifier = Notifier()
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert notifier.enabled
    notifier.status("still here")
    assert systemd.recv() == ["STATUS=still here"]


def test_a_disabled_notifier_sends_nothing_and_logs_nothing(captured_logs: LogCapture) -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.ready("x")
    notifier.reloading()
    notifier.status("x")
    notifier.stopping()
    assert captured_logs.events() == []


def test_a_notifier_whose_socket_vanished_does_not_raise(
    tmp_path: Path, captured_logs: LogCapture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    notifier.ready("x")
    notifier.stopping()
    assert len(captured_logs.events("notify.failed")) == 1


# -- watchdog ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "2000000"}, 1.0),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}, 1.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({}, None),
        ({"WATCHDOG_USEC": ""}, None),
        ({"WATCHDOG_USEC": "thirty"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert Notifier(env).watchdog_interval() == expected


async def test_watchdog_pings_repeatedly_from_the_event_loop(systemd: FakeSystemd) -> None:
    notifier = Notifier({**systemd.env, "WATCHDOG_USEC": "200000"})
    assert notifier.watchdog_interval() == pytest.approx(0.1)
    task = asyncio.create_task(notifier.watchdog())
    try:
        pings = [await systemd.arecv() for _ in range(3)]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert pings == [["WATCHDOG=1"]] * 3


async def test_watchdog_returns_at_once_without_a_watchdog(systemd: FakeSystemd) -> None:
    await asyncio.wait_for(Notifier(systemd.env).watchdog(), timeout=1)
    other_pid = {"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid() + 1)}
    await asyncio.wait_for(Notifier({**systemd.env, **other_pid}).watchdog(), timeout=1)
    await asyncio.wait_for(Notifier({"WATCHDOG_USEC": "200000"}).watchdog(), timeout=1)
    assert not systemd.pending()


def test_notify_module_keeps_no_socket_open(systemd: FakeSystemd) -> None:
    """Each message uses its own short-lived socket: nothing to leak across fork or reload."""
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        notify("STATUS=x", env=systemd.env)
        systemd.recv()
    assert len(os.listdir("/proc/self/fd")) == before
