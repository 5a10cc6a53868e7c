"""`recsched check`'s summary line ("N call(s) in the next 2d, first at …") is counted by
planner.summary without building the calls; it must say exactly what plan() would: the number
of calls and the first one's instant, for every kind of recording, at any `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from scheduler.calls import LvbCall
from scheduler.cli import _plan_row
from scheduler.config import parse_config
from scheduler.planner import plan, summary
from scheduler.providers.lvb import format_cst

ENV = {"LVB_KEY": "k", "WEB_APP_KEY": "APIDkey", "WEB_APP_SECRET": "web-secret"}
HEAD = """\
timezone: {zone}
providers:
  lvb: {{appid: 1234, key: "${{LVB_KEY}}"}}
  page:
    type: web
    endpoint: https://service-a.gz.apigw.tencentcs.com/release/record
    app_key: ${{WEB_APP_KEY}}
    app_secret: ${{WEB_APP_SECRET}}
recordings:
"""
LVB = "provider: lvb, channel_id: c{n}"
KINDS = [
    "{{name: r{n}, " + LVB + ", cron: '30 1 * * *', duration: 95m}}",  # 4 chunks, last short
    "{{name: m{n}, " + LVB + ", cron: '0 2 * * *', duration: 62m, chunk: 20m, min_chunk: 3m}}",
    "{{name: t{n}, " + LVB + ", mode: scheduled, cron: '0 4 * * *', duration: 21h, chunk: 10h,"
    " min_chunk: 2h}}",  # a short last piece merged (the 24 h task limit allows it)
    "{{name: s{n}, " + LVB + ", mode: scheduled, cron: '0 3 * * 0', duration: 30h, lead: 5m}}",
    "{{name: o{n}, " + LVB + ", start: 2027-03-14 01:50, duration: 3h}}",  # across NY's gap
    "{{name: e{n}, " + LVB + ", cron: '*/20 * * * *', duration: 5m, chunk: 2m}}",
    "{{name: w{n}, provider: page, url: 'https://example.com/{n}', cron: '0 9 * * *',"
    " duration: 2h}}",
]
ZONES = ["Asia/Shanghai", "America/New_York", "UTC"]


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.lists(st.integers(0, len(KINDS) - 1), min_size=0, max_size=8),
    zone=st.sampled_from(ZONES),
    now=st.datetimes(min_value=datetime(2027, 3, 12), max_value=datetime(2027, 3, 16)),
    hours=st.integers(1, 72),
)
@example(kinds=[0, 1, 2, 3, 4, 5, 6], zone="America/New_York", now=datetime(2027, 3, 14, 6, 55),
         hours=48)  # fmt: skip
@example(kinds=[], zone="UTC", now=datetime(2027, 3, 12), hours=1)  # nothing to count
def test_summary_is_what_plan_says(kinds: list[int], zone: str, now: datetime, hours: int) -> None:
    text = HEAD.format(zone=zone) + "".join(
        "  - " + KINDS[k].format(n=n) + "\n" for n, k in enumerate(kinds)
    )
    text = text if kinds else text.replace("recordings:\n", "recordings: []\n")
    config = parse_config(text, "s.yaml", env=ENV)
    moment, horizon = now.replace(tzinfo=UTC), timedelta(hours=hours)
    calls = plan(config, moment, horizon)
    assert summary(config, moment, horizon) == (len(calls), calls[0].at if calls else None)


@settings(max_examples=40, deadline=None)
@given(
    kinds=st.lists(st.integers(0, len(KINDS) - 1), min_size=1, max_size=8),
    zone=st.sampled_from(ZONES),
    now=st.datetimes(min_value=datetime(2027, 3, 12), max_value=datetime(2027, 3, 16)),
)
def test_each_plan_row_shows_its_calls_instant_and_span(
    kinds: list[int], zone: str, now: datetime
) -> None:
    # `recsched plan`'s table reuses a real-time call's start_time text for its instant; a
    # scheduled call (sent `lead` early) must still show its own instant
    text = HEAD.format(zone=zone) + "".join(
        f"  - {KINDS[k].format(n=i)}\n" for i, k in enumerate(kinds)
    )
    config = parse_config(text, "recsched.yaml", env=ENV)
    for call in plan(config, now.replace(tzinfo=UTC), timedelta(hours=48)):
        if not isinstance(call, LvbCall):
            continue
        at, recording, _, channel, span, chunk = _plan_row(call)
        assert at == format_cst(call.at) and recording == call.recording
        assert span == f"{format_cst(call.start)} → {format_cst(call.deadline)[11:]}"
        assert channel == call.param("Param.s.channel_id")
        assert chunk == f"{call.chunk}/{call.chunks}"
