"""`recsched reload` (the unit's ExecReload=) against a real daemon: it exits 0 only once the edit
is applied, 2 with every located problem when the daemon refused it, 1 when no daemon answers;
and the paths the daemon and the service user's commands agree on."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler import paths
from scheduler.config import CST
from scheduler.fakes.lvb import FakeLvb
from tests.daemon_process import DaemonProcess

pytestmark = pytest.mark.usefixtures("lvb_env")


#: Every recording starts here, so that editing one leaves the others' calls as they were.
LATER = (datetime.now(UTC) + timedelta(hours=1)).astimezone(CST)


def _config(fake: FakeLvb, state: Path, *channels: str) -> str:
    later = LATER
    recordings = "".join(
        f"  - {{name: {c}, channel_id: {c}, start: '{later:%Y-%m-%d %H:%M:%S}', duration: 60s,"
        " chunk: 30s}\n"
        for c in channels
    )
    return (
        f"providers:\n  lvb: {{endpoint: '{fake.url}', appid: 1234, key: '${{LVB_KEY}}'}}\n"
        f"state: {{url: 'sqlite:///{state}/recsched.db'}}\nrecordings:\n{recordings}"
    )


def _socket_exists() -> bool:
    return Path(os.environ["RECSCHED_CONTROL_SOCKET"]).exists()


async def _reload_command(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scheduler",
        "reload",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_reload_waits_for_the_daemon_and_reports_its_verdict(
    fake_lvb: FakeLvb, tmp_path: Path
) -> None:
    path = tmp_path / "recsched.yaml"
    path.write_text(_config(fake_lvb, tmp_path, "a"))
    path.chmod(0o600)
    daemon = await DaemonProcess.start(path)
    await daemon.wait_for("control.listening")
    await daemon.wait_for("plan.loaded")

    path.write_text(_config(fake_lvb, tmp_path, "a", "b"))
    code, out, err = await _reload_command()
    assert code == 0, err
    # The answer comes after the daemon applied it, with the same counts it logged.
    reloaded = daemon.events("config.reloaded")
    assert len(reloaded) == 1 and reloaded[0]["added"] == 2
    assert "added 2, removed 0, changed 0, unchanged 2" in out

    path.write_text(_config(fake_lvb, tmp_path, "a", "b") + "  - {name: c, cron: nonsense}\n")
    code, out, err = await _reload_command()
    assert code == 2
    assert "reload rejected (2 problem(s)); the running schedule is unchanged" in err
    assert f"{path}:7:" in err and "recordings[2].channel_id: is required" in err
    assert "recordings[2].cron" in err
    assert len(daemon.events("config.rejected")) == 1
    assert daemon.process.returncode is None  # still running, on the schedule it had

    path.write_text(_config(fake_lvb, tmp_path, "a"))
    code, out, _ = await _reload_command()
    assert code == 0 and "removed 2" in out
    assert await daemon.terminate() == 0, daemon.stderr
    assert not _socket_exists()  # removed at exit


async def test_reload_without_a_daemon_fails_and_says_so() -> None:
    code, _, err = await _reload_command()
    assert code == 1
    assert "reload not done: no recsched daemon answers on" in err
    assert "systemctl status recsched" in err


async def test_a_second_daemon_does_not_steal_the_socket(fake_lvb: FakeLvb, tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    for directory in (first_dir, second_dir):
        directory.mkdir()
        config = directory / "recsched.yaml"
        config.write_text(_config(fake_lvb, directory, directory.name))
        config.chmod(0o600)
    first = await DaemonProcess.start(first_dir / "recsched.yaml")
    await first.wait_for("control.listening")
    second = await DaemonProcess.start(second_dir / "recsched.yaml")
    busy = await second.wait_for("control.unavailable")
    assert "another recsched daemon is listening there" in busy["error"]
    await second.wait_for("plan.loaded")  # runs on; SIGHUP still reloads it
    code, out, _ = await _reload_command()
    assert code == 0 and "one/recsched.yaml" in out  # the first daemon still answers
    assert await second.terminate() == 0
    assert _socket_exists()  # not the second's to remove
    assert await first.terminate() == 0


def test_state_directory_systemd_then_the_service_users_own_then_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "var-lib-recsched"
    system.mkdir()
    monkeypatch.setattr(paths, "SYSTEM_STATE_DIR", system)
    xdg = {"XDG_STATE_HOME": str(tmp_path / "xdg")}
    assert paths.state_directory({"STATE_DIRECTORY": "/var/lib/x:/var/lib/y"}) == Path("/var/lib/x")
    # The unit's user, outside the unit (sudo -u recsched recsched status): the unit's ledger.
    assert paths.state_directory(xdg, uid=system.stat().st_uid) == system
    # Anyone else: their own.
    assert paths.state_directory(xdg, uid=system.stat().st_uid + 1) == tmp_path / "xdg/recsched"
    monkeypatch.setattr(paths, "SYSTEM_STATE_DIR", tmp_path / "absent")
    assert paths.state_directory(xdg, uid=os.geteuid()) == tmp_path / "xdg/recsched"


def test_control_socket_from_the_environment_only() -> None:
    assert paths.control_socket({"RECSCHED_CONTROL_SOCKET": "/x.sock", "RUNTIME_DIRECTORY": "/r"})
    assert paths.control_socket({"RUNTIME_DIRECTORY": "/run/recsched"}) == Path(
        "/run/recsched/control.sock"
    )
    assert paths.control_socket({"XDG_RUNTIME_DIR": "/run/user/1000"}) == Path(
        "/run/user/1000/recsched/control.sock"
    )
    beside_ledger = paths.control_socket({"STATE_DIRECTORY": "/var/lib/recsched"})
    assert beside_ledger == Path("/var/lib/recsched/control.sock")
