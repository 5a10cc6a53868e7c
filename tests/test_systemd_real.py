"""recsched under a real systemd: Debian 12's systemd 252 as PID 1 of a systemd-nspawn container.

The install is the README's, line by line (its "Install and run under systemd" block, with the
two `sudoedit` steps done by writing the files), and every command of its "Day to day" table is
run verbatim. In between: READY and STATUS, real-time calls answered by a fake provider inside
the container, `systemctl reload` with a good and a broken edit, an invalid file at start (no
restart loop), the watchdog (a healthy daemon kept, a stopped one restarted), `kill -9` with
recovery and no chunk sent twice, the sandbox's exposure, and the key in no `systemctl show`,
`ps`, environment or journal output.

Needs root, systemd-nspawn and debootstrap (`apt-get install systemd-container debootstrap`);
the Debian image is built once and cached (tests/systemd_real/build-image.sh). Without them the
tests are skipped with the reason in the summary; with RECSCHED_REQUIRE_NSPAWN=1 (set by
.ci/run) they fail instead, so CI cannot pass without having run them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import CST
from tests.systemd_real.machine import CannotBoot, Machine, build_image, why_not

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
UNIT = "recsched"
CONFIG = "/etc/recsched/recsched.yaml"
KEY_FILE = "/etc/recsched/lvb_key"
CHUNK_S = 5
MAX_EXPOSURE = 2.0

#: Its own step (`pytest -m nspawn`): the default run, the README's test command, leaves it out.
pytestmark = [pytest.mark.nspawn, pytest.mark.timeout(1200)]


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else len(README)]


def install_steps() -> list[str]:
    """The command lines of the README's install block, comments dropped."""
    block = re.search(r"```sh\n(.*?)```", _section("Install and run under systemd"), re.S)
    assert block, "README: no ```sh block under 'Install and run under systemd'"
    return [ln.strip() for ln in block.group(1).splitlines() if ln.strip() and ln[0] != "#"]


def day_to_day() -> dict[str, list[str]]:
    """task -> the commands (in backticks) of the README's "Day to day" table."""
    table = _section("Install and run under systemd").split("Day to day:", 1)[1]
    rows: dict[str, list[str]] = {}
    for line in table.splitlines():
        if not line.startswith("| ") or line.startswith(("| task", "|---")):
            if rows and not line.startswith("|"):
                break
            continue
        task, rest = line[2:].split(" | ", 1)
        rows[task] = [c.replace("\\|", "|") for c in re.findall(r"`((?:[^`\\]|\\.)+)`", rest)]
    return rows


def _yaml(start: datetime, extra: str = "") -> str:
    return f"""\
providers:
  lvb:
    endpoint: http://localhost:8080/common_access
    appid: 1234
    key: ${{cred:lvb_key}}
recordings:
  - name: evening-news
    channel_id: 8888_news
    start: {start:%Y-%m-%d %H:%M:%S}
    duration: 30m
    chunk: {CHUNK_S}s
{extra}http:
  listen: 127.0.0.1:9102
"""


class Rig:
    """The booted container, recsched installed the README's way, a fake provider beside it."""

    def __init__(self, machine: Machine, key: str, fake_log: Path) -> None:
        self.m = machine
        self.key = key
        self.fake_log = fake_log
        self.fake: subprocess.Popen[bytes] | None = None
        self.start = datetime.now(CST)
        self.yaml = ""

    def write_config(self, text: str) -> None:
        path = self.m.path(CONFIG)
        path.write_text(text, encoding="utf-8")  # keeps its owner and mode: an edit in place

    def received(self, channel: str = "8888_news") -> list[dict[str, Any]]:
        if not self.fake_log.exists():
            return []
        lines = self.fake_log.read_text(encoding="utf-8", errors="replace").splitlines()
        events = [json.loads(x) for x in lines if x.startswith("{")]
        return [
            e
            for e in events
            if e.get("event") == "fake.received" and e.get("channel_id") == channel and e["ok"]
        ]

    def journal(self, *args: str) -> str:
        return self.m.sh(f"journalctl -u {UNIT} -o cat --no-pager {' '.join(args)}").stdout

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in self.journal().splitlines():
            if line.startswith("{") and f'"event": "{name}"' in line:
                found.append(json.loads(line))
        return found

    def main_pid(self) -> int:
        """The daemon's PID; fails the test if the unit has none (a `kill 0` would signal
        everything in the caller's process group)."""
        pid = int(self.m.show(UNIT, "MainPID"))
        assert pid > 0, f"the unit has no main process:\n{self.status()}"
        return pid

    def status(self) -> str:
        return self.m.sh(f"systemctl status {UNIT} --no-pager -l -n 30", check=False).stdout

    def wait_active(self) -> None:
        self.m.wait("the unit active", lambda: self.m.show(UNIT, "ActiveState") == "active")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    reason = why_not()
    if reason is not None:
        _cannot(reason)
    try:
        machine = Machine.boot(build_image())
    except CannotBoot as exc:
        _cannot(str(exc))
    try:
        # The project as the operator has it (a checkout, uncommitted edits included).
        files = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        src = machine.path("/src")
        for name in filter(None, files):
            relative = name.decode()
            if (ROOT / relative).is_file():
                (src / relative).parent.mkdir(parents=True, exist_ok=True)
                (src / relative).write_bytes((ROOT / relative).read_bytes())
                (src / relative).chmod((ROOT / relative).stat().st_mode & 0o777)
        key = f"nspawn-key-{secrets.token_hex(8)}"
        rig = Rig(machine, key, tmp_path_factory.mktemp("nspawn") / "fake.log")
        try:
            yield _install(rig)
        finally:
            if rig.fake is not None:
                rig.fake.terminate()
                rig.fake.wait(timeout=10)
    finally:
        machine.destroy()


