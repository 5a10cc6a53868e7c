"""Clock skew against a provider, from the HTTP `Date` header of its answers. Pure, no I/O.

The provider checks the request's expiry `t` against its own clock, and recording start/end
times are absolute: a local clock that is off shifts every recording. The `Date` header is the
only view of the provider's clock we get.

`Date` has 1 s resolution and is truncated, and it is stamped before the answer crosses the
network, so the measured skew reads low by up to 1 s plus the one-way latency. A skew within
+-1 s is noise; `SKEW_WARN_SECONDS` sits well above it. Pass the local time at which the
answer arrived.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def wall_clock() -> datetime:
    """Now, aware, in UTC: the one place the shell reads the clock."""
    return datetime.now(UTC)


#: Skew beyond this (either way) is worth a warning: well above the header's 1 s noise.
SKEW_WARN_SECONDS = 2.0


def provider_skew(date_header: str | None, local: datetime) -> float | None:
    """Seconds the provider's clock is ahead of ours (negative: behind), from an RFC 1123
    `Date` header such as 'Thu, 01 Jan 2026 04:00:00 GMT'. None when the header is missing
    or unparsable. `local` must be aware (any zone); a naive one raises ValueError."""
    if local.tzinfo is None or local.utcoffset() is None:
        raise ValueError("refusing a naive local datetime: its zone would be the host's")
    if not date_header or not date_header.strip():
        return None
    provider = _http_date(date_header)
    return None if provider is None else (provider - local).total_seconds()


@functools.lru_cache(maxsize=64)
def _http_date(text: str) -> datetime | None:
    """The instant a Date header names, or None. Cached: a burst's answers share a few
    headers (they have one-second resolution), and parsing one costs more than the rest of
    reading the answer."""
    try:
        provider = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if provider.tzinfo is None:
        # '-0000' or no zone at all: an HTTP date is GMT by definition (RFC 9110 §5.6.7)
        provider = provider.replace(tzinfo=UTC)
    return provider


def skew_is_significant(skew: float | None) -> bool:
    """True when a measured skew exceeds SKEW_WARN_SECONDS either way (None: unknown, False)."""
    return skew is not None and abs(skew) > SKEW_WARN_SECONDS
