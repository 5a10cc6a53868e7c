"""Metrics and the HTTP server: real Metrics, real HttpApi on loopback, real aiohttp client."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import prometheus_client
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from scheduler.config import CST
from scheduler.http_api import METRICS_CONTENT_TYPE, HttpApi, parse_listen
from scheduler.ledger import State
from scheduler.metrics import Metrics

START = "Live_Tape_Start"
Labels = tuple[tuple[str, str], ...]


def samples(text: str) -> dict[tuple[str, Labels], float]:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    out: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def lab(**labels: str) -> Labels:
    return tuple(sorted(labels.items()))


@dataclass
class Served:
    api: HttpApi
    metrics: Metrics
    base: str
    session: aiohttp.ClientSession
    health: dict[str, object] = field(default_factory=lambda: {"ok": True, "reason": ""})

    async def get(self, path: str) -> tuple[int, str, str]:
        async with self.session.get(self.base + path) as r:
            return r.status, r.headers.get("Content-Type", ""), await r.text()

    async def scrape(self) -> dict[tuple[str, Labels], float]:
        status, ctype, body = await self.get("/metrics")
        assert status == 200
        assert ctype == METRICS_CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
        return samples(body)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    metrics = Metrics()
    health: dict[str, object] = {"ok": True, "reason": ""}

    def check() -> tuple[bool, str]:
        return bool(health["ok"]), str(health["reason"])

    api = HttpApi(metrics, check)
    api.add_routes([web.get("/hello", _hello)])
    bound = await api.start("127.0.0.1:0")
    host, port = parse_listen(bound)
    assert host == "127.0.0.1" and port != 0
    async with aiohttp.ClientSession() as session:
        try:
            yield Served(api, metrics, f"http://{bound}", session, health)
        finally:
            await api.stop()


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="hi")


async def test_fresh_metrics_have_documented_defaults(served: Served) -> None:
    got = await served.scrape()
    assert got[("recsched_active_recordings", ())] == 0
    assert got[("recsched_pending_calls", ())] == 0
    assert math.isnan(got[("recsched_next_call_timestamp_seconds", ())])
    assert got[("recsched_store_healthy", ())] == 0
    assert got[("recsched_config_reloads_total", lab(result="success"))] == 0
    assert got[("recsched_config_reloads_total", lab(result="failure"))] == 0
    assert got[("recsched_config_last_reload_success_timestamp_seconds", ())] == 0
    assert not any(name == "recsched_calls_total" for name, _ in got)


async def test_every_metric_is_exported_exactly(served: Served) -> None:
    m = served.metrics
    m.call_outcome("lvb", START, "ok")
    m.call_outcome("lvb", START, State.OK)  # the enum works as well
    m.call_outcome("lvb", START, "failed")
    m.call_outcome("lvb", START, State.MISSED)
    m.call_outcome("lvb", START, "suppressed")
    m.call_outcome("lvb", START, "uncertain")
    m.call_outcome("web", "CreateRecTask", "ok")
    for seconds in (0.003, -0.5, 0.2, 0.2, 7.0, 120.0):  # -0.5 (early) counts as 0
        m.call_lateness("lvb", seconds)
    m.call_lateness("web", 0.05)
    for _ in range(3):
        m.retry("lvb")
    m.duplicate_suppressed("lvb")
    m.set_active_recordings(4)
    m.set_next_call(datetime(2026, 1, 1, 12, 0, tzinfo=CST))  # 04:00 UTC
    m.set_pending_calls(17)
    before = time.time()
    m.config_reload(True)
    after = time.time()
    m.config_reload(False)
    m.config_reload(False)
    m.clock_skew("lvb", 5.0)
    m.clock_skew("lvb", -1.5)
    m.clock_skew("web", 0.0)
    m.store_healthy(True)

    got = await served.scrape()

    calls = {labels: v for (name, labels), v in got.items() if name == "recsched_calls_total"}
    assert calls == {
        lab(provider="lvb", action=START, outcome="ok"): 2,
        lab(provider="lvb", action=START, outcome="failed"): 1,
        lab(provider="lvb", action=START, outcome="missed"): 1,
        lab(provider="lvb", action=START, outcome="suppressed"): 1,
        lab(provider="lvb", action=START, outcome="uncertain"): 1,
        lab(provider="web", action="CreateRecTask", outcome="ok"): 1,
    }

    buckets = {
        dict(labels)["le"]: v
        for (name, labels), v in got.items()
        if name == "recsched_call_lateness_seconds_bucket" and dict(labels)["provider"] == "lvb"
    }
    assert buckets == {
        "0.005": 2,
        "0.01": 2,
        "0.025": 2,
        "0.05": 2,
        "0.1": 2,
        "0.25": 4,
        "0.5": 4,
        "1.0": 4,
        "2.5": 4,
        "5.0": 4,
        "10.0": 5,
        "30.0": 5,
        "60.0": 5,
        "+Inf": 6,
    }
    assert got[("recsched_call_lateness_seconds_count", lab(provider="lvb"))] == 6
    assert got[("recsched_call_lateness_seconds_sum", lab(provider="lvb"))] == pytest.approx(
        127.403
    )
    assert got[("recsched_call_lateness_seconds_bucket", lab(provider="web", le="0.05"))] == 1
    assert got[("recsched_call_lateness_seconds_bucket", lab(provider="web", le="0.025"))] == 0
    assert got[("recsched_call_lateness_seconds_count", lab(provider="web"))] == 1

    assert got[("recsched_call_retries_total", lab(provider="lvb"))] == 3
    assert got[("recsched_duplicates_suppressed_total", lab(provider="lvb"))] == 1
    assert got[("recsched_active_recordings", ())] == 4
    assert got[("recsched_next_call_timestamp_seconds", ())] == 1767240000.0
    assert got[("recsched_pending_calls", ())] == 17
    assert got[("recsched_config_reloads_total", lab(result="success"))] == 1
    assert got[("recsched_config_reloads_total", lab(result="failure"))] == 2
    last_ok = got[("recsched_config_last_reload_success_timestamp_seconds", ())]
    assert before <= last_ok <= after
    assert got[("recsched_clock_skew_seconds", lab(provider="lvb"))] == -1.5
    assert got[("recsched_clock_skew_seconds", lab(provider="web"))] == 0.0
    assert got[("recsched_store_healthy", ())] == 1

    # bounded label names only: no recording names, keys or URLs can appear
    names = {k for _, labels in got for k, _ in labels}
    assert names <= {"provider", "action", "outcome", "result", "le", "version"}

    # gauges move both ways; a failed reload keeps the last success time
    m.store_healthy(False)
    m.set_next_call(None)
    m.set_active_recordings(0)
    m.config_reload(False)
    got = await served.scrape()
    assert got[("recsched_store_healthy", ())] == 0
    assert math.isnan(got[("recsched_next_call_timestamp_seconds", ())])
    assert got[("recsched_active_recordings", ())] == 0
    assert got[("recsched_config_reloads_total", lab(result="failure"))] == 3
    assert got[("recsched_config_last_reload_success_timestamp_seconds", ())] == last_ok


def test_bad_inputs_are_refused() -> None:
    m = Metrics()
    for outcome in ("sent", "claimed", "bogus", ""):
        with pytest.raises(ValueError, match="call outcome must be one of"):
            m.call_outcome("lvb", START, outcome)
    with pytest.raises(ValueError, match="naive"):
        m.set_next_call(datetime(2026, 1, 1, 12, 0))
    assert b"recsched_calls_total{" not in m.render()


def test_two_daemons_do_not_share_counts() -> None:
    a, b = Metrics(), Metrics()
    assert a.registry is not b.registry
    a.call_outcome("lvb", START, "ok")
    a.retry("lvb")
    a.set_pending_calls(3)
    got_a, got_b = samples(a.render().decode()), samples(b.render().decode())
    assert got_a[("recsched_calls_total", lab(provider="lvb", action=START, outcome="ok"))] == 1
    assert ("recsched_calls_total", lab(provider="lvb", action=START, outcome="ok")) not in got_b
    assert ("recsched_call_retries_total", lab(provider="lvb")) not in got_b
    assert got_b[("recsched_pending_calls", ())] == 0
    # and nothing went into prometheus_client's global registry
    assert b"recsched_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)


async def test_healthz_follows_the_health_callable(served: Served) -> None:
    assert await served.get("/healthz") == (200, "text/plain; charset=utf-8", "ok\n")
    served.health.update(ok=False, reason="plan not loaded")
    assert await served.get("/healthz") == (503, "text/plain; charset=utf-8", "plan not loaded\n")
    served.health.update(ok=True, reason="")
    status, _, body = await served.get("/healthz")
    assert (status, body) == (200, "ok\n")


async def test_healthz_is_503_when_the_callable_crashes() -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("boom")

    api = HttpApi(Metrics(), broken)
    bound = await api.start("127.0.0.1:0")
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://{bound}/healthz") as r:
            assert r.status == 503
            assert await r.text() == "health check crashed (RuntimeError)\n"
    finally:
        await api.stop()


async def test_other_paths_and_methods(served: Served) -> None:
    assert (await served.get("/"))[0] == 404
    assert (await served.get("/metrics/"))[0] == 404
    assert (await served.get("/healthz/extra"))[0] == 404
    assert await served.get("/hello") == (200, "text/plain; charset=utf-8", "hi")  # add_routes
    async with served.session.post(served.base + "/metrics") as r:
        assert r.status == 405
    async with served.session.head(served.base + "/healthz") as r:
        assert r.status == 200


async def test_no_access_log(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert (await served.get("/metrics?sign=s3cr3t-query"))[0] == 200
    assert (await served.get("/nowhere?sign=s3cr3t-query"))[0] == 404
    assert "s3cr3t-query" not in caplog.text
    assert not [r for r in caplog.records if r.name.startswith("aiohttp.access")]


async def test_lifecycle_rules(served: Served) -> None:
    with pytest.raises(RuntimeError, match="before start"):
        served.api.add_routes([web.get("/late", _hello)])
    with pytest.raises(RuntimeError, match="already started"):
        await served.api.start("127.0.0.1:0")
    await served.api.stop()
    await served.api.stop()  # idempotent
    with pytest.raises(aiohttp.ClientConnectionError):
        await served.get("/healthz")


async def test_bad_listen_address_and_busy_port() -> None:
    api = HttpApi(Metrics(), lambda: (True, ""))
    with pytest.raises(ValueError, match="missing ':PORT'"):
        await api.start("127.0.0.1")
    first = HttpApi(Metrics(), lambda: (True, ""))
    bound = await first.start("127.0.0.1:0")
    try:
        with pytest.raises(OSError):
            await HttpApi(Metrics(), lambda: (True, "")).start(bound)
    finally:
        await first.stop()


async def test_ipv6_loopback() -> None:
    api = HttpApi(Metrics(), lambda: (True, ""))
    try:
        bound = await api.start("[::1]:0")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert bound.startswith("[::1]:")
        assert parse_listen(bound)[0] == "::1"
        async with aiohttp.ClientSession() as s, s.get(f"http://{bound}/healthz") as r:
            assert r.status == 200
    finally:
        await api.stop()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9102", ("127.0.0.1", 9102)),
        ("[::1]:9102", ("::1", 9102)),
        ("localhost:0", ("localhost", 0)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
        ("[::]:80", ("::", 80)),
        ("metrics.internal:9102", ("metrics.internal", 9102)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "missing ':PORT'"),
        ("127.0.0.1", "missing ':PORT'"),
        ("9102", "missing ':PORT'"),
        (":9102", "missing host"),
        ("127.0.0.1:", "port must be a number"),
        ("127.0.0.1:http", "port must be a number"),
        ("127.0.0.1:-1", "port must be a number"),
        ("127.0.0.1:+80", "port must be a number"),
        ("127.0.0.1: 80", "port must be a number"),
        ("127.0.0.1:65536", "port must be a number"),
        ("127.0.0.1:123456", "port must be a number"),
        ("::1:9102", "IPv6 address must be in brackets"),
        ("[::1]", "missing ':PORT' after ']'"),
        ("[::1]9102", "missing ':PORT' after ']'"),
        ("[::1:9102", "missing ']'"),
        ("[]:9102", "brackets must hold an IPv6 address"),
        ("[127.0.0.1]:9102", "brackets must hold an IPv6 address"),
        ("local host:9102", "invalid host"),
        ("http://127.0.0.1:9102", "invalid host"),
    ],
)
def test_parse_listen_errors(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_listen(text)
    message = str(info.value)
    assert problem in message
    assert repr(text) in message and "HOST:PORT" in message


async def test_every_series_an_alert_needs_exists_at_0_before_the_first_event() -> None:
    """Issue 15.3: `increase(recsched_calls_total{outcome="failed"}[10m]) > 0` must see the
    first failure after a start, so that series exists, at 0, from the first scrape."""
    m = Metrics("1.2.3")
    m.declare({"lvb": (START,), "web": ("Start", "Stop")})
    got = samples(m.render().decode())
    for provider, action in (("lvb", START), ("web", "Start"), ("web", "Stop")):
        for outcome in ("ok", "failed", "missed", "suppressed", "uncertain"):
            key = ("recsched_calls_total", lab(provider=provider, action=action, outcome=outcome))
            assert got[key] == 0
        assert got[("recsched_call_retries_total", lab(provider=provider))] == 0
        assert got[("recsched_call_lateness_seconds_count", lab(provider=provider))] == 0
    assert got[("recsched_build_info", lab(version="1.2.3"))] == 1
    assert got[("recsched_ready", ())] == 0
    assert got[("process_resident_memory_bytes", ())] > 0
    assert got[("process_start_time_seconds", ())] > 0


def test_help_texts_match_the_readme() -> None:
    """Issue 15.4: every metric the README's table names is exported with that table's type,
    and its HELP says the same thing (recsched_active_recordings: calls, not windows)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `(recsched_[a-z_]+)(?:\{[^}]*\})?` \| (\w+) \|", readme, re.M))
    text = Metrics().render().decode()
    types = dict(re.findall(r"^# TYPE (\S+) (\w+)$", text, re.M))
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", text, re.M))
    assert {"recsched_build_info", "recsched_ready", "recsched_active_recordings"} <= set(table)
    for name, kind in table.items():
        assert kind in (types.get(name), types.get(name.removesuffix("_total"))), name
    assert "recording now" in helps["recsched_active_recordings"].lower()