def follow_install(rig: Rig, steps: list[str], recsched: str, run: Callable[[str], object]) -> None:
    """Walk a README install block: the `sudoedit` steps are done by writing the files (the
    schedule starts 15 s from then), the fake provider starts before the first `systemctl`
    step (the program is installed by then), every other line goes to `run` verbatim."""
    for step in steps:
        if step.startswith("sudoedit "):
            target = step.split()[1]
            if target == CONFIG:
                rig.start = datetime.now(CST).replace(microsecond=0) + timedelta(seconds=15)
                rig.yaml = _yaml(rig.start)
                rig.write_config(rig.yaml)
            elif target == KEY_FILE:
                rig.m.path(KEY_FILE).write_text(rig.key + "\n", encoding="utf-8")
            else:
                raise AssertionError(f"README install edits an unknown file: {step}")
            continue
        if "systemctl" in step and rig.fake is None:
            rig.fake = rig.m.spawn(
                f"exec {recsched} fake-provider --port 8080", rig.fake_log, {"LVB_KEY": rig.key}
            )
        run(step)


def _install(rig: Rig) -> Rig:
    """The README's manual install block, line by line; pip needs the package index, so the
    installer runs in every namespace of the container but its network one."""
    follow_install(
        rig,
        install_steps(),
        "/opt/recsched/bin/recsched",
        lambda step: rig.m.sh(step, cwd="/src", net="install.sh" not in step, timeout=600),
    )
    return rig


def _cannot(reason: str) -> None:
    message = f"REAL SYSTEMD NOT TESTED: {reason}"
    if os.environ.get("RECSCHED_REQUIRE_NSPAWN") == "1":
        pytest.fail(message)
    pytest.skip(message)


def test_install_leaves_the_files_as_the_readme_says(rig: Rig) -> None:
    ls = rig.m.sh(f"stat -c '%a %U:%G %n' /etc/recsched {CONFIG} {KEY_FILE}").stdout
    assert ls.splitlines() == [
        "750 root:recsched /etc/recsched",
        f"640 root:recsched {CONFIG}",
        f"600 root:root {KEY_FILE}",
    ]


def test_starts_ready_with_a_status_line(rig: Rig) -> None:
    rig.wait_active()
    assert rig.m.show(UNIT, "Type") == "notify"
    status = rig.m.show(UNIT, "StatusText")
    assert re.fullmatch(r"\d+ call\(s\) armed, next call .* CST, \d+ recording now", status)
    journal = rig.m.sh("journalctl -b --no-pager -o cat").stdout
    assert "already exists but the mode is different" not in journal  # ConfigurationDirectoryMode


def test_real_time_calls_are_answered(rig: Rig) -> None:
    rig.m.wait("two chunks answered", lambda: len(rig.received()) >= 2, timeout=90)
    assert rig.events("call.ok")
    healthz = rig.m.sh(
        'python3 -c "import urllib.request as u; '
        "print(u.urlopen('http://127.0.0.1:9102/healthz').read().decode())\""
    )
    assert healthz.stdout.strip() == "ok"


