"""Clock skew from the provider's Date header: pure arithmetic, any local zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from scheduler.clock import SKEW_WARN_SECONDS, provider_skew, skew_is_significant
from scheduler.config import CST

LOCAL = datetime(2026, 1, 1, 4, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "skew"),
    [
        ("Thu, 01 Jan 2026 04:00:00 GMT", 0.0),  # same second
        ("Thu, 01 Jan 2026 04:00:05 GMT", 5.0),  # provider ahead
        ("Thu, 01 Jan 2026 03:59:57 GMT", -3.0),  # provider behind
        ("Wed, 31 Dec 2025 23:59:00 GMT", -4 * 3600 - 60.0),  # across a date
        ("Thu, 01 Jan 2026 04:00:00 -0000", 0.0),  # GMT by definition
        ("Thu, 01 Jan 2026 04:00:00 +0000", 0.0),
        ("Thu, 01 Jan 2026 12:00:00 +0800", 0.0),  # a zone other than GMT is honoured
        ("Thursday, 01-Jan-26 04:00:02 GMT", 2.0),  # obsolete RFC 850 form
        ("Thu Jan  1 04:00:01 2026", 1.0),  # obsolete asctime form, GMT by definition
        (None, None),
        ("", None),
        ("   ", None),
        ("garbage", None),
        ("Thu, 01 Jan 2026", None),
        ("Thu, 32 Jan 2026 04:00:00 GMT", None),
        ("Thu, 01 Foo 2026 04:00:00 GMT", None),
        ("Thu, 01 Jan 2026 25:00:00 GMT", None),
        ("Thu, 01 Jan 99999999999 04:00:00 GMT", None),
    ],
)
def test_provider_skew(header: str | None, skew: float | None) -> None:
    assert provider_skew(header, LOCAL) == skew


def test_sub_second_local_time() -> None:
    # Date is truncated to the second: a reply stamped 04:00:00 seen at 04:00:00.7 reads -0.7
    local = LOCAL + timedelta(milliseconds=700)
    assert provider_skew("Thu, 01 Jan 2026 04:00:00 GMT", local) == pytest.approx(-0.7)
    assert not skew_is_significant(-0.7)


@pytest.mark.parametrize(
    "zone",
    [UTC, CST, ZoneInfo("America/New_York"), timezone(timedelta(hours=-5, minutes=-30))],
    ids=str,
)
def test_local_zone_does_not_matter(zone: tzinfo) -> None:
    same_instant = LOCAL.astimezone(zone)
    assert provider_skew("Thu, 01 Jan 2026 04:00:05 GMT", same_instant) == 5.0
    assert provider_skew("Thu, 01 Jan 2026 03:59:58 GMT", same_instant) == -2.0


def test_cst_and_utc_give_the_same_skew() -> None:
    header = "Thu, 01 Jan 2026 04:00:03 GMT"
    in_cst = datetime(2026, 1, 1, 12, 0, 0, tzinfo=CST)
    in_utc = datetime(2026, 1, 1, 4, 0, 0, tzinfo=UTC)
    assert provider_skew(header, in_cst) == provider_skew(header, in_utc) == 3.0


def test_naive_local_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        provider_skew("Thu, 01 Jan 2026 04:00:00 GMT", datetime(2026, 1, 1, 4, 0, 0))


@pytest.mark.parametrize(
    ("skew", "significant"),
    [
        (None, False),
        (0.0, False),
        (1.0, False),
        (-1.0, False),
        (SKEW_WARN_SECONDS, False),  # the threshold itself is tolerated
        (-SKEW_WARN_SECONDS, False),
        (SKEW_WARN_SECONDS + 0.001, True),
        (-SKEW_WARN_SECONDS - 0.001, True),
        (5.0, True),
        (-3600.0, True),
    ],
)
def test_skew_is_significant(skew: float | None, significant: bool) -> None:
    assert SKEW_WARN_SECONDS == 2.0
    assert skew_is_significant(skew) is significant
