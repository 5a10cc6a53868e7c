"""Parse and format the human durations used in the YAML (`90s`, `30m`, `1h30m`, `2d`, `45`)."""

from __future__ import annotations

import functools
import re
from datetime import timedelta

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(value: object) -> timedelta:
    """Return the duration written as `value`, or raise ValueError with a message for operators.

    Accepts a whole number of seconds (`90`) or a compact string of d/h/m/s parts in that
    order (`1h30m`, `90s`, `2d`). Zero and negative lengths are rejected.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (use e.g. 90s, 30m, 1h30m)")
    if isinstance(value, str):
        return _parse_text(value)  # a schedule repeats a few texts thousands of times
    return _parse(value)


@functools.lru_cache(maxsize=1024)
def _parse_text(value: str) -> timedelta:
    return _parse(value)


def _parse(value: object) -> timedelta:
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        match = _DURATION.fullmatch(text)
        if text.isdigit():
            seconds = int(text)
        elif not text or match is None:
            raise ValueError(f"{value!r} is not a duration (use e.g. 90s, 30m, 1h30m)")
        else:
            seconds = sum(
                int(part) * _UNIT_SECONDS[unit]
                for part, unit in zip(match.groups(), "dhms", strict=True)
                if part is not None
            )
    else:
        raise ValueError(f"{value!r} is not a duration (use e.g. 90s, 30m, 1h30m)")
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """Format `delta` the way the YAML writes it: `1h30m`, `45s`, `2d`."""
    total = int(delta.total_seconds())
    if total == 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