def test_reload_applies_a_good_edit(rig: Rig) -> None:
    pid = rig.main_pid()
    soon = datetime.now(CST).replace(microsecond=0) + timedelta(seconds=8)
    extra = f"""\
  - name: extra
    channel_id: 8888_extra
    start: {soon:%Y-%m-%d %H:%M:%S}
    duration: {2 * CHUNK_S}s
    chunk: {CHUNK_S}s
"""
    # and a state: change, which applies on restart only: `config.restart_needed`, a warning
    # the "by journal priority" recipe must show later
    rig.yaml = _yaml(rig.start, extra) + "state:\n  retention: 20d\n"
    rig.write_config(rig.yaml)
    done = rig.m.sh(f"systemctl reload {UNIT}", check=False)
    assert done.returncode == 0, done.stderr + rig.status()
    (reloaded,) = rig.events("config.reloaded")
    assert reloaded["added"] == 2
    assert rig.main_pid() == pid
    rig.m.wait("the added recording's chunks", lambda: len(rig.received("8888_extra")) == 2, 60)


def test_reload_refuses_a_broken_edit_and_says_why(rig: Rig) -> None:
    pid = rig.main_pid()
    broken = '\n  - name: broken\n    cron: "61 * * * *"\nhttp:'
    rig.write_config(rig.yaml.replace("\nhttp:", broken))
    done = rig.m.sh(f"systemctl reload {UNIT}", check=False)
    assert done.returncode != 0
    status = rig.status()
    assert f"{CONFIG}:" in status and "recordings[2].channel_id: is required" in status, status
    assert "recordings[2].cron" in status, status
    assert "credential" not in status.lower() and "Permission denied" not in status
    assert rig.main_pid() == pid and rig.m.show(UNIT, "ActiveState") == "active"
    assert rig.events("config.rejected")
    before = len(rig.received())  # the running schedule goes on
    rig.m.wait("the next chunk after the refusal", lambda: len(rig.received()) > before, 30)
    rig.write_config(rig.yaml)


def test_an_invalid_file_at_start_fails_the_unit_without_a_restart_loop(rig: Rig) -> None:
    rig.m.sh(f"systemctl stop {UNIT}")
    restarts = int(rig.m.show(UNIT, "NRestarts"))
    rig.write_config(rig.yaml.replace("chunk: 5s", "chunk: 5 seconds", 1))
    assert rig.m.sh(f"systemctl start {UNIT}", check=False).returncode != 0
    # Watch for two RestartSec= periods: a restart loop would show within one.
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        assert rig.m.show(UNIT, "ActiveState") == "failed"
        assert int(rig.m.show(UNIT, "NRestarts")) == restarts
        time.sleep(0.5)
    status = rig.status()
    assert "status=2" in status and f"{CONFIG}:" in status and "recordings[0].chunk" in status
    rig.write_config(rig.yaml)
    rig.m.sh(f"systemctl start {UNIT}")
    rig.wait_active()


def test_watchdog_keeps_a_healthy_daemon_and_restarts_a_stopped_one(rig: Rig) -> None:
    dropin = rig.m.path(f"/etc/systemd/system/{UNIT}.service.d/watchdog.conf")
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text("[Service]\nWatchdogSec=6\n", encoding="utf-8")
    try:
        rig.m.sh(f"systemctl daemon-reload && systemctl restart {UNIT}")
        rig.wait_active()
        pid, restarts = rig.main_pid(), int(rig.m.show(UNIT, "NRestarts"))
        pings = {rig.m.show(UNIT, "WatchdogTimestampMonotonic")}
        deadline = time.monotonic() + 13  # two watchdog periods and a bit
        while time.monotonic() < deadline:
            pings.add(rig.m.show(UNIT, "WatchdogTimestampMonotonic"))
            time.sleep(0.5)
        assert rig.main_pid() == pid and int(rig.m.show(UNIT, "NRestarts")) == restarts
        assert len(pings) >= 3  # pinged all along
        rig.m.sh(f"kill -STOP {pid}")
        rig.m.wait(
            "a restart by the watchdog",
            lambda: (
                rig.m.show(UNIT, "MainPID") not in ("0", str(pid))
                and rig.m.show(UNIT, "ActiveState") == "active"
            ),
            timeout=40,
        )
        assert int(rig.m.show(UNIT, "NRestarts")) == restarts + 1
        assert "Watchdog timeout" in rig.m.sh("journalctl -b --no-pager -o cat").stdout
    finally:
        dropin.unlink()
        rig.m.sh(f"systemctl daemon-reload && systemctl restart {UNIT}")
        rig.wait_active()


