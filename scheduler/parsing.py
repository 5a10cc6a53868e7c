"""Pure parsers of config values that the daemon's shell uses too: listen addresses and rates.
Each raises ValueError with a message fit for a `file:line:col: key: message` problem."""

from __future__ import annotations

import ipaddress
import re

_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute)\s*")


def parse_rate(text: str) -> float:
    """'20/s' or '600/m' -> requests per second; ValueError with a clear message."""
    match = _RATE.fullmatch(text)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a rate (e.g. 20/s or 600/m)")
    per = 1.0 if match.group(2).startswith("s") else 60.0
    return float(match.group(1)) / per


_PORT = re.compile(r"[0-9]{1,5}")
_EXAMPLES = "expected HOST:PORT, e.g. 127.0.0.1:9102, [::1]:9102 or localhost:0"


def parse_listen(text: str) -> tuple[str, int]:
    """Split "HOST:PORT" ("127.0.0.1:9102", "[::1]:9102", "localhost:0"; port 0 = any free
    port) into (host, port), IPv6 brackets removed. Raises ValueError saying what is wrong."""

    def bad(problem: str) -> ValueError:
        return ValueError(f"listen address {text!r}: {problem}; {_EXAMPLES}")

    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise bad("missing ']' after the IPv6 address")
        host, rest = text[1:close], text[close + 1 :]
        if not rest.startswith(":"):
            raise bad("missing ':PORT' after ']'")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise bad("brackets must hold an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise bad("missing ':PORT'")
        if not host:
            raise bad("missing host (use 0.0.0.0 or [::] for every interface)")
        if any(c.isspace() or c in "[]/@" for c in host):
            raise bad("invalid host (no scheme, path or spaces)")
        if ":" in host:
            raise bad("an IPv6 address must be in brackets")
    if not _PORT.fullmatch(port_text):
        raise bad("the port must be a number from 0 to 65535")
    port = int(port_text)
    if port > 65535:
        raise bad("the port must be a number from 0 to 65535")
    return host, port
