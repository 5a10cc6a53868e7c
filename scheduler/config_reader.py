"""Typed readers for YAML values that collect located problems instead of raising.

Every reader takes (mapping, key path of the mapping, key) and returns a value or a default;
when the value is wrong it records a `Problem` naming file, line, column and key path, so one
`recsched check` run lists every mistake in the file.
"""

from __future__ import annotations

import difflib
import re
from datetime import date, datetime, timedelta, tzinfo
from typing import overload

from scheduler.cron import cron_trigger
from scheduler.durations import parse_duration
from scheduler.errors import Problem
from scheduler.yamlstrict import Marks, Path, format_path

_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
#: All those formats can match (strptime's \d and \s, '-', ':'): text with anything else (an
#: ISO 8601 'T', an offset's '+') goes straight to fromisoformat, sparing two failed strptime
#: calls (exceptions, ~10 us each) per one-off time.
_STRPTIME_TEXT = re.compile(r"[\d\s:-]*")
_HAS_TIME = re.compile(r"\d{4}-?\d{2}-?\d{2}[T ]\d")


class Reader:
    def __init__(self, filename: str, marks: Marks) -> None:
        self.filename = filename
        self.marks = marks
        self.problems: list[Problem] = []
        self.warnings: list[str] = []

    # -- reporting ---------------------------------------------------------------------------
    def _problem(self, path: Path, message: str) -> Problem:
        probe = path
        while probe and probe not in self.marks:
            probe = probe[:-1]
        line, col = self.marks.get(probe, (0, 0))
        return Problem(self.filename, line, col, format_path(path), message)

    def error(self, path: Path, message: str) -> None:
        self.problems.append(self._problem(path, message))

    def warn(self, path: Path, message: str) -> None:
        self.warnings.append(str(self._problem(path, message)))

    def line(self, path: Path) -> int:
        return self.marks.get(path, (0, 0))[0]

    @staticmethod
    def raw(m: dict[str, object], key: str) -> str:
        return str(m.get(key))

    def finish(self, m: dict[str, object], p: Path, allowed: str) -> None:
        """Report every key of `m` not in the space-separated `allowed` list."""
        known = _ALLOWED.get(allowed)
        if known is None:
            known = _ALLOWED[allowed] = frozenset(allowed.split())
        if known.issuperset(m):  # every key of every valid file: no list to search
            return
        names = allowed.split()
        for key in m:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = (
                    f"; did you mean {close[0]!r}?" if close else f" (allowed: {', '.join(names)})"
                )
                self.error((*p, key), f"unknown key{hint}")

    # -- containers --------------------------------------------------------------------------
    def mapping(self, p: Path, value: object, *, required: bool = False) -> dict[str, object]:
        if value is None:
            if required:
                self.error(p, "is required")
            return {}
        if not isinstance(value, dict):
            self.error(p, f"must be a mapping of key: value, not {_kind(value)}")
            return {}
        return value

    def sequence(self, p: Path, value: object, *, required: bool = False) -> list[object]:
        if value is None:
            if required:
                self.error(p, "is required (a list, each item starting with '- ')")
            return []
        if not isinstance(value, list):
            self.error(p, f"must be a list (items starting with '- '), not {_kind(value)}")
            return []
        return value

    # -- scalars -----------------------------------------------------------------------------
    def text(
        self,
        m: dict[str, object],
        p: Path,
        key: str,
        *,
        default: str | None = None,
        required: bool = False,
    ) -> str | None:
        value = m.get(key)
        if value is None:
            if required:
                self.error((*p, key), "is required")
            return default
        if not isinstance(value, str) or not value.strip():
            self.error((*p, key), f"must be non-empty text, not {_kind(value)}")
            return default
        return value

    def choice(
        self,
        m: dict[str, object],
        p: Path,
        key: str,
        options: tuple[str, ...],
        *,
        default: str | None,
    ) -> str | None:
        value = self.text(m, p, key, default=default, required=default is None)
        if value is not None and value not in options:
            self.error((*p, key), f"{value!r} is not one of: {', '.join(options)}")
            return default
        return value

    def integer(
        self,
        m: dict[str, object],
        p: Path,
        key: str,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        default: int | None = None,
        required: bool = False,
    ) -> int | None:
        value = m.get(key)
        if value is None:
            if required:
                self.error((*p, key), "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.error((*p, key), f"must be a whole number, not {_kind(value)}")
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            low = "" if minimum is None else f"at least {minimum}"
            high = "" if maximum is None else f"at most {maximum}"
            self.error(
                (*p, key),
                f"{value} is out of range (must be {' and '.join(filter(None, (low, high)))})",
            )
            return default
        return value

    def boolean(self, m: dict[str, object], p: Path, key: str, *, default: bool) -> bool:
        value = m.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error((*p, key), f"must be true or false, not {_kind(value)}")
            return default
        return value

    @overload
    def duration(
        self, m: dict[str, object], p: Path, key: str, *, default: timedelta
    ) -> timedelta: ...
    @overload
    def duration(
        self, m: dict[str, object], p: Path, key: str, *, default: None
    ) -> timedelta | None: ...
    def duration(
        self, m: dict[str, object], p: Path, key: str, *, default: timedelta | None
    ) -> timedelta | None:
        value = m.get(key)
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.error((*p, key), str(exc))
            return default

    def moment(self, m: dict[str, object], p: Path, key: str, tz: tzinfo) -> datetime | None:
        value = m.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            formats = _DATETIME_FORMATS if _STRPTIME_TEXT.fullmatch(value.strip()) else ()
            for fmt in formats:
                try:
                    return datetime.strptime(value.strip(), fmt).replace(tzinfo=tz)
                except ValueError:
                    pass
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                pass
            else:
                if _HAS_TIME.match(value.strip()):  # fromisoformat takes a bare date as 00:00
                    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
        self.error(
            (*p, key),
            f"{value!r} is not a date and time (YYYY-MM-DD HH:MM[:SS], in `timezone`)",
        )
        return None

    def day(self, m: dict[str, object], p: Path, key: str) -> date | None:
        value = m.get(key)
        return None if value is None else self._date((*p, key), value)

    def days(self, m: dict[str, object], p: Path, key: str) -> list[date]:
        items = self.sequence((*p, key), m.get(key))
        found = (self._date((*p, key, i), item) for i, item in enumerate(items))
        return [d for d in found if d is not None]

    def _date(self, path: Path, value: object) -> date | None:
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.error(path, f"{value!r} is not a date (YYYY-MM-DD)")
        return None

    def cron(self, m: dict[str, object], p: Path, tz: tzinfo) -> str | None:
        expression = self.text(m, p, "cron")
        if expression is None:
            return None
        try:
            cron_trigger(expression, tz)
        except ValueError as exc:
            self.error((*p, "cron"), f"{expression!r} is not a valid cron expression: {exc}")
            return None
        return expression


#: finish()'s `allowed` lists as sets (the few lists in the code, each split once).
_ALLOWED: dict[str, frozenset[str]] = {}


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
