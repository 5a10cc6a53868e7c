"""monitoring/recsched.rules.yml under `promtool test rules`, fed the series exactly as a freshly
started daemon exposes them (Metrics.render after the config's series are declared), scraped
once a minute: each alert fires on the first problem after a start. Needs promtool (Debian's
`prometheus` package); .ci/run installs it, elsewhere the tests say they were skipped."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from scheduler.metrics import Metrics
from scheduler.providers import lvb

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "monitoring" / "recsched.rules.yml"
SCRAPE = {"job": "recsched", "instance": "rec1:9102"}  # what Prometheus adds at scrape time
MINUTES = 10

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None and os.environ.get("RECSCHED_REQUIRE_PROMTOOL") != "1",
    reason="PROMTOOL NOT INSTALLED: alert rules not tested (apt-get install prometheus)",
)


def _exposed() -> dict[str, float]:
    """series text (name{labels}, scrape labels added) -> value, at the first scrape."""
    metrics = Metrics("0.1.0")
    metrics.declare({"lvb": lvb.ACTIONS})
    metrics.set_ready(True)  # started
    metrics.store_healthy(True)
    series = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if not sample.name.startswith("recsched_"):
                continue
            labels = {**sample.labels, **SCRAPE}
            shown = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            series[f"{sample.name}{{{shown}}}"] = sample.value
    return series


def _key(name: str, **labels: str) -> str:
    shown = ",".join(f'{k}="{v}"' for k, v in sorted({**labels, **SCRAPE}.items()))
    return f"{name}{{{shown}}}"


def _values(*points: float | None) -> str:
    return " ".join("_" if p is None else ("NaN" if p != p else f"{p:g}") for p in points)


def _scenario() -> dict[str, str]:
    """Every exposed series, held at its first-scrape value, and one problem per alert."""
    series = {k: _values(*[v] * MINUTES) for k, v in _exposed().items()}
    failed = _key("recsched_calls_total", provider="lvb", action=lvb.START, outcome="failed")
    ok = _key("recsched_calls_total", provider="lvb", action=lvb.START, outcome="ok")
    for wanted in (failed, ok):
        assert wanted in series, f"not exposed at the first scrape: {wanted}"
    changes = {
        failed: [0] * 7 + [1] * 3,  # the first failure after the start, at 7 min
        ok: list(range(MINUTES)),  # successes fire nothing
        _key("recsched_store_healthy"): [1] * 3 + [0] * 7,
        _key("recsched_ready"): [1] * 2 + [0] * 8,
        _key("recsched_config_reloads_total", result="failure"): [0] * 8 + [1] * 2,
        _key("recsched_next_call_timestamp_seconds"): [100] * MINUTES,  # armed for t=100 s
        _key("up"): [1] * 7 + [0] * 3,
    }
    for key, points in changes.items():
        assert key in series or key.startswith("up{"), key
        series[key] = _values(*points)
    skew = _key("recsched_clock_skew_seconds", provider="lvb")
    series[skew] = _values(*([0] * 3 + [3] * 7))
    # The bug this guards against: a series born at its first failure. increase() sees no
    # rise and nothing fires (it is in the input to show that; it is not in exp_alerts).
    late = _key("recsched_calls_total", provider="late", action=lvb.START, outcome="failed")
    series[late] = _values(*([None] * 7 + [1] * 3))
    return series


def _alert(name: str, value: float = 0, **labels: str) -> dict[str, object]:
    """The alert as promtool shows it: the series' labels, the rule's, and its annotations
    rendered the way Prometheus renders their `{{ $labels.x }}` and `{{ $value }}`."""
    rule = _RULES[name]
    exp_labels = {**labels, **rule.get("labels", {})}

    def render(template: str) -> str:
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: exp_labels.get(m[1], ""), template)
        return text.replace("{{ $value }}", f"{value:g}")

    annotations = {k: render(v) for k, v in rule.get("annotations", {}).items()}
    return {"exp_labels": exp_labels, "exp_annotations": annotations}


_RULES = {
    rule["alert"]: rule
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    for rule in group["rules"]
}


def _expected() -> list[dict[str, object]]:
    at = f"{MINUTES - 1}m"
    call = {"provider": "lvb", "action": lvb.START, "outcome": "failed", **SCRAPE}
    return [
        {
            "eval_time": at,
            "alertname": "RecschedCallProblems",
            "exp_alerts": [_alert("RecschedCallProblems", **call)],
        },
        {
            "eval_time": at,
            "alertname": "RecschedNextCallOverdue",
            "exp_alerts": [_alert("RecschedNextCallOverdue", **SCRAPE)],
        },
        {
            "eval_time": at,
            "alertname": "RecschedLedgerUnhealthy",
            "exp_alerts": [_alert("RecschedLedgerUnhealthy", **SCRAPE)],
        },
        {
            "eval_time": at,
            "alertname": "RecschedClockSkew",
            "exp_alerts": [_alert("RecschedClockSkew", 3, provider="lvb", **SCRAPE)],
        },
        {
            "eval_time": at,
            "alertname": "RecschedReloadFailed",
            "exp_alerts": [_alert("RecschedReloadFailed", result="failure", **SCRAPE)],
        },
        {
            "eval_time": at,
            "alertname": "RecschedNotReady",
            "exp_alerts": [_alert("RecschedNotReady", **SCRAPE)],
        },
        {
            "eval_time": at,
            "alertname": "RecschedDown",
            "exp_alerts": [_alert("RecschedDown", **SCRAPE)],
        },
        # nothing fires on a healthy start: every series at its first-scrape value
        {"eval_time": "1m", "alertname": "RecschedCallProblems", "exp_alerts": []},
        {"eval_time": "1m", "alertname": "RecschedNotReady", "exp_alerts": []},
    ]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_the_rules_file_is_valid() -> None:
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_series_the_rules_read_is_exposed_at_the_first_scrape() -> None:
    names = set(re.findall(r"\brecsched_[a-z_]+", RULES.read_text(encoding="utf-8")))
    exposed = {key.split("{")[0] for key in _exposed()}
    assert names and names <= exposed, names - exposed


@needs_promtool
def test_each_alert_fires_on_the_first_problem_after_a_start(tmp_path: Path) -> None:
    spec = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": key, "values": values} for key, values in _scenario().items()
                ],
                "alert_rule_test": _expected(),
            }
        ],
    }
    path = tmp_path / "recsched.rules.test.yml"
    path.write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML
    done = _promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
