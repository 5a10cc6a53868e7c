"""One daemon per state directory, and `recsched status` as an operator reads it."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.cli import main
from scheduler.config import CST, Config, load_config
from scheduler.ledger import Entry, State
from scheduler.lock import LOCK_NAME, AlreadyRunning, StateLock, holder_pid
from scheduler.planner import plan
from scheduler.store import SCHEMA_VERSION, Store
from tests.conftest import LVB_KEY

WriteConfig = Callable[[str], Path]
TASK_ID = "18446744073709000042"


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECSCHED_CONFIG", raising=False)


# -- the state-directory lock ------------------------------------------------------------------


def test_a_second_lock_on_the_directory_is_refused_naming_the_holder(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    first = StateLock(directory)
    first.acquire()
    try:
        assert holder_pid(directory / LOCK_NAME) == os.getpid()
        with pytest.raises(AlreadyRunning) as refused:
            StateLock(directory).acquire()
        message = str(refused.value)
        assert f"pid {os.getpid()}" in message
        assert str(directory) in message
        assert "one daemon per state directory" in message
        assert holder_pid(directory / LOCK_NAME) == os.getpid()  # the refusal changed nothing
    finally:
        first.release()
    assert holder_pid(directory / LOCK_NAME) is None
    again = StateLock(directory)
    again.acquire()
    try:
        assert holder_pid(directory / LOCK_NAME) == os.getpid()
    finally:
        again.release()
    assert holder_pid(directory / LOCK_NAME) is None


def test_nobody_holds_a_directory_that_never_had_a_daemon(tmp_path: Path) -> None:
    assert holder_pid(tmp_path / LOCK_NAME) is None


def _daemon_config(write_config: WriteConfig, state: Path) -> Path:
    start = (datetime.now(UTC) + timedelta(hours=1)).astimezone(CST)
    return write_config(
        f"""
providers:
  lvb: {{endpoint: "http://127.0.0.1:9/common_access", appid: 1234, key: "${{LVB_KEY}}"}}
recordings:
  - {{name: news, channel_id: c, start: '{start:%Y-%m-%d %H:%M:%S}', duration: 1m}}
state:
  url: sqlite:///{state}/recsched.db
"""
    )


def test_a_second_daemon_on_the_same_state_directory_is_refused(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    state = tmp_path / "state"
    config = _daemon_config(write_config, state)
    lock = StateLock(state)
    lock.acquire()  # "the first daemon"
    try:
        result = subprocess.run(
            [sys.executable, "-m", "scheduler", "run", "-c", str(config)],
            env={**os.environ, "LVB_KEY": LVB_KEY},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        lock.release()
    assert result.returncode == 1, result.stderr
    assert f"pid {os.getpid()}" in result.stderr
    assert "one daemon per state directory" in result.stderr
    assert str(state) in result.stderr
    assert "Traceback" not in result.stderr
    assert "daemon.started" not in result.stdout
    assert not (state / "recsched.db").exists()  # the refused daemon never opened the ledger


# -- recsched status ---------------------------------------------------------------------------


def _status_config(write_config: WriteConfig, tmp_path: Path, now: datetime) -> Config:
    def at(delta: timedelta) -> str:
        return f"'{(now + delta).astimezone(CST):%Y-%m-%d %H:%M:%S}'"

    hour = timedelta(hours=1)
    text = f"""
providers:
  lvb: {{endpoint: "http://127.0.0.1:9/common_access", appid: 1234, key: "${{LVB_KEY}}"}}
recordings:
  - {{name: live, channel_id: live, start: {at(-hour / 6)}, duration: 40m, chunk: 30m}}
  - {{name: earlier, channel_id: e, start: {at(-3 * hour)}, duration: 30m}}
  - {{name: broken, channel_id: b, start: {at(-2 * hour)}, duration: 30m}}
  - {{name: unsure, channel_id: u, start: {at(-1.5 * hour)}, duration: 30m}}
  - {{name: resent, channel_id: r, start: {at(-hour)}, duration: 30m}}
  - {{name: later, channel_id: l, start: {at(2 * hour)}, duration: 30m}}
state:
  url: sqlite:///{tmp_path}/x/recsched.db
