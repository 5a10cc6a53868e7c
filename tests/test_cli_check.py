"""`recsched check` and `recsched plan` as an operator runs them: exit codes and output."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from scheduler.cli import main
from tests.conftest import LVB_KEY

WriteConfig = Callable[..., Path]

VALID = """\
timezone: Asia/Shanghai
providers:
  lvb:
    appid: 1234
    key: ${LVB_KEY}
recordings:
  - name: gala
    channel_id: gala_2
    mode: scheduled
    start: 2026-11-30 21:10
    duration: 1h
  - name: news
    channel_id: news_1
    cron: "0 20 * * *"
    duration: 90m
"""

NEWS_ONLY = """\
timezone: Asia/Shanghai
providers:
  lvb:
    appid: 1234
    key: ${LVB_KEY}
recordings:
  - name: news
    channel_id: news_1
    cron: "0 20 * * *"
    duration: 90m
"""

INVALID = """\
timezone: Asia/Shanghai
providers:
  lvb:
    appid: 1234
    key: ${LVB_KEY}
recordings:
  - name: news
    channel_id: news_1
    cron: "0 20 * * 1-5"
    duration: 1h30m
    chunk: 45m
    enabled: no
"""

NOW = "2026-11-30T19:59:50+08:00"  # ten seconds before the 20:00 CST window
PROBLEM_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<path>\S+): (?P<msg>.+)$")


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECSCHED_CONFIG", raising=False)


def _json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# -- check -----------------------------------------------------------------------------------


def test_check_valid(
    write_config: WriteConfig, lvb_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(VALID)
    assert main(["check", "-c", str(path)]) == 0
    out, err = capsys.readouterr()
    assert f"{path}: OK: 2 recording(s), 1 provider(s)" in out
    assert err == ""
    assert LVB_KEY not in out + err


def test_check_reads_recsched_config_env(
    write_config: WriteConfig,
    lvb_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_config(VALID)
    monkeypatch.setenv("RECSCHED_CONFIG", str(path))
    assert main(["check"]) == 0
    assert ": OK: " in capsys.readouterr().out


def test_check_without_config_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check"])
    assert info.value.code == 2
    assert "-c/--config" in capsys.readouterr().err


def test_check_literal_key_warns_but_passes(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    literal = "literal-key-in-yaml-42"
    path = write_config(VALID.replace("${LVB_KEY}", literal))
    assert main(["check", "-c", str(path)]) == 0
    out, err = capsys.readouterr()
    assert ": OK: " in out
    assert f"warning: {path}:5:5: providers.lvb.key: holds a literal secret" in err
    assert literal not in out + err


def test_check_invalid_lists_every_problem(
    write_config: WriteConfig,
    lvb_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    host_tz: str,
) -> None:
    path = write_config(INVALID)
    assert main(["check", "-c", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"recsched: {path} is invalid (2 problem(s)):"
    problems = [PROBLEM_LINE.match(line.strip()) for line in lines[1:]]
    assert all(problems), lines
    assert [(m["file"], m["line"], m["col"], m["path"]) for m in problems if m] == [
        (str(path), "11", "5", "recordings[0].chunk"),
        (str(path), "12", "5", "recordings[0].enabled"),
    ]
    assert "45m exceeds the 30m real-time limit" in lines[1]
    assert "must be true or false, not str 'no'" in lines[2]
    assert "Traceback" not in err


def test_check_needs_the_secret(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LVB_KEY", raising=False)
    path = write_config(VALID)
    assert main(["check", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:5:5: providers.lvb.key: environment variable LVB_KEY is not set" in err


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.yaml"
    assert main(["check", "-c", str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{missing}: cannot read: No such file or directory" in err
    assert "Traceback" not in err


def test_check_yaml_syntax_error(
    write_config: WriteConfig, lvb_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(VALID.replace("duration: 90m", "duration: a: b"))
    assert main(["check", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:15:" in err
    assert "YAML syntax error" in err
    assert "Traceback" not in err


# -- plan ------------------------------------------------------------------------------------


def test_plan_json_contract(
    write_config: WriteConfig, lvb_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(VALID)
    assert main(["plan", "-c", str(path), "--now", NOW, "--hours", "3", "--json"]) == 0
    out, err = capsys.readouterr()
    calls = _json_lines(out)
    assert err == ""
    assert LVB_KEY not in out
    for call in calls:
        assert set(call) == {"at", "recording", "provider", "action", "key", "params"}
        params = call["params"]
        assert isinstance(params, dict)
        assert "t" not in params
        assert "sign" not in params
        assert params["appid"] == "1234"
        assert call["action"] == params["interface"] == "Live_Tape_Start"
        assert call["provider"] == "lvb"
    # gala comes first in the file but its call is due later: output is sorted by `at`
    assert [(c["at"], c["recording"]) for c in calls] == [
        ("2026-11-30T20:00:00+08:00", "news"),
        ("2026-11-30T20:30:00+08:00", "news"),
        ("2026-11-30T21:00:00+08:00", "news"),
        ("2026-11-30T21:09:00+08:00", "gala"),  # scheduled: created `lead` (1m) early
    ]
    assert len({c["key"] for c in calls}) == 4


def test_plan_chunks_a_90_minute_window(
    write_config: WriteConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    host_tz: str,
) -> None:
    monkeypatch.delenv("LVB_KEY", raising=False)  # plan needs no secret
    path = write_config(NEWS_ONLY)
    assert main(["plan", "-c", str(path), "--now", NOW, "--hours", "3", "--json"]) == 0
    calls = _json_lines(capsys.readouterr().out)
    rows = [
        (
            c["at"],
            c["params"]["Param.s.start_time"],  # type: ignore[index]
            c["params"]["Param.s.end_time"],  # type: ignore[index]
            c["params"]["Param.n.task_sub_type"],  # type: ignore[index]
        )
        for c in calls
    ]
    assert rows == [
        ("2026-11-30T20:00:00+08:00", "2026-11-30 20:00:00", "2026-11-30 20:30:00", "1"),
        ("2026-11-30T20:30:00+08:00", "2026-11-30 20:30:00", "2026-11-30 21:00:00", "1"),
        ("2026-11-30T21:00:00+08:00", "2026-11-30 21:00:00", "2026-11-30 21:30:00", "1"),
    ]


def test_plan_table(
    write_config: WriteConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    host_tz: str,
) -> None:
    monkeypatch.delenv("LVB_KEY", raising=False)
    path = write_config(NEWS_ONLY)
    # a --now without an offset is read in CST, whatever the host zone
    assert main(["plan", "-c", str(path), "--now", "2026-11-30T19:59:50", "--hours", "3"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "3 call(s) from 2026-11-30 19:59:50 CST for 3h"
    header = ["AT", "(CST)", "RECORDING", "ACTION", "CHANNEL/PAGE", "START", "→", "END", "(CST)"]
    assert lines[1].split() == [*header, "CHUNK"]
    assert [line.split()[1] for line in lines[2:]] == ["20:00:00", "20:30:00", "21:00:00"]
    assert "2026-11-30 20:00:00 → 20:30:00" in lines[2]
    assert "2026-11-30 21:00:00 → 21:30:00" in lines[4]
    assert [line.split()[-1] for line in lines[2:]] == ["1/3", "2/3", "3/3"]
    assert all(line.split()[2:5] == ["news", "Live_Tape_Start", "news_1"] for line in lines[2:])


def test_plan_invalid_config(write_config: WriteConfig, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(INVALID)
    assert main(["plan", "-c", str(path), "--now", NOW]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}:11:5: recordings[0].chunk:" in err


def test_plan_bad_now(write_config: WriteConfig, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(NEWS_ONLY)
    with pytest.raises(SystemExit) as info:
        main(["plan", "-c", str(path), "--now", "tonight"])
    assert info.value.code == 2
    assert "'tonight' is not an ISO date-time" in capsys.readouterr().err


# -- help ------------------------------------------------------------------------------------


def test_top_level_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert "recsched check -c /etc/recsched/recsched.yaml" in out
    assert "recsched plan -c recsched.yaml --now" in out
    for command in ("check", "plan", "run", "demo", "fake-provider"):
        assert command in out
    assert "$RECSCHED_CONFIG" in out


def test_plan_help_explains_now(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["plan", "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    assert "--now ISO" in out
    assert "2026-12-01T19:59:50+08:00" in out
    assert "(a time without offset is read in CST)" in out
    assert "--json" in out
    assert "--hours" in out
