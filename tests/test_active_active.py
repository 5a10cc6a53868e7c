"""Two daemons, one PostgreSQL ledger, one provider: every call exactly once, even when one
instance dies or freezes mid-window."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.config import CST, load_config
from scheduler.dispatch import Dispatcher
from scheduler.fakes.lvb import FakeLvb
from scheduler.ledger import State
from scheduler.planner import plan
from scheduler.provider_senders import provider_senders
from scheduler.shared import SharedLedger
from scheduler.transport import Transport
from tests.conftest import LogCapture
from tests.daemon_process import DaemonProcess

pytestmark = pytest.mark.usefixtures("lvb_env")
CHUNK = 3
LEASE = 2


async def _cli(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scheduler", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    return out.decode()


class Pair:
    """The same config for two instances: a real-time window of `chunks` 3 s chunks."""

    def __init__(self, fake: FakeLvb, pg_url: str, tmp_path: Path, chunks: int) -> None:
        self.fake = fake
        self.start = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
        self.chunks = chunks
        self.config = tmp_path / "recsched.yaml"
        self.config.write_text(f"""
providers:
  lvb: {{endpoint: "{fake.url}", appid: 1234, key: "${{LVB_KEY}}", timeout: 4s}}
state: {{url: "{pg_url}", lease: {LEASE}s}}
recordings:
  - name: show
    channel_id: 8888_show
    start: "{self.start.astimezone(CST):%Y-%m-%d %H:%M:%S}"
    duration: {CHUNK * chunks}s
    chunk: {CHUNK}s
""")

    def instant(self, chunk: int) -> datetime:
        return self.start + timedelta(seconds=CHUNK * (chunk - 1))

    def sent_chunks(self) -> list[int]:
        starts = [
            f"{self.instant(i).astimezone(CST):%Y-%m-%d %H:%M:%S}"
            for i in range(1, self.chunks + 1)
        ]
        return sorted(starts.index(r.params["Param.s.start_time"]) + 1 for r in self.fake.received)

    def lateness(self, chunk: int) -> float:
        start_time = f"{self.instant(chunk).astimezone(CST):%Y-%m-%d %H:%M:%S}"
        (hit,) = [r for r in self.fake.received if r.params["Param.s.start_time"] == start_time]
        return hit.arrived_at - self.instant(chunk).timestamp()

    async def both(self) -> tuple[DaemonProcess, DaemonProcess]:
        a, b = await DaemonProcess.start(self.config), await DaemonProcess.start(self.config)
        self.daemons = [a, b]
        await a.wait_for("plan.loaded")
        await b.wait_for("plan.loaded")
        return a, b

    async def requests(self, n: int, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until the provider has `n` requests; if it never does, say what each saw."""
        try:
            await self.fake.wait_for_requests(n, timeout=timeout)
        except TimeoutError:
            seen = [
                [(e["timestamp"][11:23], e["event"], e.get("chunk")) for e in d.lines]
                for d in self.daemons
            ]
            window = f"{self.start:%H:%M:%S}+{CHUNK}s x {self.chunks}"
            raise AssertionError(
                f"{len(self.fake.received)} of {n} requests; window {window}; the daemons: {seen}"
            ) from None


async def test_two_instances_send_every_call_exactly_once(
    fake_lvb: FakeLvb, pg_url: str, tmp_path: Path
) -> None:
    pair = Pair(fake_lvb, pg_url, tmp_path, chunks=5)
    a, b = await pair.both()
    await pair.requests(5, timeout=40)
    await a.wait_for("window.closed", timeout=20)
    assert await a.terminate() == 0 and await b.terminate() == 0
    assert pair.sent_chunks() == [1, 2, 3, 4, 5]  # each once, although both planned all
    assert all(0 <= pair.lateness(i) < CHUNK for i in range(1, 6))  # each inside its chunk
    ok = a.events("call.ok") + b.events("call.ok")
    assert len(ok) == 5
    status = json.loads(await _cli("status", "-c", str(pair.config), "--json"))
    ids = {i["id"] for i in status["instances"]}
    assert len(ids) == 2  # both instances, with host and heartbeat
    senders = {o["owner"] for o in status["last_outcomes"] if o["state"] == "ok"}
    assert senders <= ids and len(status["last_outcomes"]) == 5  # who sent what


