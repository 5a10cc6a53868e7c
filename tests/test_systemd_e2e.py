"""The test plays systemd: a NOTIFY_SOCKET, a watchdog, SIGHUP and SIGTERM against the real
daemon, and scrapes its /healthz and /metrics like a monitoring system would."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scheduler.config import CST
from scheduler.fakes.lvb import FakeLvb
from tests.daemon_process import DaemonProcess
from tests.ports import free_port

pytestmark = pytest.mark.usefixtures("lvb_env")


class FakeSystemd:
    """Receives sd_notify datagrams on a socket and keeps reading, like PID 1 does."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[dict[str, str]] = []
        self._read = 0  # messages already handed out by receive()
        self._changed = asyncio.Condition()
        self._reader = asyncio.get_running_loop().create_task(self._read_forever())

    async def _read_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 4096)
            async with self._changed:
                lines = data.decode().splitlines()
                self.messages.append(dict(line.split("=", 1) for line in lines if line))
                self._changed.notify_all()

    async def receive(self, key: str, timeout: float = 20) -> dict[str, str]:  # noqa: ASYNC109
        """The next message (after those already returned) that carries `key`."""

        def find() -> int | None:
            hits = (i for i in range(self._read, len(self.messages)) if key in self.messages[i])
            return next(hits, None)

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: find() is not None)
            index = find()
            assert index is not None
            self._read = index + 1
            return self.messages[index]

    def close(self) -> None:
        self._reader.cancel()
        self.sock.close()


@pytest.fixture
async def systemd(tmp_path: Path) -> AsyncIterator[FakeSystemd]:
    fake = FakeSystemd(tmp_path / "notify.sock")
    yield fake
    fake.close()


def _schedule(fake_lvb: FakeLvb, tmp_path: Path, port: int, start: datetime) -> str:
    return f"""
providers:
  lvb: {{endpoint: "{fake_lvb.url}", appid: 1234, key: "${{LVB_KEY}}"}}
state: {{url: "sqlite:///{tmp_path}/state/recsched.db"}}
http: {{listen: "127.0.0.1:{port}"}}
recordings:
  - {{name: show, channel_id: c, start: "{start.astimezone(CST):%Y-%m-%d %H:%M:%S}", duration: 6s,
      chunk: 3s}}
"""


async def test_ready_reload_watchdog_stop_and_metrics(
    fake_lvb: FakeLvb, systemd: FakeSystemd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The window starts an hour away, so READY names both chunks however long start-up takes;
    # a reload brings it to a few seconds from then.
    later = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    port = free_port()
    config = tmp_path / "recsched.yaml"
    config.write_text(_schedule(fake_lvb, tmp_path, port, later))
    monkeypatch.setenv("NOTIFY_SOCKET", str(systemd.path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # WatchdogSec=0.4s: a ping every 0.2 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    daemon = await DaemonProcess.start(config)

    ready = await systemd.receive("READY")
    assert "2 call(s) armed" in ready["STATUS"] and "next call" in ready["STATUS"]
    for _ in range(3):
        assert (await systemd.receive("WATCHDOG"))["WATCHDOG"] == "1"

    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as health:
            assert health.status == 200

        daemon.process.send_signal(1)  # SIGHUP, file unchanged
        reloading = await systemd.receive("RELOADING")
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000  # system-wide clock
        assert abs(int(reloading["MONOTONIC_USEC"]) - now_usec) < 5_000_000
        assert "READY" in await systemd.receive("READY")

        start = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
        config.write_text(_schedule(fake_lvb, tmp_path, port, start))
        daemon.process.send_signal(1)  # SIGHUP, the window moved to 3 s from now
        await systemd.receive("RELOADING")
        moved = await systemd.receive("READY")
        assert not moved["STATUS"].startswith("reload rejected"), moved

        config.write_text(config.read_text().replace("chunk: 3s", "chunk: 45m"))
        daemon.process.send_signal(1)  # SIGHUP with a broken file
        await systemd.receive("RELOADING")
        rejected = await systemd.receive("READY")
        assert rejected["STATUS"].startswith("reload rejected, old schedule kept")

        await fake_lvb.wait_for_requests(2, timeout=20)
        await daemon.wait_for("call.ok", lambda e: e["chunk"] == "2/2")
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            text = await response.text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    ok = (
        "recsched_calls_total",
        (("action", "Live_Tape_Start"), ("outcome", "ok"), ("provider", "lvb")),
    )
    assert samples[ok] == 2
    assert samples[("recsched_config_reloads_total", (("result", "success"),))] == 2
    assert samples[("recsched_config_reloads_total", (("result", "failure"),))] == 1
    assert samples[("recsched_call_lateness_seconds_count", (("provider", "lvb"),))] == 2
    assert samples[("recsched_store_healthy", ())] == 1

    assert await daemon.terminate() == 0, daemon.stderr
    stopping = await systemd.receive("STOPPING")
    assert stopping["STOPPING"] == "1"
