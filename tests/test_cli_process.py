"""`recsched check` and `plan` as processes: they load only the pure core (no asyncio, logging
framework, HTTP, scheduler or database library: together a fifth of a small check's time), and
they exit without tearing down the plan they built, yet every line they print arrives and the
exit status is theirs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_CONFIG = """
providers:
  lvb: {appid: 1234, key: "${LVB_KEY}"}
recordings:
  - {name: r, channel_id: c, cron: "0 9 * * *", duration: 30m}
"""
_HEAVY = ("asyncio", "structlog", "aiohttp", "apscheduler", "sqlalchemy", "logging")


@pytest.mark.parametrize("command", [["check"], ["plan", "--hours", "48"], ["plan", "--json"]])
def test_check_and_plan_load_no_io_framework(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "recsched.yaml"
    config.write_text(_CONFIG)
    config.chmod(0o600)
    probe = (
        "import sys\n"
        "from scheduler import cli\n"
        "code = cli.main(sys.argv[1:])\n"
        f"print(sorted(m for m in {_HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
        "raise SystemExit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, command[0], "-c", str(config), *command[1:]],
        env={"LVB_KEY": "k", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"


_ENV = {"LVB_KEY": "k", "PATH": "/usr/bin:/bin"}
_MANY = """
providers:
  lvb: {appid: 1234, key: "${LVB_KEY}"}
recordings:
""" + "".join(
    f"  - {{name: r{i}, channel_id: c{i}, cron: '{i % 60} * * * *', duration: 2h}}\n"
    for i in range(40)
)


def _recsched(*args: str, stdin_config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler", *args, "-c", str(stdin_config)],
        env=_ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_plan_json_prints_every_call_before_it_exits(tmp_path: Path) -> None:
    """Exiting without teardown must not lose buffered output: a pipe gets every line."""
    config = tmp_path / "recsched.yaml"
    config.write_text(_MANY)
    config.chmod(0o600)
    table = _recsched("plan", "--hours", "48", stdin_config=config)
    count = int(table.stdout.split()[0])  # "N call(s) from ..."
    assert count > 1000  # more than one pipe buffer of JSON lines
    done = _recsched("plan", "--hours", "48", "--json", stdin_config=config)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == count
    assert all(json.loads(line)["action"] == "Live_Tape_Start" for line in lines)


def test_check_exits_2_on_an_invalid_file_with_the_problem_on_stderr(tmp_path: Path) -> None:
    config = tmp_path / "recsched.yaml"
    config.write_text(_CONFIG.replace("duration: 30m", "duration: 30 minutes"))
    config.chmod(0o600)
    done = _recsched("check", stdin_config=config)
    assert done.returncode == 2
    assert "recordings[0].duration" in done.stderr
    assert "Traceback" not in done.stderr


def test_plan_into_a_reader_that_stops_early_exits_0(tmp_path: Path) -> None:
    """`recsched plan | head -1`: no traceback, no error status."""
    config = tmp_path / "recsched.yaml"
    config.write_text(_MANY)
    config.chmod(0o600)
    process = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "plan", "--json", "-c", str(config)],
        env=_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    assert json.loads(process.stdout.readline())["recording"].startswith("r")
    process.stdout.close()  # the reader goes away with the rest unread
    errors = process.stderr.read()
    assert process.wait(timeout=60) == 0
    assert "Traceback" not in errors
