"""The shipped systemd unit: it parses, it is hardened, and it says what the daemon relies on.

`systemd-analyze verify` exits 0 on unknown keys and unparsable values (systemd 252 only warns on
stderr, e.g. `WatchdogSecs=` or `Restart=sometimes`), so stderr is checked as well as the status.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "recsched.service"
INSTALLED = "/usr/local/bin/recsched"
MAX_EXPOSURE = 2.0

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _recsched() -> str:
    """The venv's console script, so that verify finds every Exec*= binary."""
    beside_python = Path(sys.executable).parent / "recsched"
    found = str(beside_python) if beside_python.exists() else shutil.which("recsched")
    assert found, "recsched is not installed in this environment (pip install -e .)"
    return found


def _render(text: str) -> str:
    return text.replace(INSTALLED, _recsched())


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args], capture_output=True, text=True, timeout=60, check=False
    )


def _settings(text: str) -> list[tuple[str, str]]:
    """(key, value) for every setting line, in order, comments and sections skipped."""
    pairs = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a setting: {raw!r}"
        pairs.append((key.strip(), value.strip()))
    return pairs


def _values(text: str, key: str) -> list[str]:
    return [value for k, value in _settings(text) if k == key]


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    path = tmp_path / "recsched.service"
    path.write_text(_render(UNIT.read_text(encoding="utf-8")), encoding="utf-8")
    return path


def _unit_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "recsched" in line]


@needs_analyze
def test_verify_passes_without_a_warning(rendered: Path) -> None:
    result = _analyze("verify", str(rendered))
    assert result.returncode == 0, result.stderr
    assert _unit_lines(result.stderr) == []


@needs_analyze
def test_verify_catches_what_it_only_warns_about(rendered: Path) -> None:
    """Guards the check above: a misspelt key passes verify's exit status, not its stderr."""
    rendered.write_text(rendered.read_text().replace("WatchdogSec=", "WatchdogSecs="))
    result = _analyze("verify", str(rendered))
    assert result.returncode == 0
    assert any("Unknown key 'WatchdogSecs'" in line for line in _unit_lines(result.stderr))


def _exposure(output: str) -> float:
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert match, output
    return float(match.group(1))


@needs_analyze
def test_security_exposure_is_low(rendered: Path) -> None:
    result = _analyze("security", "--offline=yes", "--threshold=20", str(rendered))
    assert result.returncode == 0, result.stdout + result.stderr
    exposure = _exposure(result.stdout)
    assert exposure <= MAX_EXPOSURE, result.stdout
    print(f"overall exposure level: {exposure}")


@needs_analyze
def test_the_threshold_rejects_an_unhardened_unit(tmp_path: Path) -> None:
    bare = tmp_path / "bare.service"
    bare.write_text(f"[Service]\nType=notify\nExecStart={_recsched()} run -c /x.yaml\n")
    result = _analyze("security", "--offline=yes", "--threshold=20", str(bare))
    assert result.returncode != 0
    assert _exposure(result.stdout) > MAX_EXPOSURE


def test_unit_declares_what_the_daemon_relies_on() -> None:
    text = UNIT.read_text(encoding="utf-8")
    one = {key: _values(text, key) for key, _ in _settings(text)}
    assert one["Type"] == ["notify"]
    assert one["NotifyAccess"] == ["main"]
    assert one["WatchdogSec"] == ["30"]
    # Validation happens in `run` (exit 2, never restarted); an ExecStartPre= check would be
    # restarted every RestartSec= whatever its exit status.
    assert "ExecStartPre" not in one
    assert one["ExecStart"] == [f"{INSTALLED} run -c /etc/recsched/recsched.yaml"]
    assert one["RestartPreventExitStatus"] == ["2"]
    # The daemon, which holds its credentials, validates and answers over its control socket;
    # a `recsched check` here could not read them on systemd 252..254 (systemd#35227).
    assert one["ExecReload"] == [f"{INSTALLED} reload"]
    assert one["RuntimeDirectory"] == ["recsched"]
    assert one["ConfigurationDirectoryMode"] == ["0750"]  # as install.sh makes it: no warning
    assert one["SystemCallErrorNumber"] == ["EPERM"]  # a filtered call fails, no SIGSYS kill
    assert one["Restart"] == ["on-failure"]
    assert one["TimeoutStopSec"] == ["45"]
    assert one["KillSignal"] == ["SIGTERM"]
    assert one["User"] == ["recsched"] and one["Group"] == ["recsched"]  # config can be 0640
    assert one["StateDirectory"] == ["recsched"]
    assert one["StateDirectoryMode"] == ["0700"]
    assert one["LoadCredential"] == ["lvb_key:/etc/recsched/lvb_key"]
    assert one["CapabilityBoundingSet"] == [""]
    assert one["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    assert "Documentation" not in one


def test_no_secret_in_the_environment() -> None:
    text = UNIT.read_text(encoding="utf-8")
    environment = _values(text, "Environment") + _values(text, "EnvironmentFile")
    assert environment == ["PYTHONUNBUFFERED=1"]
    assert not [line for line in environment if re.search(r"(?i)key|secret|token", line)]
