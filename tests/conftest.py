"""Shared fixtures: the fake LVB provider on loopback, config files, foreign host zones."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from scheduler import logs
from scheduler.fakes.lvb import FakeLvb
from scheduler.fakes.web import FakeWeb
from tests.output_sink import SESSION_OUTPUT, Sink

#: No Hypothesis test may fail for being slow: on a busy 2-core machine an example can take far
#: longer than the default 200 ms deadline without anything being wrong.
settings.register_profile("recsched", deadline=None)
settings.load_profile("recsched")

APPID = 1234
#: The secret every test uses. Every log line of the whole run is checked for it at the end.
LVB_KEY = "test-lvb-key-0f3a9c"
#: The web function's app secret in every test; a callback token is a secret too.
WEB_APP_KEY = "APIDtestappkey"
WEB_APP_SECRET = "test-web-secret-7d21b4"
_LEAKS = re.compile(
    rf"{re.escape(LVB_KEY)}|{re.escape(WEB_APP_SECRET)}|(?i:\bsign=[0-9a-f]{{32}})"
    r"|(?i:\"sign\": \"[0-9a-f]{32}\")|signature=|/callbacks/web/[^/\s\"]*\.[0-9a-f]{32}"
)


#: What each pytest-xdist worker's secret check found, gathered by the controller.
_WORKER_CHECKS: list[dict[str, Any]] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No line logged anywhere in the run may contain the key or a signature.

    Under pytest-xdist each worker checks its own tests' output and hands the result to the
    controller (`workeroutput`), which reports and fails the run for all of them."""
    leaks = [line for chunk in SESSION_OUTPUT for line in chunk.splitlines() if _LEAKS.search(line)]
    lines = sum(chunk.count("\n") for chunk in SESSION_OUTPUT)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports
        workeroutput["secret_check"] = {"lines": lines, "count": len(leaks), "leaks": leaks[:10]}
        return
    count = len(leaks)
    for check in _WORKER_CHECKS:
        lines += check["lines"]
        count += check["count"]
        leaks += check["leaks"]
    if count:
        print(f"\nSECRET IN LOGS: {count} line(s) contain the test key or a sign:")
        for line in leaks[:10]:
            print(f"  {line[:300]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif lines:
        print(f"\nsecret check: {lines} log lines from this run, no key or sign in any")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist: a worker finished; keep what its secret check found."""
    check = getattr(node, "workeroutput", {}).get("secret_check")
    if check is not None:
        _WORKER_CHECKS.append(check)


def pytest_collection_finish(session: pytest.Session) -> None:
    """When a test of the run starts daemons, start their launchers now (tests/daemon_process.py):
    the first daemon then does not wait for its imports either."""
    from tests import daemon_process

    if session.config.option.collectonly:
        return
    modules = {getattr(item, "module", None) for item in session.items}
    if any(getattr(module, "DaemonProcess", None) for module in modules):
        daemon_process.top_up(daemon_process.PER_TEST)


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
async def fake_web() -> AsyncIterator[FakeWeb]:
    """The web function on loopback, its status machine quick (50 ms a state)."""
    fake = FakeWeb(WEB_APP_KEY, WEB_APP_SECRET, step=0.05, callback_interval=0.05)
    await fake.start("127.0.0.1", 0)
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def web_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"WEB_APP_KEY": WEB_APP_KEY, "WEB_APP_SECRET": WEB_APP_SECRET}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


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
        path.chmod(0o600)  # as an operator should keep it (0644 draws a warning)
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
def _no_daemon_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Kills the daemons a failed test left running; and before a test that may start daemons,
    waits until launchers for them are ready (tests/daemon_process.py)."""
    from tests import daemon_process

    if getattr(request.module, "DaemonProcess", None) is not None:
        daemon_process.warm()
    started = daemon_process.STARTED
    yield
    for process in list(daemon_process.RUNNING):  # a test failed before stopping it
        if process.returncode is None:
            process.kill()
        daemon_process.RUNNING.discard(process)
    if started != daemon_process.STARTED:
        daemon_process.top_up()  # launchers for the next test's daemons


@pytest.fixture(autouse=True)
def _state_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The default ledger (and its lock) live under $XDG_STATE_HOME, the control socket at
    $RECSCHED_CONTROL_SOCKET: keep both per test (the socket in a short path: AF_UNIX paths
    are limited to 107 bytes, and tmp_path can be longer)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    for name in ("STATE_DIRECTORY", "RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    short = Path(tempfile.mkdtemp(prefix="rs-"))
    monkeypatch.setenv("RECSCHED_CONTROL_SOCKET", str(short / "control.sock"))
    yield
    shutil.rmtree(short, ignore_errors=True)


@pytest.fixture(autouse=True)
def _json_logs_to_stdout() -> None:
    """Every test logs JSON lines, as the daemon does, into the run-wide sink."""
    logs.configure(Sink(), json=True)


class LogCapture:
    """JSON log lines written by the code under test, parsed."""

    def __init__(self) -> None:
        self.stream = Sink()

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


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test (dropped after). Skips when no server answers,
    unless RECSCHED_REQUIRE_POSTGRES=1 (CI), where that is a failure."""
    import uuid

    asyncpg = pytest.importorskip("asyncpg")
    name = f"recsched_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("RECSCHED_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here but not reachable: {exc}")
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 ({exc})")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
