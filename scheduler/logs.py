"""Structured logging: one JSON object per line (or a readable console on a TTY).

Redaction lives here and nowhere else: fields named like secrets are masked, `sign=` in any
URL is masked, and every secret value registered with `register_secret` is masked wherever it
appears. stdlib loggers (APScheduler, aiohttp) get the same fields and redaction, so they are
JSON too, on the same stream.

Every line costs CPU on the event loop at the instant a call is sent (two or three lines per
call; 1,000 calls due together write ~2,500 lines), so the common cases are fast paths here:
see docs/benchmarks.md for the profile. None of them skips the redaction of any value.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from scheduler.domain import CST
from scheduler.journal import is_journal

MASK = "***"
_SECRET_FIELDS = re.compile(r"(?i)^(sign|key|.*secret.*|.*token.*|authorization|password|app_key)$")
_SIGN_IN_URL = re.compile(r"(?i)\b(sign|key|secret)=[^&\s\"']+")
_secret_values: set[str] = set()
# Tracebacks as JSON, without local variables: a local may hold a revealed key.
_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


def register_secret(value: str) -> None:
    """Mask `value` in every later log line, whatever field it turns up in."""
    if len(value) >= 4:
        _secret_values.add(value)


@functools.lru_cache(maxsize=4096)
def _secret_field(name: str) -> bool:
    """Whether a field of this name is masked whole (field names are few: cached)."""
    return _SECRET_FIELDS.match(name) is not None


def _scrub(value: str) -> str:
    if "=" in value:  # every `_SIGN_IN_URL` match has one: skip the regex for other text
        value = _SIGN_IN_URL.sub(lambda m: f"{m.group(1)}={MASK}", value)
    for secret in _secret_values:
        if secret in value:
            value = value.replace(secret, MASK)
    return value


_PLAIN = (int, float, bool, type(None))


def _clean(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return _scrub(value)
    if kind in _PLAIN:  # the exact types: a subclass could render as text, so it is checked
        return value
    if isinstance(value, str):
        return _scrub(value)
    if isinstance(value, dict):
        return {k: MASK if _secret_field(str(k)) else _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last step before rendering, in every chain. (`_clean` of the
    whole dict, with its common cases inlined: this runs for every line.)"""
    cleaned: dict[str, Any] = {}
    for key, value in event_dict.items():
        kind = type(value)
        if _secret_field(key if type(key) is str else str(key)):
            cleaned[key] = MASK
        elif kind is str:
            cleaned[key] = _scrub(value)
        elif kind in _PLAIN:
            cleaned[key] = value
        else:
            cleaned[key] = _clean(value)
    return cleaned


def _add_times(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """`timestamp` (UTC, as structlog's ISO TimeStamper writes it) and `ts_cst` (CST, ms) of one
    reading of the clock."""
    now = datetime.now(UTC)
    event_dict["timestamp"] = now.isoformat().replace("+00:00", "Z")
    event_dict["ts_cst"] = now.astimezone(CST).isoformat(timespec="milliseconds")
    return event_dict


def _json_default(obj: Any) -> Any:
    """What json cannot write: `__structlog__()` if the object has one, else its repr (as
    structlog's JSONRenderer does)."""
    try:
        return obj.__structlog__()
    except AttributeError:
        return repr(obj)


#: json.dumps(default=...) builds a JSONEncoder for every line; one is enough (same output).
_ENCODER = json.JSONEncoder(default=_json_default)


def _dumps(obj: Any, **_: Any) -> str:
    return _ENCODER.encode(obj)


class _Line:
    """What recsched's own (structlog) loggers write to: the finished line goes to the stream
    of the handler `configure` installed, under that handler's lock, exactly as a stdlib record
    would, but without a `LogRecord` (built twice, with a walk up the stack for its caller)
    and the stdlib handler chain: that was two thirds of the cost of a line."""

    def __init__(self, name: str = "recsched") -> None:
        self.name = name
        #: The stdlib logger of this name, whose level gates the lines (loggers live forever).
        self.stdlib = logging.getLogger(name)

    def write(self, line: str) -> None:
        handler = _current.handler
        try:
            handler.acquire()
            try:
                stream = handler.stream
                stream.write(line + "\n")
                stream.flush()  # as StreamHandler.flush, under the lock already held
            finally:
                handler.release()
        except RecursionError:
            raise
        except Exception:  # as logging.Handler.handleError: logging never breaks a caller
            if logging.raiseExceptions and sys.stderr:
                sys.stderr.write("--- Logging error ---\n")
                traceback.print_exc(file=sys.stderr)

    debug = info = warning = error = critical = write


class _Current:
    """What the latest `configure` chose. Loggers are assembled once (structlog caches them)
    and read this at each line, so a reconfiguration applies to loggers made before it."""

    handler: logging.StreamHandler[TextIO] = logging.StreamHandler(sys.stdout)
    render: Processor = structlog.processors.JSONRenderer(_dumps)
    tracebacks: Processor = _TRACEBACKS


#: syslog priorities (sd-daemon(3) `<N>` prefixes) by structlog method / stdlib level name.
PRIORITIES = {
    "debug": 7,
    "info": 6,
    "warning": 4,
    "warn": 4,
    "error": 3,
    "exception": 3,
    "critical": 2,
}


def with_priority(render: Processor) -> Processor:
    """`render`, each line prefixed `<N>` with its level's syslog priority: journald stores
    that as the entry's PRIORITY (and strips it from MESSAGE), so `journalctl -p warning`
    works while `-o cat` still prints the bare JSON line."""

    def prefixed(logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        line = cast(str, render(logger, method, event_dict))
        return f"<{PRIORITIES.get(method, 6)}>{line}"

    return prefixed


_current = _Current()
#: The one processor list of recsched's loggers, changed in place by `configure` (and by
#: `structlog.testing.capture_logs`), so that it applies to loggers assembled before.
_PROCESSORS: list[Processor] = []
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _level_gate(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Drop a line below its logger's stdlib level (the root's, unless one is set), as the
    stdlib logger did when lines went through it."""
    stdlib = getattr(logger, "stdlib", None) or logging.getLogger(logger.name)
    if not stdlib.isEnabledFor(_LEVELS.get(method, logging.INFO)):
        raise structlog.DropEvent
    return event_dict


def _tracebacks(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    return cast(EventDict, _current.tracebacks(logger, method, event_dict))


def _render(logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
    return cast(str, _current.render(logger, method, event_dict))


def configure(
    stream: TextIO | None = None, *, json: bool | None = None, level: str = "info"
) -> None:
    """Route structlog and stdlib logging to `stream` (stdout) as JSON lines or console text."""
    stream = sys.stdout if stream is None else stream
    as_json = (not stream.isatty()) if json is None else json
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _add_times,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(_dumps)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    if is_journal(stream):
        renderer = with_priority(renderer)
    tracebacks = _TRACEBACKS if as_json else _identity
    # stdlib loggers (APScheduler, aiohttp, asyncio): their records get the same fields and
    # the same redaction, rendered by the root handler's formatter.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            tracebacks,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("apscheduler", "aiohttp.access", "aiohttp.client", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # recsched's loggers: the same steps, in structlog, written straight to that handler.
    _current.handler, _current.render, _current.tracebacks = handler, renderer, tracebacks
    _PROCESSORS[:] = [_level_gate, *shared, _tracebacks, redact, _render]
    structlog.configure(
        processors=_PROCESSORS,
        logger_factory=_Line,
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        cache_logger_on_first_use=True,
    )


def _identity(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return event_dict


def get_logger(name: str = "recsched") -> Any:
    return structlog.get_logger(name)
