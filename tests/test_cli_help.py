"""What an operator with only the installed program learns from it: `--help` names every
provider and where the manual is, `--log-level` reaches the logger, the demo's file is private."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from scheduler import cli, demo, logs
from scheduler.cli import main


def _help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping


def test_help_speaks_of_every_provider(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(capsys)
    assert "Live_Tape_Start" in out
    assert "web-page recording function" in out
    assert "type: lvb" in out and "type: web" in out


def test_help_points_to_the_installed_docs_not_a_readme_it_does_not_ship(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _help(capsys)
    assert "See README.md" not in out  # a wheel or .deb user has no checkout
    assert "/usr/share/doc/recsched/README.md" in out
    assert "https://" in out


class Stop(Exception):
    """Raised by a stand-in once the command has configured its logging."""


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def configure(stream: Any = None, **kwargs: Any) -> None:
        calls.append(kwargs)

    def stop(*_: Any, **__: Any) -> Any:
        raise Stop

    monkeypatch.setattr(logs, "configure", configure)
    monkeypatch.setattr(cli, "load_config", stop)
    monkeypatch.setattr(demo, "run_demo", stop)
    return calls


@pytest.mark.parametrize("command", [["run", "-c", "x.yaml"], ["demo"]])
@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
def test_log_level_reaches_the_logger(
    configured: list[dict[str, Any]], command: list[str], level: str
) -> None:
    with pytest.raises(Stop):
        main(["--log-level", level, *command])
    assert configured and configured[0]["level"] == level


@pytest.mark.parametrize("command", [["run", "-c", "x.yaml"], ["demo"]])
def test_log_level_defaults_to_info(configured: list[dict[str, Any]], command: list[str]) -> None:
    with pytest.raises(Stop):
        main(command)
    assert configured[0]["level"] == "info"


def test_log_level_refuses_an_unknown_level(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--log-level", "verbose", "run", "-c", "x.yaml"])
    assert info.value.code == 2
    assert "invalid choice: 'verbose'" in capsys.readouterr().err


def test_demo_writes_its_config_readable_by_its_owner_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = os.umask(0o022)  # the usual umask, under which the file came out 0644
    try:
        assert (
            main(["demo", "--chunk", "3", "--chunks", "1", "--lead", "2", "--dir", str(tmp_path)])
            == 0
        )
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "demo.yaml").stat().st_mode)
    assert mode == 0o600, f"{mode:04o}"
    out = capsys.readouterr()
    assert "readable by every user" not in out.out + out.err
    assert "call.ok" in out.out


def test_demo_makes_an_existing_file_private(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text("old\n", encoding="utf-8")
    path.chmod(0o644)
    demo._write_private(path, "new\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8") == "new\n"