"""
    return load_config(write_config(text), resolve_secrets=False)


def _first_call_entry(config: Config, recording: str, state: State, **changes: Any) -> Entry:
    rec = next(r for r in config.recordings if r.name == recording)
    assert rec.start is not None
    call = next(c for c in plan(config, rec.start) if c.recording == recording)
    sent = call.at + timedelta(milliseconds=20)
    return replace(
        Entry.claimed(call, call.at),
        state=state,
        attempts=1,
        sent_at=sent,
        updated_at=sent + timedelta(seconds=1),
        **changes,
    )


def _write_ledger(config: Config, now: datetime) -> dict[str, Entry]:
    entries = {
        "live": _first_call_entry(config, "live", State.OK, task_id=TASK_ID),
        "earlier": _first_call_entry(config, "earlier", State.OK, task_id="1"),
        "broken": _first_call_entry(config, "broken", State.FAILED, detail="stream not live"),
        "unsure": _first_call_entry(config, "unsure", State.UNCERTAIN, uncertain=True),
        "resent": _first_call_entry(config, "resent", State.OK, uncertain=True, task_id="2"),
    }

    async def write() -> None:
        store = await Store.open(config.state.url)
        try:
            await store.write(list(entries.values()), {"last_seen": str(now.timestamp())})
        finally:
            await store.close()

    asyncio.run(write())
    return entries


def _status(
    config: Config, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    code = main(["status", "-c", config.file, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_json_shows_what_records_now_what_is_next_and_problems_first(
    tmp_path: Path, write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    config = _status_config(write_config, tmp_path, now)
    entries = _write_ledger(config, now)

    code, out, err = _status(config, capsys, "--json")
    assert code == 0, err
    data = json.loads(out)

    (recording,) = data["recording_now"]
    assert (recording["recording"], recording["chunk"]) == ("live", "1/2")
    assert recording["task_id"] == TASK_ID and recording["state"] == "ok"
    assert recording["span_end"] == entries["live"].span_end.astimezone(CST).isoformat()

    outcomes = [(o["recording"], o["state"], o["uncertain"]) for o in data["last_outcomes"]]
    # problems (failed/missed/uncertain, or an ok that may have a duplicate) first, newest
    # first within each group; the ok chunk recording now was updated most recently of all
    assert outcomes == [
        ("resent", "ok", True),
        ("unsure", "uncertain", True),
        ("broken", "failed", False),
        ("live", "ok", False),
        ("earlier", "ok", False),
    ]
    broken = next(o for o in data["last_outcomes"] if o["recording"] == "broken")
    assert broken["detail"] == "stream not live"

    upcoming = [(c["recording"], c["chunk"]) for c in data["next_calls"]]
    assert upcoming == [("live", "2/2"), ("later", "1/1")]  # not live 1/2: it is in the ledger
    assert entries["live"].key not in {c["call_key"] for c in data["next_calls"]}
    assert all(c["at"].endswith("+08:00") for c in data["next_calls"])

    assert data["daemon"]["running"] is False and data["daemon"]["pid"] is None
    assert data["daemon"]["last_seen"] == now.astimezone(CST).isoformat(timespec="seconds")
    assert data["ledger"]["rows"] == 5


def test_status_text_lists_problems_first(
    tmp_path: Path, write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    config = _status_config(write_config, tmp_path, now)
    _write_ledger(config, now)

    code, out, err = _status(config, capsys)
    assert code == 0, err
    assert "daemon: not running" in out
    assert "problems first" in out
    lines = out.splitlines()
    outcomes = lines[lines.index("last outcomes (problems first):") + 1 :]
    failed = next(i for i, line in enumerate(outcomes) if "broken" in line)
    assert "FAILED" in outcomes[failed] and "stream not live" in outcomes[failed]
    plain_ok = [i for i, line in enumerate(outcomes) if line.split()[:1] == ["OK"]]
    plain_ok = [i for i in plain_ok if "uncertain" not in outcomes[i]]
    assert len(plain_ok) == 2 and failed < min(plain_ok)
    assert any("UNCERTAIN" in line and "unsure" in line for line in outcomes)
    now_line = lines[lines.index("recording now (1):") + 1]
    assert "live" in now_line and "chunk 1/2" in now_line and TASK_ID in now_line


def test_status_shows_the_running_daemon(
    tmp_path: Path, write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    config = _status_config(write_config, tmp_path, now)
    _write_ledger(config, now)
    lock = StateLock(tmp_path / "x")
    lock.acquire()
    try:
        code, out, err = _status(config, capsys, "--json")
    finally:
        lock.release()
    assert code == 0, err
    daemon = json.loads(out)["daemon"]
    assert daemon == {
        "running": True,
        "pid": os.getpid(),
        "last_seen": now.astimezone(CST).isoformat(timespec="seconds"),
    }


def test_status_without_a_ledger_says_so_and_creates_none(
    tmp_path: Path, write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _status_config(write_config, tmp_path, datetime.now(UTC))
    for extra in ((), ("--json",)):
        code, out, err = _status(config, capsys, *extra)
        assert code == 1
        assert out == ""
        assert "no ledger at" in err and str(tmp_path / "x" / "recsched.db") in err
        assert "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_status_on_a_ledger_from_a_newer_recsched_fails_cleanly(
    tmp_path: Path, write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    config = _status_config(write_config, tmp_path, now)
    _write_ledger(config, now)

    async def bump() -> None:
        store = await Store.open(config.state.url)
        try:
            await store.write([], {"schema": str(SCHEMA_VERSION + 1)})
        finally:
            await store.close()

    asyncio.run(bump())
    code, out, err = _status(config, capsys)
    gc.collect()  # Store.open leaves the refused engine undisposed: finalize it now
    assert code == 1 and out == ""
    assert "newer recsched" in err and "Traceback" not in err
