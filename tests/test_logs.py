"""Structured logging: one JSON object per line, and redaction of every secret and signature
wherever it appears (field names, URLs, any registered secret value), for recsched's own
loggers and for stdlib loggers (aiohttp, APScheduler) alike."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from scheduler import logs
from tests.output_sink import Sink

SECRET = "test-log-secret-7d2e41"  # registered in each test; never a real key
SIGN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def out() -> Sink:
    stream = Sink()
    logs.configure(stream, json=True)
    logs.register_secret(SECRET)
    return stream


def _lines(stream: Sink) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def _only(stream: Sink) -> dict[str, Any]:
    lines = _lines(stream)
    assert len(lines) == 1, lines
    return lines[0]


def test_a_line_is_one_json_object_with_the_standard_fields(out: Sink) -> None:
    before = datetime.now(UTC)
    logs.get_logger("recsched.call").info("call.sent", channel_id="c1", attempt=1, ok=True)
    after = datetime.now(UTC)
    assert out.getvalue().count("\n") == 1
    line = _only(out)
    assert line["event"] == "call.sent"
    assert line["level"] == "info"
    assert line["logger"] == "recsched.call"
    assert line["channel_id"] == "c1" and line["attempt"] == 1 and line["ok"] is True
    assert line["timestamp"].endswith("Z")
    stamp = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    cst = datetime.fromisoformat(line["ts_cst"])
    assert before - timedelta(milliseconds=1) <= stamp <= after
    assert cst.utcoffset() == timedelta(hours=8)
    assert abs(cst - stamp) < timedelta(milliseconds=2)  # the same moment, in CST (ms)


def test_levels_and_the_level_threshold() -> None:
    stream = Sink()
    logs.configure(stream, json=True, level="warning")
    log = logs.get_logger("recsched.x")
    log.info("quiet")
    log.warning("loud", n=1)
    log.error("louder")
    assert [(e["event"], e["level"]) for e in _lines(stream)] == [
        ("loud", "warning"),
        ("louder", "error"),
    ]


@pytest.mark.parametrize(
    "field",
    [
        "sign",
        "SIGN",
        "key",
        "Key",
        "app_key",
        "client_secret",
        "SecretId",
        "token",
        "access_token",
        "Authorization",
        "password",
    ],
)
def test_fields_named_like_secrets_are_masked_whatever_their_value(out: Sink, field: str) -> None:
    logs.get_logger().info("x", **{field: "visible-value"}, other="kept")
    line = _only(out)
    assert line[field] == logs.MASK
    assert line["other"] == "kept"
    assert "visible-value" not in out.getvalue()


def test_a_secret_field_holding_a_structure_is_masked_whole(out: Sink) -> None:
    logs.get_logger().info("x", params={"sign": {"a": 1}, "nested": {"password": [1, 2]}})
    line = _only(out)
    assert line["params"] == {"sign": logs.MASK, "nested": {"password": logs.MASK}}


@pytest.mark.parametrize(
    "text",
    [
        f"GET http://h/common_access?appid=1&t=99&sign={SIGN}&x=1",
        f"http://h/?SIGN={SIGN}",
        "http://h/?key=abc123&y=2",
        "secret=hunter2 and more",
        f"'sign={SIGN}'",
    ],
)
def test_sign_key_and_secret_parameters_in_any_text_are_masked(out: Sink, text: str) -> None:
    logs.get_logger().info("x", url=text, message=f"failed: {text}")
    line = _only(out)
    for value in (line["url"], line["message"]):
        assert SIGN not in value and "abc123" not in value and "hunter2" not in value
        assert f"={logs.MASK}" in value
    assert "appid=1" in line["url"] or "appid" not in text  # the rest of the URL stays


def test_a_registered_secret_is_masked_anywhere(out: Sink) -> None:
    logs.get_logger().info(
        f"event {SECRET}",
        plain=f"the key is {SECRET}!",
        listed=["a", SECRET, 3],
        tupled=(SECRET, None),
        nested={"deeper": {"list": [{"text": f"x{SECRET}y"}]}},
        number=5,
        nothing=None,
        flag=False,
    )
    text = out.getvalue()
    assert SECRET not in text
    line = _only(out)
    assert line["event"] == f"event {logs.MASK}"
    assert line["plain"] == f"the key is {logs.MASK}!"
    assert line["listed"] == ["a", logs.MASK, 3]
    assert line["tupled"] == [logs.MASK, None]
    assert line["nested"] == {"deeper": {"list": [{"text": f"x{logs.MASK}y"}]}}
    assert (line["number"], line["nothing"], line["flag"]) == (5, None, False)


def test_a_secret_registered_after_configure_is_masked_too() -> None:
    stream = Sink()
    logs.configure(stream, json=True)
    late = "late-registered-secret-91f0"
    logs.register_secret(late)
    logs.get_logger().info("x", value=f"<{late}>")
    assert late not in stream.getvalue()
    assert _only(stream)["value"] == f"<{logs.MASK}>"


def test_values_too_short_to_be_secrets_are_not_registered(out: Sink) -> None:
    logs.register_secret("abc")
    logs.get_logger().info("x", value="abc abc")
    assert _only(out)["value"] == "abc abc"


def test_stdlib_loggers_are_json_and_redacted_too(out: Sink) -> None:
    logging.getLogger("some.library").warning(
        "request to http://h/?sign=%s failed with %s", SIGN, SECRET
    )
    logging.getLogger("apscheduler.scheduler").info("filtered out below WARNING")
    line = _only(out)
    assert line["level"] == "warning"
    assert line["logger"] == "some.library"
    assert SIGN not in line["event"] and SECRET not in line["event"]
    assert f"sign={logs.MASK}" in line["event"]
    assert "timestamp" in line and "ts_cst" in line


def test_an_exception_is_logged_as_json_without_locals_and_redacted(out: Sink) -> None:
    def fail(key: str) -> None:
        raise RuntimeError(f"bad sign={SIGN} with {key}")

    try:
        fail(SECRET)
    except RuntimeError:
        logs.get_logger("recsched.engine").exception("call.crashed", call_key="k")
    text = out.getvalue()
    assert SECRET not in text and SIGN not in text
    line = _only(out)
    assert line["level"] == "error" and line["call_key"] == "k"
    (exc,) = line["exception"]
    assert exc["exc_type"] == "RuntimeError"
    assert f"sign={logs.MASK}" in exc["exc_value"]
    assert all("locals" not in frame for frame in exc["frames"])


def test_context_variables_are_merged_and_redacted(out: Sink) -> None:
    structlog.contextvars.bind_contextvars(request_id="r1", token="t0ken-value")
    try:
        logs.get_logger().info("x")
    finally:
        structlog.contextvars.clear_contextvars()
    line = _only(out)
    assert line["request_id"] == "r1" and line["token"] == logs.MASK


def test_console_format_is_redacted_too() -> None:
    stream = Sink()
    logs.configure(stream, json=False)
    logs.register_secret(SECRET)
    logs.get_logger().info("x", url=f"http://h/?sign={SIGN}", value=SECRET, sign="s")
    text = stream.getvalue()
    assert "x" in text
    assert SIGN not in text and SECRET not in text
    assert not text.lstrip().startswith("{")


def test_reconfiguring_switches_the_stream_for_loggers_made_before() -> None:
    log = logs.get_logger("recsched.call")
    first, second = Sink(), Sink()
    logs.configure(first, json=True)
    log.info("one")
    logs.configure(second, json=True)
    log.info("two")
    logs.configure(second, json=False)
    log.info("three")
    assert [e["event"] for e in _lines(first)] == ["one"]
    assert second.getvalue().count("\n") == 2
    assert '"event": "two"' in second.getvalue()
    assert "three" in second.getvalue().splitlines()[1]


def test_a_level_set_on_one_stdlib_logger_name_applies_to_that_logger(out: Sink) -> None:
    quiet = logging.getLogger("recsched.quiet")
    quiet.setLevel(logging.WARNING)
    try:
        logs.get_logger("recsched.quiet").info("hidden")
        logs.get_logger("recsched.quiet").warning("shown")
        logs.get_logger("recsched.other").info("also shown")
    finally:
        quiet.setLevel(logging.NOTSET)
    assert [e["event"] for e in _lines(out)] == ["shown", "also shown"]


def test_capture_logs_sees_loggers_used_before_it(out: Sink) -> None:
    log = logs.get_logger("recsched.call")
    log.info("before")
    with structlog.testing.capture_logs() as captured:
        log.info("during", n=1)
    log.info("after")
    assert [e["event"] for e in captured] == ["during"]
    assert [e["event"] for e in _lines(out)] == ["before", "after"]


def test_a_stream_that_fails_does_not_break_the_caller(capsys: pytest.CaptureFixture[str]) -> None:
    class Broken(Sink):
        def write(self, text: str) -> int:
            raise BrokenPipeError("reader went away")

    logs.configure(Broken(), json=True)
    logs.get_logger("recsched.call").info("call.sent")  # must not raise
    assert "Logging error" in capsys.readouterr().err


def test_lines_carry_their_journal_priority_when_stdout_is_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15.1: journald reads a level only from an `<N>` prefix (or the native protocol);
    without it every line was PRIORITY=6 and `journalctl -p warning` showed nothing."""
    out = (tmp_path / "stream").open("w+")
    info = os.fstat(out.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
    logs.configure(out, json=True)
    log = logs.get_logger("recsched.call")
    log.info("call.ok")
    log.warning("call.retry")
    log.error("call.failed")
    logging.getLogger("aiohttp.client").warning("from a library")
    out.flush()
    lines = (tmp_path / "stream").read_text().splitlines()
    assert [line[:3] for line in lines] == ["<6>", "<4>", "<3>", "<4>"]
    assert json.loads(lines[2][3:])["event"] == "call.failed"  # the rest is the JSON line


def test_no_priority_prefix_on_any_other_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = (tmp_path / "stream").open("w+")
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")  # the journal is some other stream
    logs.configure(out, json=True)
    logs.get_logger("recsched.call").error("call.failed")
    out.flush()
    (line,) = (tmp_path / "stream").read_text().splitlines()
    assert json.loads(line)["event"] == "call.failed"
