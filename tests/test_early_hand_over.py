"""Calls handed over early (engine.STAGE_LEAD): claimed durably before their instant, sent at
it and not before, and the 3 s rule measured between send times, not hand-over times."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.calls import Call
from scheduler.config import CST, Config, load_config
from scheduler.dispatch import Dispatcher
from scheduler.durable import DurableLedger
from scheduler.engine import STAGE_LEAD, Engine
from scheduler.fakes.lvb import FakeLvb
from scheduler.ledger import Entry, Ledger, MemoryLedger, State
from scheduler.planner import plan
from scheduler.provider_senders import provider_senders
from scheduler.service import Service
from scheduler.transport import Transport
from tests.conftest import LogCapture

WriteConfig = Callable[[str], Path]


def _config(write_config: WriteConfig, endpoint: str, recordings: str) -> Config:
    return load_config(
        write_config(
            f"providers:\n  lvb: {{endpoint: '{endpoint}', appid: 1234, key: '${{LVB_KEY}}'}}\n"
            f"recordings:\n{recordings}\n"
        )
    )


def _start(offset_s: float) -> str:
    """A window start `offset_s` from now, as the YAML writes it (whole seconds, CST)."""
    return _text(datetime.now(UTC) + timedelta(seconds=offset_s))


def _text(moment: datetime) -> str:
    return f"{moment.astimezone(CST):%Y-%m-%d %H:%M:%S}"


class FakeTime:
    """The dispatcher's clocks and its wait for an instant: waiting moves both clocks on to
    the instant at once, and what the ledger and the fake held when the wait began is noted."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.mono = 1000.0
        self.waited: list[float] = []
        self.on_wait: Callable[[], object] = lambda: None

    def clock(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    async def until(self, at: datetime) -> None:
        self.on_wait()
        self.waited.append((at - self.now).total_seconds())
        self.at(max(at, self.now))
        await asyncio.sleep(0)

    def at(self, moment: datetime) -> None:
        """Set both clocks to `moment` (the monotonic one by as much)."""
        self.mono += (moment - self.now).total_seconds()
        self.now = moment

    def dispatcher(self, config: Config, ledger: Ledger, **options: Any) -> Dispatcher:
        """The real dispatcher (LVB over a real Transport) on these clocks and this wait."""
        return Dispatcher(
            config,
            Transport(),
            ledger,
            senders=provider_senders,
            clock=self.clock,
            monotonic=self.monotonic,
            until=self.until,
            **options,
        )


@pytest.mark.usefixtures("lvb_env")
async def test_an_early_call_is_durably_claimed_before_its_instant_and_sent_at_it(
    fake_lvb: FakeLvb, write_config: WriteConfig, tmp_path: Path
) -> None:
    config = _config(
        write_config,
        fake_lvb.url,
        f"  - {{name: news, channel_id: c, start: '{_start(30)}', duration: 60s}}",
    )
    (call,) = plan(config, datetime.now(UTC))
    fake = FakeTime(call.at - timedelta(seconds=0.8))
    ledger = await DurableLedger.open(f"sqlite:///{tmp_path}/recsched.db", fake.now)
    seen: list[tuple[Entry | None, int]] = []

    async def look() -> None:
        seen.append((await ledger.store.get(call.key), len(fake_lvb.received)))

    pending: list[asyncio.Task[None]] = []
    fake.on_wait = lambda: pending.append(asyncio.ensure_future(look()))
    dispatcher = fake.dispatcher(config, ledger)
    try:
        assert await dispatcher.fire(call, early=True) == State.OK
        await asyncio.gather(*pending)
    finally:
        await dispatcher.transport.close()
        await ledger.close()
    assert fake.waited == [pytest.approx(0.8)]  # it waited for its instant ...
    ((stored, requests_then),) = seen
    assert stored is not None and stored.state == State.CLAIMED  # ... claimed on disk already
    assert requests_then == 0
    (received,) = fake_lvb.received
    assert received.params["Param.s.start_time"] == call.param("Param.s.start_time")
    entry = await ledger.get(call.key)
    assert entry is not None and entry.state == State.OK and entry.sent_at == call.at


@pytest.mark.usefixtures("lvb_env")
@pytest.mark.parametrize(("gap_s", "sent"), [(4, True), (2, False)])
async def test_the_3s_rule_counts_from_the_send_not_from_an_early_hand_over(
    fake_lvb: FakeLvb,
    write_config: WriteConfig,
    captured_logs: LogCapture,
    gap_s: int,
    sent: bool,
) -> None:
    # Two entries record overlapping spans of one channel, `gap_s` apart. The second is handed
    # over 1.5 s before its instant, 2.5 s after the first was sent: at its instant, 4 s after
    # the first, it must go; 2 s after, it must not (a duplicate task).
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    later = start + timedelta(seconds=gap_s)
    config = _config(
        write_config,
        fake_lvb.url,
        f"  - {{name: a, channel_id: c, start: '{_text(start)}', duration: 60s}}\n"
        f"  - {{name: b, channel_id: c, start: '{_text(later)}', duration: 60s}}",
    )
    calls: dict[str, Call] = {c.recording: c for c in plan(config, datetime.now(UTC))}
    first, second = calls["a"], calls["b"]
    assert (second.at - first.at).total_seconds() == gap_s
    fake = FakeTime(first.at)
    dispatcher = fake.dispatcher(config, MemoryLedger())
    try:
        assert await dispatcher.fire(first) == State.OK
        fake.at(second.at - timedelta(seconds=1.5))
        state = await dispatcher.fire(second, early=True)
    finally:
        await dispatcher.transport.close()
    assert state == (State.OK if sent else State.SUPPRESSED)
    assert len(fake_lvb.received) == (2 if sent else 1)
    suppressed = captured_logs.events("call.duplicate_suppressed")
    assert [e["recording"] for e in suppressed] == ([] if sent else ["b"])


class Handing(Dispatcher):
    """The real dispatcher, which notes each call handed to it (and whether early)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handed: dict[str, asyncio.Event] = {}
        self.early: dict[str, bool] = {}

    async def fire(self, call: Call, *, early: bool = False) -> State:
        self.early[call.recording] = early
        self.handed.setdefault(call.recording, asyncio.Event()).set()
        return await super().fire(call, early=early)


@pytest.mark.usefixtures("lvb_env")
async def test_the_engine_hands_calls_over_its_lead_early_and_they_go_at_their_instant(
    fake_lvb: FakeLvb, write_config: WriteConfig
) -> None:
    config = _config(
        write_config,
        fake_lvb.url,
        f"  - {{name: soon, channel_id: s, start: '{_start(1)}', duration: 60s}}\n"
        f"  - {{name: later, channel_id: l, start: '{_start(5)}', duration: 60s}}",
    )
    now = datetime.now(UTC)
    calls = {c.recording: c for c in plan(config, now)}
    ledger = MemoryLedger()
    transport = Transport()
    dispatcher = Handing(config, transport, ledger, senders=provider_senders)
    dispatcher.handed["later"] = asyncio.Event()
    engine = Engine(dispatcher, lead=timedelta(seconds=3))
    engine.start()
    try:
        assert engine.schedule(calls.values(), now) == 2
        # `soon` is due within the lead: handed over at once; `later` is armed, and reported
        # by its instant, not by the moment its timer fires
        assert engine.pending() == 1 and engine.next_at() == calls["later"].at
        assert await ledger.get(calls["later"].key) is None
        await asyncio.wait_for(dispatcher.handed["later"].wait(), 20)  # 3 s before its instant
        assert engine.pending() == 0 and dispatcher.early == {"soon": True, "later": True}
        claimed = await ledger.get(calls["later"].key)
        assert claimed is not None and claimed.state == State.CLAIMED
        assert "l" not in {r.params["Param.s.channel_id"] for r in fake_lvb.received}
        await fake_lvb.wait_for_requests(2, timeout=20)
    finally:
        await engine.stop(10)
        await transport.close()
    for call in calls.values():
        entry = await ledger.get(call.key)
        assert entry is not None and entry.state == State.OK
        assert entry.sent_at is not None and entry.sent_at >= call.at  # never before its instant


@pytest.mark.usefixtures("lvb_env")
def test_only_a_single_owner_ledger_hands_calls_over_early(write_config: WriteConfig) -> None:
    # A shared ledger's claims are leased and reserve the target on the database's clock:
    # claiming there early would hold leases longer and move the 3 s rule by the lead.
    config = _config(
        write_config,
        "http://127.0.0.1:9/lvb",
        f"  - {{name: a, channel_id: c, start: '{_start(60)}', duration: 1m}}",
    )

    class Peered(MemoryLedger):
        owner = "host-a:1"

    alone = Service(config, MemoryLedger(), dry_run=False, clock=lambda: datetime.now(UTC))
    shared = Service(config, Peered(), dry_run=False, clock=lambda: datetime.now(UTC))
    assert alone.engine.lead == STAGE_LEAD > timedelta(0)
    assert shared.engine.lead == timedelta(0)


@pytest.mark.usefixtures("lvb_env")
async def test_a_stop_in_the_last_second_still_sends_the_claimed_call_at_its_instant(
    fake_lvb: FakeLvb, write_config: WriteConfig
) -> None:
    # SIGTERM after a call was claimed early: the drain lets it go at its instant (claimed
    # calls are in flight), it is neither dropped nor sent early
    config = _config(
        write_config,
        fake_lvb.url,
        f"  - {{name: soon, channel_id: s, start: '{_start(2)}', duration: 60s}}",
    )
    now = datetime.now(UTC)
    (call,) = plan(config, now)
    ledger = MemoryLedger()
    transport = Transport()
    engine = Engine(
        Dispatcher(config, transport, ledger, senders=provider_senders),
        lead=timedelta(seconds=5),
    )
    engine.start()
    try:
        assert engine.schedule([call], now) == 1 and engine.in_flight() == 1
        assert await engine.stop(20) == 0  # none had to be cancelled
    finally:
        await transport.close()
    (received,) = fake_lvb.received
    assert received.params["Param.s.channel_id"] == "s"
    entry = await ledger.get(call.key)
    assert entry is not None and entry.state == State.OK
    assert entry.sent_at is not None and entry.sent_at >= call.at