async def test_instances_with_different_configs_say_so_loudly(
    fake_lvb: FakeLvb, pg_url: str, tmp_path: Path
) -> None:
    pair = Pair(fake_lvb, pg_url, tmp_path, chunks=1)
    other = tmp_path / "other.yaml"
    other.write_text(pair.config.read_text().replace("8888_show", "8888_other"))
    other.chmod(0o600)
    a = await DaemonProcess.start(pair.config)
    await a.wait_for("plan.loaded")
    b = await DaemonProcess.start(other)
    divergent = await b.wait_for("config.divergent")
    assert divergent["level"] == "error" and len(divergent["peers"]) == 1
    # SIGTERM only once b is serving: before its handlers are installed (just before the plan
    # is armed, so plan.loaded comes after them) SIGTERM would kill it (-15)
    await b.wait_for("plan.loaded")
    assert await a.terminate() == 0 and await b.terminate() == 0


async def test_when_one_instance_dies_the_other_sends_the_rest(
    fake_lvb: FakeLvb, pg_url: str, tmp_path: Path
) -> None:
    pair = Pair(fake_lvb, pg_url, tmp_path, chunks=6)
    a, b = await pair.both()
    await pair.requests(2, timeout=30)
    await a.kill()  # SIGKILL mid-window: whatever it had claimed is left with a lease
    await pair.requests(6, timeout=40)
    await asyncio.sleep(0)  # let b's log reader catch up (no timing depends on it)
    assert await b.terminate() == 0, b.stderr
    assert pair.sent_chunks() == [1, 2, 3, 4, 5, 6]  # nothing missed, nothing twice
    assert all(pair.lateness(i) <= LEASE + 1 for i in range(3, 7))


async def test_a_frozen_instance_creates_no_duplicate(
    fake_lvb: FakeLvb, pg_url: str, tmp_path: Path
) -> None:
    pair = Pair(fake_lvb, pg_url, tmp_path, chunks=6)
    a, b = await pair.both()
    await pair.requests(1, timeout=30)
    a.process.send_signal(signal.SIGSTOP)  # a paused host, with whatever it holds
    await pair.requests(4, timeout=30)
    a.process.send_signal(signal.SIGCONT)  # it wakes up, possibly mid-call, lease long gone
    await pair.requests(6, timeout=30)
    await b.wait_for("window.closed", timeout=20)
    assert await a.terminate() == 0 and await b.terminate() == 0
    assert pair.sent_chunks() == [1, 2, 3, 4, 5, 6]
    lost = a.events("call.lease_lost")
    assert all(e["message"].startswith("taken over") for e in lost)


async def test_a_call_whose_owner_died_right_after_sent_is_settled_by_the_survivor(
    fake_lvb: FakeLvb, pg_url: str, tmp_path: Path, captured_logs: LogCapture
) -> None:
    """Issue 14.4: the dead owner's `sent` lease (timeout + 5 s) outlives the 3 s chunk; the
    survivor still watches until it ends and records the call `uncertain` (the request may
    have reached Tencent), instead of leaving it `sent`."""
    pair = Pair(fake_lvb, pg_url, tmp_path, chunks=1)
    config = load_config(pair.config)
    (call,) = plan(config, datetime.now(UTC), timedelta(hours=1))
    dead = await SharedLedger.open(
        pg_url, owner="dead", lease=timedelta(seconds=LEASE), config_hash=""
    )
    survivor = await SharedLedger.open(
        pg_url, owner="survivor", lease=timedelta(seconds=LEASE), config_hash=""
    )
    try:
        now = datetime.now(UTC)
        assert await dead.claim(call, now)
        # the window starts in 4 s and its one chunk ends 3 s later: the lease outlives it
        assert await dead.mark_sent(call.key, now, attempts=1, uncertain=False, hold_s=9)
        assert now + timedelta(seconds=9) > call.deadline
        # ... and the owner is gone: no outcome will ever come from it
        dispatcher = Dispatcher(config, Transport(), survivor, senders=provider_senders)
        assert await dispatcher.fire(call) == State.UNCERTAIN
        await dispatcher.transport.close()
        entry = await survivor.get(call.key)
        assert entry is not None and entry.state == State.UNCERTAIN
    finally:
        await dead.close()
        await survivor.close()
    assert fake_lvb.received == []  # not re-sent (resend_after_crash is false)
    (taken,) = captured_logs.events("call.taken_over")
    assert taken["previous_owner"] == "dead" and taken["state"] == "sent"
    (uncertain,) = captured_logs.events("call.uncertain")
    assert uncertain["resent"] is False
