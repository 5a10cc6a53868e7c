"""Shared fixtures: the fake LVB provider on loopback, config files, foreign host zones."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler import logs
from scheduler.fake_lvb import FakeLvb

APPID = 1234
#: The secret every test uses; test_dispatch.py and test_e2e.py grep log output for it.
LVB_KEY = "test-lvb-key-0f3a9c"
HOST_ZONES = ["Asia/Shanghai", "UTC", "America/New_York"]


@pytest.fixture
async def fake_lvb() -> AsyncIterator[FakeLvb]:
    fake = FakeLvb(appid=APPID, key=LVB_KEY)
    await fake.start("127.0.0.1", 0)
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def lvb_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("LVB_KEY", LVB_KEY)
    return {"LVB_KEY": LVB_KEY}


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write YAML text to a file and return its path."""

    def write(text: str, name: str = "recsched.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(params=HOST_ZONES)
def host_tz(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with the process time zone set to each of HOST_ZONES."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        yield request.param
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.fixture(autouse=True)
def _state_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default ledger (and its lock) live under $XDG_STATE_HOME: keep it per test."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


@pytest.fixture(autouse=True)
def _json_logs_to_stdout() -> None:
    """Every test logs JSON lines to the (captured) stdout, as the daemon does."""
    logs.configure(json=True)


class LogCapture:
    """JSON log lines written by the code under test, parsed."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.text.splitlines() if line.strip()]
        return [e for e in lines if name is None or e.get("event") == name]


@pytest.fixture
def captured_logs() -> LogCapture:
    capture = LogCapture()
    logs.configure(capture.stream, json=True)
    return capture
