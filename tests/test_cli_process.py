"""`recsched check` and `plan` load only the pure core: no asyncio, logging framework, HTTP,
scheduler or database library (together a fifth of a small check's time)."""

from __future__ import annotations

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
