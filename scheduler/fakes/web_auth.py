"""API Gateway application authentication as the gateway checks it, for the fake web-page
recording function: its own implementation of the rules of Tencent's page (cloud.tencent.com/
document/product/628/55088) and the official demos, independent of the client's signing code
(providers/apigw.py), so the two cannot agree on a shared mistake; tests/test_fake_web.py holds
it to the worked example's known answers. Nothing here logs or keeps a secret or a signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from email.utils import parsedate_to_datetime

from aiohttp.web import Request

#: The stage prefixes the gateway strips before signing and routing.
ENVIRONMENTS = ("/release", "/test", "/prepub")
HASHES = {"hmac-sha1": hashlib.sha1, "hmac-sha256": hashlib.sha256}

X_DATE_WINDOW = 900  # seconds of x-date skew the gateway accepts [C 22]
MSG_MISMATCH = "HMAC signature does not match"
MSG_MISSING = "HMAC id or signature missing"
MSG_FORMAT = "HMAC authorization format error"
MSG_BAD_ID = "HMAC apikey is invalid for API"
MSG_NO_DATE = (
    "HMAC signature cannot be verified, a valid x-date header is required for HMAC Authentication"
)
MSG_STALE = (
    "HMAC signature cannot be verified, the x-date header is out of date for HMAC Authentication"
)
_PARAM = re.compile(r'\s*([a-z]+)="([^"]*)"\s*(?:,|$)')
_X_DATE = re.compile(
    r"[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)
_FORM = "application/x-www-form-urlencoded"


class Refused(Exception):
    """Answered 401 {"message": message}; `detail` (never a secret) says why, for the record."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message, self.detail = message, detail or message


def parse_authorization(header: str) -> dict[str, str]:
    """`hmac id="…", algorithm="…", headers="…", signature="…"` → its parameters."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "hmac":
        raise Refused(MSG_FORMAT)
    params: dict[str, str] = {}
    pos, rest = 0, rest.strip()
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.group(1) in params:
            raise Refused(MSG_FORMAT)
        params[match.group(1)] = match.group(2)
        pos = match.end()
    return params


def gateway_md5(body: bytes) -> str:
    """Content-MD5 as every official demo computes it: base64 of the lowercase hex MD5 string
    (not of the raw digest); "" for an empty body."""
    if not body:
        return ""
    return base64.b64encode(hashlib.md5(body).hexdigest().encode("ascii")).decode("ascii")


def gateway_path(raw_path: str, params: list[tuple[str, str]]) -> str:
    """The path without the stage prefix, plus the parameters sorted by key then value, a
    value-less key alone."""
    for stage in ENVIRONMENTS:
        if raw_path == stage or raw_path.startswith(stage + "/"):
            raw_path = raw_path[len(stage) :] or "/"
            break
    if not params:
        return raw_path
    joined = "&".join(k if v == "" else f"{k}={v}" for k, v in sorted(params))
    return f"{raw_path}?{joined}"


def gateway_string(
    signed: list[tuple[str, str]], method: str, accept: str, content_type: str, md5: str, path: str
) -> str:
    """Six fields joined by newlines: the signed headers ("name: value\n" each, by name), the
    method in upper case, Accept, Content-Type, Content-MD5 and the path with parameters."""
    lines = "".join(f"{name}: {value}\n" for name, value in sorted(signed))
    return f"{lines}{method.upper()}\n{accept}\n{content_type}\n{md5}\n{path}"


def gateway_signature(secret: str, text: str, algorithm: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), HASHES[algorithm]).digest()
    return base64.b64encode(digest).decode("ascii")


def _pairs(text: str) -> list[tuple[str, str]]:
    return [(k, v) for k, _, v in (p.partition("=") for p in text.split("&") if p)]


def verify(app_key: str, app_secret: str, request: Request, body: bytes, now: float) -> None:
    """Raise Refused unless the request (with these exact body bytes) carries a valid signature
    for app_key/app_secret at time `now` (UNIX seconds)."""
    headers = request.headers  # case-insensitive
    header = headers.get("Authorization", "")
    if not header:
        raise Refused(MSG_MISSING)
    auth = parse_authorization(header)
    if not auth.get("id") or not auth.get("signature"):
        raise Refused(MSG_MISSING)
    algorithm = auth.get("algorithm", "")
    if algorithm not in HASHES:
        raise Refused(f"HMAC algorithm {algorithm} not supported")
    names = auth.get("headers", "").lower().split()
    date = headers.get("x-date", "")
    if "x-date" not in names or not _X_DATE.fullmatch(date):
        raise Refused(MSG_NO_DATE)
    try:
        sent_at = parsedate_to_datetime(date).timestamp()
    except ValueError:
        raise Refused(MSG_NO_DATE) from None
    if abs(sent_at - now) > X_DATE_WINDOW:
        raise Refused(MSG_STALE)
    if auth["id"] != app_key:
        raise Refused(MSG_BAD_ID)
    if any(name not in headers for name in names):
        raise Refused(MSG_MISMATCH, "a signed header is missing from the request")
    content_type = headers.get("Content-Type", "")
    params = _pairs(request.rel_url.raw_query_string)
    md5 = gateway_md5(body)  # what the gateway computes from the exact bytes
    if content_type.startswith(_FORM):  # a form body is signed as parameters, with no MD5
        md5 = ""
        params += _pairs(body.decode("latin-1"))
    sent_md5 = headers.get("Content-MD5")
    if sent_md5 is not None and sent_md5 != md5:
        raise Refused(MSG_MISMATCH, "Content-MD5 does not match the body")
    text = gateway_string(
        [(name, headers[name]) for name in names],
        request.method,
        headers.get("Accept", ""),
        content_type,
        md5,
        gateway_path(request.rel_url.raw_path, params),
    )
    expected = gateway_signature(app_secret, text, algorithm)
    if not hmac.compare_digest(auth["signature"].encode(), expected.encode()):
        raise Refused(MSG_MISMATCH)
