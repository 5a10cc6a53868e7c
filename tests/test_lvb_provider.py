"""The LVB request is built exactly as Tencent documents it, whatever the host time zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.config import LvbProvider, Recording
from scheduler.errors import PermanentError, TransientError
from scheduler.providers import lvb

CST = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("key", "t", "expected"),
    [
        # the two worked examples in Tencent's own documents (reference §1.1)
        ("5d41402abc4b2a76b9719d911017c592", 1471850187, "b17971b51ba0fe5916ddcd96692e9fb3"),
        ("40328529ca4381a80c6ecf2e6aa57438", 1490858347, "7f29ed83c61b77de1b0d66936fd4fd44"),
        # ours: 2026-01-01 12:01:00 CST
        ("lvb-secret-key", 1767240060, "bc0b064a6f8b11f09ad0c6c4b994de87"),
    ],
)
def test_sign_known_answers(key: str, t: int, expected: str) -> None:
    assert lvb.sign(key, t) == expected


def test_expiry_is_seconds_plus_ttl_never_milliseconds() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, 900_000, tzinfo=CST)
    assert lvb.expiry(now, timedelta(seconds=60)) == 1767240060


def _provider() -> LvbProvider:
    return LvbProvider(name="lvb", endpoint="http://x/common_access", appid=1234, key=None)


def _recording(mode: str = "realtime") -> Recording:
    return Recording(
        name="news",
        provider="lvb",
        channel_id="8888_test123",
        mode=mode,
        duration=timedelta(minutes=30),
        chunk=timedelta(minutes=30),
        file_format="mp4",
    )


def test_reference_sample_query_is_reproduced_byte_for_byte() -> None:
    start = datetime(2026, 1, 1, 12, 0, tzinfo=CST)
    params = lvb.start_params(_provider(), _recording(), start, start + timedelta(minutes=30))
    assert lvb.query(params, "lvb-secret-key", 1767240060) == (
        "appid=1234&interface=Live_Tape_Start&t=1767240060"
        "&sign=bc0b064a6f8b11f09ad0c6c4b994de87&Param.s.channel_id=8888_test123"
        "&Param.s.start_time=2026-01-01+12%3A00%3A00&Param.s.end_time=2026-01-01+12%3A30%3A00"
        "&Param.n.task_sub_type=1&Param.s.file_format=mp4&Param.s.record_type=video"
    )


_TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", "a b", "2026-01-01 12:00:00", "12:00", "a/b", "x+y&z=1", "%41", "~._-", "é", "8888_test"]
)


@given(
    params=st.lists(st.tuples(_TEXT, _TEXT), max_size=8).map(tuple),
    key=st.text(max_size=8),
    t=st.integers(0, 2**40),
)
def test_the_query_is_what_urlencode_writes(
    params: tuple[tuple[str, str], ...], key: str, t: int
) -> None:
    # query() escapes by hand what needs it (urlencode was half of a burst's work): the bytes
    # must stay urlencode's, whatever the text
    head = [p for p in params if p[0] in ("appid", "interface")]
    rest = [p for p in params if p[0] not in ("appid", "interface")]
    expected = urlencode([*head, ("t", str(t)), ("sign", lvb.sign(key, t)), *rest])
    assert lvb.query(params, key, t) == expected


def test_times_are_cst_on_the_wire_whatever_the_host_zone(host_tz: str) -> None:
    # 12:00 UTC is 20:00 CST; a naive or host-local formatting would print 12:00 or 07:00.
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    end = datetime(2026, 12, 1, 7, 30, tzinfo=ZoneInfo("America/New_York"))  # = 20:30 CST
    params = dict(lvb.start_params(_provider(), _recording(), start, end))
    assert params["Param.s.start_time"] == "2026-12-01 20:00:00"
    assert params["Param.s.end_time"] == "2026-12-01 20:30:00"
    decoded = dict(parse_qsl(lvb.query(tuple(params.items()), "k", 1)))
    assert decoded["Param.s.start_time"] == "2026-12-01 20:00:00"  # encoded exactly once


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        lvb.format_cst(datetime(2026, 12, 1, 20, 0))


def test_scheduled_mode_sends_sub_type_zero() -> None:
    start = datetime(2026, 12, 1, 10, tzinfo=CST)
    params = dict(lvb.start_params(_provider(), _recording("scheduled"), start, start))
    assert params["Param.n.task_sub_type"] == "0"


def test_task_ids_above_2_pow_53_are_kept_exact() -> None:
    body = '{"ret":0,"message":"","output":{"task_id":18446744073709000001}}'
    assert lvb.parse_response(200, body) == "18446744073709000001"
    assert lvb.parse_response(200, '{"ret":0,"output":{"task_id":"42"}}') == "42"


@pytest.mark.parametrize(
    ("status", "body", "error", "ret"),
    [
        (200, '{"ret": -505, "message": "stream not live"}', PermanentError, -505),
        (200, '{"ret": 1, "message": "appid is invalid"}', PermanentError, 1),
        (403, "Forbidden", PermanentError, None),
        (404, "Not Found", PermanentError, None),
        (500, "oops", TransientError, None),
        (502, "Bad Gateway", TransientError, None),
        (429, "slow down", TransientError, None),
        (200, "<html>proxy</html>", TransientError, None),
        (200, '{"message": "no ret"}', TransientError, None),
    ],
)
def test_answers_are_classified(
    status: int, body: str, error: type[Exception], ret: int | None
) -> None:
    with pytest.raises(error) as caught:
        lvb.parse_response(status, body)
    assert getattr(caught.value, "ret", None) == ret
    # permanent failures are not TransientError and vice versa: the retry rule depends on it
    assert isinstance(caught.value, TransientError) == (error is TransientError)


@pytest.mark.parametrize("body", ["<html>proxy</html>", '{"message": "no ret"}', ""])
def test_an_unreadable_200_means_the_outcome_is_unknown(body: str) -> None:
    # the request reached the provider, which may have created the task: say so in the log
    with pytest.raises(TransientError) as caught:
        lvb.parse_response(200, body)
    assert caught.value.outcome_unknown


@pytest.mark.parametrize("status", [500, 502, 429])
def test_an_error_status_is_transient_and_known_not_to_have_succeeded(status: int) -> None:
    with pytest.raises(TransientError) as caught:
        lvb.parse_response(status, "")
    assert not caught.value.outcome_unknown


@given(
    moment=st.datetimes(
        min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    )
)
def test_format_cst_writes_the_documented_format(moment: datetime) -> None:
    """`YYYY-MM-DD HH:MM:SS` in CST as strftime writes it, seconds truncated, from any zone
    (and from UTC, whose instants reuse their hour's text: asked twice, the same answer)."""
    expected = moment.astimezone(CST).strftime(lvb.TIME_FORMAT)
    assert lvb.format_cst(moment) == expected
    in_utc = moment.astimezone(UTC)
    assert lvb.format_cst(in_utc) == expected
    assert lvb.format_cst(in_utc.replace()) == expected


@pytest.mark.parametrize(
    "hour",
    [
        datetime(1900, 12, 31, 15, tzinfo=UTC),  # Shanghai's mean time (+08:05:43) ends at :54:17
        datetime(1986, 5, 3, 18, tzinfo=UTC),  # summer time (+09) starts at the hour's end
        datetime(1986, 9, 13, 17, tzinfo=UTC),  # and ends
    ],
)
def test_format_cst_of_utc_instants_is_exact_where_the_offset_changes(hour: datetime) -> None:
    """A UTC instant's text is built from its hour's (formatted once): exact even in the hours
    around China's offset changes, every 7 s through them."""
    for seconds in range(-3600, 7200, 7):
        moment = hour + timedelta(seconds=seconds, microseconds=999_999)
        assert lvb.format_cst(moment) == moment.astimezone(CST).strftime(lvb.TIME_FORMAT)


class _HalfPastChange(tzinfo):
    """+08:00, then +09:00 from 2030-01-01 12:30 UTC: a whole-hour offset changing inside a
    UTC hour (China has never had one; its rules may change)."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        assert dt is not None
        return timedelta(hours=9 if dt.replace(tzinfo=None) >= datetime(2030, 1, 1, 21, 30) else 8)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def fromutc(self, dt: datetime) -> datetime:
        change = datetime(2030, 1, 1, 12, 30, tzinfo=self)
        return dt + timedelta(hours=9 if dt >= change else 8)


def test_format_cst_of_utc_instants_follows_a_change_inside_an_hour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    zone = _HalfPastChange()
    monkeypatch.setattr(lvb, "CST", zone)
    monkeypatch.setattr(lvb, "_CST_HOURS", {})
    hour = datetime(2030, 1, 1, 12, tzinfo=UTC)
    texts = [lvb.format_cst(hour + timedelta(minutes=m)) for m in range(60)]
    assert texts == [
        (hour + timedelta(minutes=m)).astimezone(zone).strftime(lvb.TIME_FORMAT) for m in range(60)
    ]
    assert texts[29:31] == ["2030-01-01 20:29:00", "2030-01-01 21:30:00"]


def test_start_params_keep_wire_order() -> None:
    """appid, interface, channel, the two times, then the recording's formats (and path)."""
    start = datetime(2026, 12, 1, 20, 0, tzinfo=CST)
    rec = replace(_recording(), path="/p", domain="d.example")
    names = [name for name, _ in lvb.start_params(_provider(), rec, start, start)]
    assert names == [
        "appid",
        "interface",
        "Param.s.channel_id",
        "Param.s.start_time",
        "Param.s.end_time",
        "Param.n.task_sub_type",
        "Param.s.file_format",
        "Param.s.record_type",
        "Param.s.path",
        "Param.s.domain",
    ]
    assert [names[lvb.CHANNEL_AT], names[lvb.START_TIME_AT], names[lvb.END_TIME_AT]] == [
        "Param.s.channel_id",
        "Param.s.start_time",
        "Param.s.end_time",
    ]
