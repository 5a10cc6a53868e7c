"""Tencent API Gateway "application authentication" (ApiAppKey / ApiAppSecret): pure signing.

Reference: API Gateway application authentication
(cloud.tencent.com/document/product/628/55088). The string to sign is six fields joined by
newlines: the signed headers ("name: value", sorted by name, each followed by a newline, always
including x-date), the method, Accept, Content-Type, Content-MD5 and the path without the
environment prefix plus sorted query/form parameters. signature = base64(HMAC(secret, string)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from enum import Enum
from urllib.parse import urlsplit

#: Environment prefixes API Gateway strips from the path before it checks the signature. [C]
ENVIRONMENTS = ("/release", "/test", "/prepub")
ALGORITHMS = {"hmac-sha1": hashlib.sha1, "hmac-sha256": hashlib.sha256}


class Md5Form(Enum):
    """How Content-MD5 is encoded. Every official demo (Python, Go, Java, Node web-record) uses
    base64 of the lowercase *hex* digest; the prose says base64 of the raw digest [C vs S]."""

    BASE64_OF_HEX = "base64-of-hex"
    BASE64_OF_DIGEST = "base64-of-digest"


#: The one constant to change if the gateway turns out to want the other form. [I]
CONTENT_MD5_FORM = Md5Form.BASE64_OF_HEX


def content_md5(body: bytes, form: Md5Form = CONTENT_MD5_FORM) -> str:
    """Content-MD5 of the exact bytes sent; "" for an empty body."""
    if not body:
        return ""
    digest = hashlib.md5(body, usedforsecurity=False)
    raw = digest.hexdigest().encode() if form is Md5Form.BASE64_OF_HEX else digest.digest()
    return base64.b64encode(raw).decode()


def x_date(moment: datetime) -> str:
    """RFC 1123 GMT date with English names, whatever the locale (x-date allows ±900 s)."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def path_and_parameters(url_path: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """The signed path: environment prefix removed, parameters sorted by key then value."""
    path = url_path or "/"
    for env in ENVIRONMENTS:
        if path == env or path.startswith(env + "/"):
            path = path[len(env) :] or "/"
            break
    if not params:
        return path
    pairs = sorted(params)
    return path + "?" + "&".join(f"{k}={v}" if v != "" else k for k, v in pairs)


def string_to_sign(
    *,
    headers: Mapping[str, str],
    method: str,
    accept: str,
    content_type: str,
    content_md5: str,
    path: str,
) -> str:
    signed = "".join(
        f"{name.lower()}: {headers[name]}\n" for name in sorted(headers, key=str.lower)
    )
    return "\n".join((signed + method.upper(), accept, content_type, content_md5, path))


def signature(secret: str, text: str, algorithm: str = "hmac-sha1") -> str:
    mac = hmac.new(secret.encode(), text.encode(), ALGORITHMS[algorithm])
    return base64.b64encode(mac.digest()).decode()


def _pair(part: str) -> tuple[str, str]:
    key, _, value = part.partition("=")
    return key, value


def sign(
    *,
    app_key: str,
    app_secret: str,
    method: str,
    url: str,
    body: bytes,
    now: datetime,
    algorithm: str = "hmac-sha1",
    accept: str = "application/json",
    content_type: str = "application/json",
) -> dict[str, str]:
    """The headers that authenticate one request (x-date, Accept, Content-Type, Content-MD5,
    Authorization). Content-MD5 is sent *and* signed, as the web-record client does."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}")
    date = x_date(now)
    md5 = content_md5(body)
    parts = urlsplit(url)
    query = [_pair(p) for p in parts.query.split("&") if p]
    text = string_to_sign(
        headers={"x-date": date},
        method=method,
        accept=accept,
        content_type=content_type,
        content_md5=md5,
        path=path_and_parameters(parts.path, query),
    )
    authorization = (
        f'hmac id="{app_key}", algorithm="{algorithm}", headers="x-date", '
        f'signature="{signature(app_secret, text, algorithm)}"'
    )
    headers = {
        "x-date": date,
        "Accept": accept,
        "Content-Type": content_type,
        "Authorization": authorization,
    }
    if md5:
        headers["Content-MD5"] = md5
    return headers
