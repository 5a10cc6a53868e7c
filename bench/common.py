"""Processes and numbers shared by the benchmark sections: the fake, the daemon, statistics."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
KEY = "bench-lvb-key-5e1d7c"  # the fake verifies signatures with it; never a real key
APPID = 1234
CST = timezone(timedelta(hours=8))
WIRE = "%Y-%m-%d %H:%M:%S"
#: urllib without proxies: every request of the benchmark goes to 127.0.0.1.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def env() -> dict[str, str]:
    return {**os.environ, "LVB_KEY": KEY, "PYTHONPATH": str(ROOT)}


#: Every directory this run made (run.py removes them at the end unless --keep).
WORKDIRS: list[Path] = []


def workdir(name: str) -> Path:
    """A fresh directory on the real disk (not tmpfs: the ledger's fsyncs must cost what
    they cost in production)."""
    path = Path(tempfile.mkdtemp(prefix=f"recsched-bench-{name}-", dir="/var/tmp"))
    WORKDIRS.append(path)
    return path


def wire(moment: datetime) -> str:
    """A chunk start as the daemon puts it on the wire (CST, whole seconds, truncated)."""
    return moment.astimezone(CST).strftime(WIRE)


def iso(moment: datetime) -> str:
    return moment.astimezone(CST).isoformat(timespec="milliseconds")


# -- statistics ---------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    """Percentile with linear interpolation (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    if rank == low or ordered[high] == ordered[low]:  # also inf (a dropped call), not nan
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: Iterable[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 50), 1),
        "p99_ms": round(pct(ms, 99), 1),
        "max_ms": round(max(ms), 1) if ms else math.nan,
    }


# -- the fake provider ------------------------------------------------------------------
@dataclass
class Arrival:
    at: float  # time.time() at the fake when the handler started
    channel: str
    start_time: str  # Param.s.start_time as received (CST wire format)
    ok: bool
    ret: int | None
    error: str = ""  # the fake's reason for a refusal ('' when accepted)


class Fake:
    """bench/fake_server.py as a subprocess; arrivals are read back over HTTP."""

    def __init__(self) -> None:
        self.dir = workdir("fake")
        port_file = self.dir / "url"
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / "fake_server.py"), "--port-file", str(port_file)],
            env=env(),
        )
        deadline = time.monotonic() + 20
        while not port_file.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the fake provider did not start")
            time.sleep(0.02)
        self.url = port_file.read_text().strip()
        self.base = self.url.rsplit("/", 1)[0]

    def _get(self, path: str, data: bytes | None = None) -> Any:
        with _LOCAL.open(self.base + path, data=data, timeout=30) as response:
            return json.loads(response.read())

    def count(self) -> int:
        return int(self._get("/bench/count")["count"])

    def arrivals(self) -> list[Arrival]:
        return [Arrival(*row) for row in self._get("/bench/received?since=0")]

    def reset(self) -> None:
        self._get("/bench/reset", data=b"")

    def wait_for(self, n: int, timeout: float) -> bool:
        """Poll (every 0.2 s, cheap) until n requests arrived; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= n:
                return True
            time.sleep(0.2)
        return self.count() >= n

    def capacity(self, requests: int = 2000) -> float:
        """Requests/s the fake answers for a burst fired by a raw aiohttp client (a lower
        bound: the client shares the machine)."""
        out = subprocess.run(
            [
                sys.executable,
                str(BENCH / "fake_server.py"),
                "--probe",
                self.url,
                "--requests",
                str(requests),
            ],
            env=env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        self.reset()
        return float(json.loads(out.stdout)["rate"])

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the daemon ---------------------------------------------------------------------------
PROVIDER = """\
providers:
  lvb:
    endpoint: {url}
    appid: {appid}
    key: ${{LVB_KEY}}
    concurrency: {concurrency}
{rate}"""


def config_text(
    directory: Path,
    fake_url: str,
    recordings: str,
    *,
    concurrency: int = 10000,
    rate: str | None = None,
) -> str:
    rate_line = f"    rate: {rate}\n" if rate else ""
    return (
        "timezone: Asia/Shanghai\n"
        + PROVIDER.format(url=fake_url, appid=APPID, concurrency=concurrency, rate=rate_line)
        + f"state:\n  url: sqlite:///{directory / 'state' / 'recsched.db'}\n"
        + "recordings:\n"
        + recordings
    )


def write_config(directory: Path, text: str) -> Path:
    path = directory / "recsched.yaml"
    tmp = directory / "recsched.yaml.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o600)
    tmp.rename(path)
    return path


@dataclass
class Daemon:
    """`python -m scheduler run` with its JSON log lines going to a file we tail."""

    config: Path
    process: subprocess.Popen[bytes] = field(init=False)
    spawned_at: float = field(init=False)
    _pos: int = 0
    _lines: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log = self.config.parent / "daemon.log"
        self.err = self.config.parent / "daemon.err"
        self.spawned_at = time.time()
        with self.log.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scheduler",
                    "run",
                    "-c",
                    str(self.config),
                    "--log-format",
                    "json",
                ],
                env=env(),
                stdout=out,
                stderr=err,
                cwd=ROOT,
            )

    def _read(self, wanted: Callable[[str], bool]) -> None:
        with self.log.open("rb") as f:
            f.seek(self._pos)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._pos += end
        for raw in data[:end].decode().splitlines():
            if wanted(raw):
                self._lines.append(json.loads(raw))

    def wait_event(self, name: str, timeout: float, since: int = 0) -> dict[str, Any]:
        """The first `name` line (after the first `since` such lines), waiting for it.
        Only non-call lines are parsed here (call.* lines are thousands: read after the run)."""
        deadline = time.monotonic() + timeout
        while True:
            self._read(lambda line: '"event": "call.' not in line)
            found = [e for e in self._lines if e.get("event") == name]
            if len(found) > since:
                return found[since]
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"no {name} from the daemon (exit {self.process.poll()}): "
                    + self.err.read_text()[-2000:]
                )
            time.sleep(0.01)

    def events(self, *names: str) -> list[dict[str, Any]]:
        """Every line with one of `names` (parses the whole log: call after the run)."""
        tags = [f'"event": "{n}"' for n in names]
        with self.log.open() as f:
            return [json.loads(line) for line in f if any(t in line for t in tags)]

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def hup(self) -> float:
        sent = time.time()
        self.process.send_signal(signal.SIGHUP)
        return sent

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def stamp(event: dict[str, Any]) -> float:
    """A log line's own `timestamp` (UTC ISO) as UNIX seconds."""
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def run_timed(
    args: list[str], timeout: float = 120
) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        args, env=env(), capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    return time.perf_counter() - started, done