def test_kill_9_restarts_and_recovers_without_a_second_send(rig: Rig) -> None:
    pid = rig.main_pid()
    recovered = len(rig.events("recovery.done"))
    rig.m.sh(f"kill -9 {pid}")
    rig.m.wait(
        "the restart after kill -9",
        lambda: (
            rig.m.show(UNIT, "MainPID") not in ("0", str(pid))
            and rig.m.show(UNIT, "ActiveState") == "active"
        ),
        timeout=40,
    )
    rig.m.wait("recovery.done", lambda: len(rig.events("recovery.done")) > recovered, 20)
    before = len(rig.received())
    rig.m.wait("a chunk after the restart", lambda: len(rig.received()) > before, 30)
    starts = [e["start_time"] for e in rig.received()]
    assert len(starts) == len(set(starts)), "a chunk reached the provider twice"


def test_sandbox_exposure_of_the_running_unit(rig: Rig) -> None:
    out = rig.m.sh(f"systemd-analyze security {UNIT} --no-pager").stdout
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert match, out
    assert float(match.group(1)) <= MAX_EXPOSURE


def test_the_key_is_in_no_output(rig: Rig) -> None:
    pid = rig.main_pid()
    outputs = {
        "systemctl show": rig.m.sh(f"systemctl show {UNIT}").stdout,
        "systemctl status": rig.status(),
        "ps": rig.m.sh("ps -eww -o pid,user,args").stdout,
        "environ": rig.m.sh(f"tr '\\0' '\\n' < /proc/{pid}/environ").stdout,
        "journal": rig.m.sh("journalctl -b -o export --no-pager").stdout,
    }
    leaks = [name for name, text in outputs.items() if rig.key in text]
    assert leaks == []
    assert rig.key in rig.m.sh(f"cat {KEY_FILE}").stdout  # the search can find it


def test_every_day_to_day_command_works_verbatim(rig: Rig) -> None:
    rows = day_to_day()
    assert set(rows) == {
        "is it up, what next",
        "what is recording, what failed",
        "apply an edit",
        "logs",
        "only problems",
        "warnings and errors, by journal priority",
        "one recording",
        "stop",
    }
    run = {task: [rig.m.sh(cmd, check=False) for cmd in cmds] for task, cmds in rows.items()}
    for task, results in run.items():
        for cmd, done in zip(rows[task], results, strict=True):
            assert done.returncode == 0, f"{task}: `{cmd}` exited {done.returncode}: {done.stderr}"
    (status,) = run["is it up, what next"]
    assert "active (running)" in status.stdout and "call(s) armed" in status.stdout
    (ledger,) = run["what is recording, what failed"]
    assert "daemon: running" in ledger.stdout and "evening-news" in ledger.stdout
    (logs,) = run["logs"]
    objects = _json_stream(logs.stdout)
    assert {"daemon.started", "call.ok", "config.reloaded"} <= {o["event"] for o in objects}
    (problems,) = run["only problems"]
    levels = {o["level"] for o in _json_stream(problems.stdout)}
    assert "error" in levels and levels <= {"error", "warning"}  # config.rejected, provoked
    (by_priority,) = run["warnings and errors, by journal priority"]
    lines = by_priority.stdout.splitlines()
    # the refused reload, as the daemon logged it (JSON, error) and as `recsched reload` said it
    assert any('"event": "config.rejected"' in line for line in lines), by_priority.stdout
    assert any(line.startswith("recsched: reload rejected") for line in lines)
    # a warning too (PRIORITY 4), not only errors
    assert any('"event": "config.restart_needed"' in line for line in lines), by_priority.stdout
    # and nothing logged at info: `call.ok` is not a warning
    assert not any('"event": "call.ok"' in line for line in lines)
    assert not any(line.startswith("<") for line in lines)  # journald stripped the prefix
    (one,) = run["one recording"]
    mine = _json_stream(one.stdout)
    assert mine and {o["recording"] for o in mine} == {"evening-news"}
    assert rig.m.show(UNIT, "ActiveState") == "inactive"  # the last row stopped it
    assert rig.m.show(UNIT, "Result") == "success" and rig.m.show(UNIT, "ExecMainStatus") == "0"
    assert rig.events("daemon.stopped")


def _json_stream(text: str) -> list[dict[str, Any]]:
    """jq's output: a stream of pretty-printed objects."""
    decoder, objects, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        while text[at].isspace():
            at += 1
        obj, at = decoder.raw_decode(text, at)
        objects.append(obj)
    return objects
