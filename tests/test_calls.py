"""`Call` is a tagged union, one frozen class per provider kind: each planner makes its own kind,
each kind has only the fields that mean something for it, and `to_json` (the `recsched plan
--json` contract) is the text it was when one class served every provider."""

from __future__ import annotations

import dataclasses
import inspect
import json
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.calls import BaseCall, Call, LiveCall, LvbCall, WebCall
from scheduler.config import Config, parse_config
from scheduler.ledger import Entry, State
from scheduler.live_plan import FollowUp, follow_up_call
from scheduler.planner import plan
from tests.test_web_config import ENV as WEB_ENV
from tests.test_web_config import ISSUE_EXAMPLE

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # 20:00 CST
COMMON = {
    "at": T0,
    "start": T0,
    "deadline": T0 + timedelta(minutes=30),
    "recording": "news",
    "chunk": 1,
    "chunks": 2,
    "window_start": T0,
    "window_end": T0 + timedelta(hours=1),
}
LVB_PARAMS = (
    ("Action", "Live_Tape_Start"),
    ("Param.s.channel_id", "8888_news"),
    ("Param.s.end_time", "2026-12-01 20:30:00"),
)
LIVE = """
providers:
  tencent:
    type: live
    secret_id: ${TC_ID}
    secret_key: ${TC_KEY}
    region: ap-shanghai
recordings:
  - {name: a, start: '2026-12-01 08:00:00', domain: push.example.com, app: live, stream: news,
     duration: 30h}
"""
LVB = """
providers:
  lvb: {appid: 1234, key: "${LVB_KEY}"}
recordings:
  - {name: news, channel_id: 8888_news, cron: "0 20 * * *", duration: 1h}
"""


def _lvb() -> LvbCall:
    return LvbCall(
        key="news/k/1/Live_Tape_Start",
        provider="lvb",
        action="Live_Tape_Start",
        target="lvb:1234/8888_news",
        params=LVB_PARAMS,
        **COMMON,  # type: ignore[arg-type]
    )


def _web_stop() -> WebCall:
    return WebCall(
        key="page/k/1/Stop",
        provider="web",
        action="Stop",
        target="web:x",
        data=json.dumps({"TaskID": "{task_id}"}),
        needs="page/k/1/Start",
        **COMMON,  # type: ignore[arg-type]
    )


def _web_start() -> WebCall:
    return WebCall(
        key="page/k/1/Start",
        provider="web",
        action="Start",
        target="web:y",
        data=json.dumps({"RecordURL": "https://e.x/ü", "MaxDurationLimit": 3900}),
        **COMMON,  # type: ignore[arg-type]
    )


def _live() -> LiveCall:
    return LiveCall(
        key="s/k/1/CreateRecordTask",
        provider="live",
        action="CreateRecordTask",
        target="live:z",
        data=json.dumps({"StreamName": "s", "StartTime": 1}),
        **COMMON,  # type: ignore[arg-type]
    )


def _planned(config: Config) -> list[Call]:
    return plan(config, datetime(2026, 11, 30, 8, 0, tzinfo=UTC), timedelta(days=3))


def _configs() -> dict[type[BaseCall], Config]:
    return {
        LvbCall: parse_config(LVB, "l.yaml", env={"LVB_KEY": "k"}),
        WebCall: parse_config(ISSUE_EXAMPLE, "w.yaml", env=WEB_ENV),
        LiveCall: parse_config(LIVE, "v.yaml", env={"TC_ID": "AKIDx", "TC_KEY": "y"}),
    }


@pytest.mark.parametrize("kind", [LvbCall, WebCall, LiveCall], ids=lambda k: k.__name__)
def test_each_provider_plans_its_own_kind_of_call(kind: type[BaseCall]) -> None:
    calls = _planned(_configs()[kind])
    assert calls
    assert {type(c) for c in calls} == {kind}


def test_each_kind_has_only_the_fields_that_mean_something_for_it() -> None:
    names = {kind: {f.name for f in dataclasses.fields(kind)} for kind in (LvbCall, WebCall)}
    common = {f.name for f in dataclasses.fields(BaseCall)}
    assert names[LvbCall] - common == {"params"}
    assert names[WebCall] - common == {"data", "needs"}
    assert {f.name for f in dataclasses.fields(LiveCall)} - common == {"data"}
    lvb, web, live = (_planned(config)[0] for config in _configs().values())
    assert not hasattr(lvb, "data") and not hasattr(lvb, "needs")
    assert not hasattr(web, "params") and not hasattr(web, "param")
    assert not hasattr(live, "params") and not hasattr(live, "needs")


