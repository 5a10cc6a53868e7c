"""Structured logging: one JSON object per line (or a readable console on a TTY).

Redaction lives here and nowhere else: fields named like secrets are masked, `sign=` in any
URL is masked, and every secret value registered with `register_secret` is masked wherever it
appears. stdlib loggers (APScheduler, aiohttp) go through the same chain, so they are JSON too.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from scheduler.config import CST

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


def _scrub(value: str) -> str:
    value = _SIGN_IN_URL.sub(lambda m: f"{m.group(1)}={MASK}", value)
    for secret in _secret_values:
        if secret in value:
            value = value.replace(secret, MASK)
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub(value)
    if isinstance(value, dict):
        return {k: MASK if _SECRET_FIELDS.match(str(k)) else _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last step before rendering, in every chain."""
    cleaned: dict[str, Any] = _clean(dict(event_dict))
    return cleaned


def _add_cst(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict["ts_cst"] = datetime.now(UTC).astimezone(CST).isoformat(timespec="milliseconds")
    return event_dict


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
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_cst,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _TRACEBACKS if as_json else _identity,
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
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def _identity(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return event_dict


def get_logger(name: str = "recsched") -> Any:
    return structlog.get_logger(name)
