"""LVB URLs signed before their instant (LvbSender.prepare) are sent only when they are the
URL the instant itself would sign: same call, same provider settings, same second."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler import lvb_sender
from scheduler.calls import Call
from scheduler.config import Config, load_config
from scheduler.dispatch import Dispatcher
from scheduler.fakes.lvb import FakeLvb
from scheduler.ledger import MemoryLedger, State
from scheduler.planner import plan
from scheduler.provider_senders import provider_senders
from scheduler.providers import lvb
from scheduler.transport import Transport
from tests.test_early_hand_over import FakeTime, _start

OLD_KEY, NEW_KEY = "old-lvb-key-1a2b3c", "new-lvb-key-4d5e6f"


def _config(write_config: Callable[..., Path], endpoint: str, env: str, n: int = 1) -> Config:
    recordings = "".join(
        f"  - {{name: r{i}, channel_id: c{i}, start: '{_start(30)}', duration: 60s}}\n"
        for i in range(n)
    )
    return load_config(
        write_config(
            f"providers:\n  lvb: {{endpoint: '{endpoint}', appid: 1234, key: '${{{env}}}'}}\n"
            f"recordings:\n{recordings}",
            name=f"{env}.yaml",
        )
    )


@pytest.fixture
async def fake_new_key() -> AsyncIterator[FakeLvb]:
    fake = FakeLvb(appid=1234, key=NEW_KEY)
    await fake.start("127.0.0.1", 0)
    try:
        yield fake
    finally:
        await fake.stop()


async def _fire_early(
    config: Config, fake: FakeTime, on_wait: Callable[[Dispatcher], object]
) -> tuple[Call, State]:
    (call,) = plan(config, datetime.now(UTC))
    dispatcher = fake.dispatcher(config, MemoryLedger())
    fake.on_wait = lambda: on_wait(dispatcher)
    try:
        return call, await dispatcher.fire(call, early=True)
    finally:
        await dispatcher.transport.close()


async def test_a_reload_between_signing_and_the_instant_sends_with_the_new_key(
    fake_new_key: FakeLvb, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLD_KEY", OLD_KEY)
    monkeypatch.setenv("NEW_KEY", NEW_KEY)
    old = _config(write_config, fake_new_key.url, "OLD_KEY")
    new = _config(write_config, fake_new_key.url, "NEW_KEY")
    (planned,) = plan(old, datetime.now(UTC))
    fake = FakeTime(planned.at - timedelta(seconds=0.8))
    # the URL was signed with the old key when the call was handed over; the key changes
    # while it waits for its instant (a reload); the fake knows only the new key
    call, state = await _fire_early(old, fake, lambda d: d.use(new))
    assert state == State.OK
    (received,) = fake_new_key.received
    assert received.ok and received.t == str(lvb.expiry(call.at, old.providers["lvb"].sign_ttl))


@pytest.mark.usefixtures("lvb_env")
async def test_a_send_in_a_later_second_is_signed_for_its_own_second(
    fake_lvb: FakeLvb, write_config: Callable[..., Path]
) -> None:
    config = _config(write_config, fake_lvb.url, "LVB_KEY")
    (planned,) = plan(config, datetime.now(UTC))
    fake = FakeTime(planned.at - timedelta(seconds=0.8))

    def late(_: Dispatcher) -> None:  # the instant is reached 2.5 s late (a stalled host)
        fake.at(planned.at + timedelta(seconds=2.5))

    call, state = await _fire_early(config, fake, late)
    assert state == State.OK
    (received,) = fake_lvb.received
    ttl = config.providers["lvb"].sign_ttl
    assert received.t == str(lvb.expiry(call.at + timedelta(seconds=2.5), ttl))
    assert received.t != str(lvb.expiry(call.at, ttl))


@pytest.mark.usefixtures("lvb_env")
async def test_signed_urls_that_are_never_sent_are_not_kept_without_bound(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lvb_sender, "PREPARED_MAX", 3)
    config = _config(write_config, "http://127.0.0.1:9/lvb", "LVB_KEY", n=5)
    calls = plan(config, datetime.now(UTC))
    dispatcher = Dispatcher(config, Transport(), MemoryLedger(), senders=provider_senders)
    sender = dispatcher.senders["lvb"]
    assert isinstance(sender, lvb_sender.LvbSender)
    for call in calls:  # each suppressed or missed, say: none is ever sent
        sender.prepare(call)
    assert list(sender._prepared) == [c.key for c in calls[-3:]]  # the oldest went first
    await dispatcher.transport.close()


@pytest.mark.usefixtures("lvb_env")
async def test_a_dry_run_signs_nothing_ahead(write_config: Callable[..., Path]) -> None:
    # a preview sends nothing: URLs signed ahead would only pile up, unsent, to the bound
    config = _config(write_config, "http://127.0.0.1:9/lvb", "LVB_KEY")
    (call,) = plan(config, datetime.now(UTC))
    fake = FakeTime(call.at - timedelta(seconds=0.8))
    dispatcher = fake.dispatcher(config, MemoryLedger(), dry_run=True)
    sender = dispatcher.senders["lvb"]
    assert isinstance(sender, lvb_sender.LvbSender)
    try:
        assert await dispatcher.fire(call, early=True) == State.OK
    finally:
        await dispatcher.transport.close()
    assert not sender._prepared