def test_calls_are_frozen_and_built_by_keyword() -> None:
    call = _lvb()
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.key = "other"  # type: ignore[misc]
    assert all(f.kw_only for kind in (LvbCall, WebCall, LiveCall) for f in dataclasses.fields(kind))
    # a call of one kind never equals one of another kind with the same fields
    assert _live() != WebCall(
        **{f.name: getattr(_live(), f.name) for f in dataclasses.fields(_live())}
    )


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (
            _lvb,
            '{"at": "2026-12-01T20:00:00+08:00", "recording": "news", "provider": "lvb", '
            '"action": "Live_Tape_Start", "key": "news/k/1/Live_Tape_Start", "params": '
            '{"Action": "Live_Tape_Start", "Param.s.channel_id": "8888_news", '
            '"Param.s.end_time": "2026-12-01 20:30:00"}}',
        ),
        (
            _web_stop,
            '{"at": "2026-12-01T20:00:00+08:00", "recording": "news", "provider": "web", '
            '"action": "Stop", "key": "page/k/1/Stop", "params": {"Action": "Stop", "Data": '
            '{"TaskID": "{task_id}"}}, "task_of": "page/k/1/Start"}',
        ),
        (
            _web_start,
            '{"at": "2026-12-01T20:00:00+08:00", "recording": "news", "provider": "web", '
            '"action": "Start", "key": "page/k/1/Start", "params": {"Action": "Start", "Data": '
            '{"RecordURL": "https://e.x/ü", "MaxDurationLimit": 3900}}}',
        ),
        (
            _live,
            '{"at": "2026-12-01T20:00:00+08:00", "recording": "news", "provider": "live", '
            '"action": "CreateRecordTask", "key": "s/k/1/CreateRecordTask", "params": '
            '{"Action": "CreateRecordTask", "Data": {"StreamName": "s", "StartTime": 1}}}',
        ),
    ],
    ids=["lvb", "web-stop", "web-start", "live"],
)
def test_plan_json_is_the_text_it_always_was(make: Callable[[], Call], text: str) -> None:
    assert json.dumps(make().to_json(), ensure_ascii=False) == text


def test_log_fields_name_a_chunk_for_lvb_and_a_task_otherwise() -> None:
    assert _lvb().log_fields() == {
        "recording": "news",
        "provider": "lvb",
        "action": "Live_Tape_Start",
        "channel_id": "8888_news",
        "chunk": "1/2",
        "scheduled_at": "2026-12-01T20:00:00+08:00",
        "end_time": "2026-12-01 20:30:00",
        "call_key": "news/k/1/Live_Tape_Start",
    }
    for call in (_web_stop(), _live()):
        assert call.log_fields() == {
            "recording": "news",
            "provider": call.provider,
            "action": call.action,
            "task": "1/2",
            "scheduled_at": "2026-12-01T20:00:00+08:00",
            "call_key": call.key,
        }


def test_the_ledger_stores_the_shared_fields_of_every_kind_alike() -> None:
    """The ledger's entry (its stored form) is made of the shared fields only: an old ledger
    reads back whatever kind of call wrote it."""
    entries = [Entry.claimed(make(), T0) for make in (_lvb, _web_stop, _live)]
    shared = {
        "state": State.CLAIMED,
        "chunk": 1,
        "chunks": 2,
        "span_start": T0,
        "span_end": T0 + timedelta(minutes=30),
        "scheduled_at": T0,
        "window_start": T0,
        "window_end": T0 + timedelta(hours=1),
    }
    for entry in entries:
        assert {name: getattr(entry, name) for name in shared} == shared
    assert [(e.key, e.provider, e.action, e.target) for e in entries] == [
        ("news/k/1/Live_Tape_Start", "lvb", "Live_Tape_Start", "lvb:1234/8888_news"),
        ("page/k/1/Stop", "web", "Stop", "web:x"),
        ("s/k/1/CreateRecordTask", "live", "CreateRecordTask", "live:z"),
    ]


def test_a_live_follow_up_is_a_live_call_carrying_the_task_id() -> None:
    created = Entry.claimed(_live(), T0)
    created = dataclasses.replace(created, state=State.OK, task_id="T1")
    call = follow_up_call(
        FollowUp(created, "StopRecordTask", T0, "s/k/1/CreateRecordTask/Stop", "")
    )
    assert isinstance(call, LiveCall)
    assert json.loads(call.data) == {"TaskId": "T1"}


def test_an_lvb_call_is_built_as_its_frozen_dataclass_would_build_it() -> None:
    """LvbCall writes its own __init__ (for speed): it takes every field, sets each to what
    was given, and the call stays frozen, comparable, hashable and replaceable."""
    names = [f.name for f in dataclasses.fields(LvbCall)]
    taken = [n for n in inspect.signature(LvbCall.__init__).parameters if n != "self"]
    assert taken == names  # a field added to BaseCall must be added to LvbCall.__init__ too
    given = {**COMMON, "key": "news/k/1/x", "provider": "lvb", "action": "Live_Tape_Start"}
    given |= {"target": "lvb:t", "params": LVB_PARAMS}
    call = LvbCall(**given)  # type: ignore[arg-type]
    assert {n: getattr(call, n) for n in names} == given
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.key = "other"  # type: ignore[misc]
    assert dataclasses.replace(call) == call and hash(dataclasses.replace(call)) == hash(call)
    assert dataclasses.replace(call, chunk=2).chunk == 2 and call.chunk == 1
    assert call != dataclasses.replace(call, key="news/k/2/x")


def test_lvb_calls_take_no_more_memory_than_the_generated_dataclass() -> None:
    """A large plan holds tens of thousands of LvbCalls: the hand-written __init__ must leave
    their dicts sharing keys as the generated one does (one __dict__.update made each call's
    dict its own: 8 MB more per 24,000 calls, over the daemon's 150 MB budget)."""
    spec = [(f.name, f.type) for f in dataclasses.fields(LvbCall)]
    generated = dataclasses.make_dataclass("Generated", spec, frozen=True, kw_only=True)
    given = {**COMMON, "key": "k", "provider": "lvb", "action": "a", "target": "t", "params": ()}

    def traced(cls: Callable[..., object]) -> int:
        tracemalloc.start()
        try:
            made = [cls(**given) for _ in range(2000)]
            size = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert len(made) == 2000
        return size

    assert traced(LvbCall) <= traced(generated) * 1.05
