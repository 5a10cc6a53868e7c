"""Re-planning reuses what the plan before computed (planner._Memo): it must never change the
answer. Every plan in a sequence (time moving forward, backward, across DST changes, the file
edited in between) is compared with the same plan made from scratch."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler import planner
from scheduler.calls import Call
from scheduler.config import Config, parse_config
from scheduler.planner import plan

ZONES = ["Asia/Shanghai", "America/New_York", "Europe/London", "UTC"]
# 01:30 and 01:*/20 fall in the hour New York and London repeat in autumn (once only, as cron
# does); 02:15 on 2026-03-08 does not exist in New York.
CRONS = [
    "0 20 * * 1-5",
    "30 3 * * *",
    "15 2 * * 0",
    "0 10 1 * 0",
    "*/20 4-23 * * *",
    "45 23 */2 * *",
    "0 0 * * 6,0",
    "30 1 * * *",
    "*/20 1 * * *",
]
# Around the 2026 DST changes of New York (Mar 8, Nov 1) and London (Mar 29, Oct 25).
STARTS = [datetime(2026, m, d, 12, tzinfo=UTC) for m, d in ((3, 7), (3, 28), (10, 24), (11, 1))]


def _recording(i: int, cron: str, mode: str, extra: bool, skip: bool) -> str:
    lines = [f"  - name: r{i}", f"    channel_id: ch{i % 3}", f'    cron: "{cron}"']
    if mode == "scheduled":
        lines += ["    mode: scheduled", "    duration: 3h", "    lead: 10m"]
    else:
        lines += ["    duration: 75m", "    chunk: 20m"]
    if extra:
        lines.append("    extra_dates: [2026-03-08, 2026-11-01, 2026-10-25]")
    if skip:
        lines.append("    skip_dates: [2026-03-09, 2026-11-02]")
    return "\n".join(lines)


def _config(zone: str, recs: list[tuple[str, str, bool, bool]], one_off: bool) -> Config:
    items = [_recording(i, *r) for i, r in enumerate(recs)]
    if one_off:
        items.append(
            "  - name: once\n    channel_id: ch9\n    start: 2026-03-08 01:30\n    duration: 2h"
        )
    text = (
        f"timezone: {zone}\nproviders:\n  lvb: {{appid: 1234, key: '${{LVB_KEY}}'}}\n"
        "daemon: {horizon: 30h, replan_every: 1h}\nrecordings:\n" + "\n".join(items) + "\n"
    )
    return parse_config(text, "t.yaml", env={"LVB_KEY": "k"})


def _facts(calls: list[Call]) -> list[tuple[object, ...]]:
    """Everything about the calls, each time as (ISO 8601 with offset, zone). Not `fold`:
    APScheduler passes a fold=1 from the instant it starts counting at to times that are not
    ambiguous, where fold changes nothing (not the instant, offset, text or comparisons); the
    memo may count from another instant, so only such meaningless folds can differ."""

    def fact(value: object) -> object:
        if isinstance(value, datetime):
            return (value.isoformat(), str(value.tzinfo))
        return value

    return [tuple(fact(getattr(c, f.name)) for f in fields(c)) for c in calls]


def _from_scratch(config: Config, now: datetime) -> list[tuple[object, ...]]:
    saved = planner._memos, planner._previous_memos
    planner._memos, planner._previous_memos = {}, {}
    try:
        return _facts(plan(config, now))
    finally:
        planner._memos, planner._previous_memos = saved


recordings = st.lists(
    st.tuples(
        st.sampled_from(CRONS),
        st.sampled_from(["realtime", "scheduled"]),
        st.booleans(),
        st.booleans(),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    recs=recordings,
    one_off=st.booleans(),
    start=st.sampled_from(STARTS),
    steps=st.lists(
        st.tuples(
            st.integers(min_value=-3 * 3600, max_value=6 * 3600),  # seconds to move `now`
            st.sampled_from(["utc", "zone", "offset"]),  # how `now` is expressed
            st.booleans(),  # edit the file (drop the first recording) before this plan
        ),
        min_size=2,
        max_size=6,
    ),
)
def test_replanning_gives_the_plan_made_from_scratch(
    zone: str,
    recs: list[tuple[str, str, bool, bool]],
    one_off: bool,
    start: datetime,
    steps: list[tuple[int, str, bool]],
) -> None:
    config = _config(zone, recs, one_off)
    now = start
    for seconds, form, edit in steps:
        now = now + timedelta(seconds=seconds, microseconds=137)
        if edit and len(recs) > 1:
            recs = recs[1:]
            config = _config(zone, recs, one_off)
        shown = {
            "utc": now,
            "zone": now.astimezone(ZoneInfo(zone)),
            "offset": now.astimezone(ZoneInfo(zone)).astimezone(),
        }[form]
        assert _facts(plan(config, shown)) == _from_scratch(config, shown)
