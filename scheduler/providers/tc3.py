"""Tencent Cloud API 3.0 signing, TC3-HMAC-SHA256: a pure function of the request and the key.

Steps (Tencent's "Signature v3" page, e.g. tencentcloud.com/document/api/267/37447, and the
official SDK's `tencentcloud/common/abstract_client.py` + `sign.py`) [C]:
1. CanonicalRequest = METHOD \n URI ("/") \n query ("" for POST) \n CanonicalHeaders \n
   SignedHeaders \n hex(sha256(body)); CanonicalHeaders are "name:value\n" lower-cased and
   trimmed, sorted by name (content-type and host at least);
2. StringToSign = "TC3-HMAC-SHA256" \n timestamp \n Date/service/tc3_request \n
   hex(sha256(CanonicalRequest)), Date being the **UTC** date of the timestamp;
3. key = HMAC("TC3" + SecretKey, Date) -> HMAC(., service) -> HMAC(., "tc3_request");
   Signature = hex(HMAC(key, StringToSign));
4. Authorization = "TC3-HMAC-SHA256 Credential=SecretId/scope, SignedHeaders=..., Signature=...".
Nothing here logs or keeps a key; callers pass the revealed values and drop them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def utc_date(timestamp: int) -> str:
    """The credential scope's date: UTC, never the host's zone (1551113065 -> 2019-02-25)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def canonical_request(
    method: str, headers: Mapping[str, str], body: bytes, query: str = ""
) -> tuple[str, str]:
    """(CanonicalRequest, SignedHeaders) for `headers` (the ones to sign: name -> value)."""
    pairs = sorted((k.strip().lower(), v.strip().lower()) for k, v in headers.items())
    canonical = "".join(f"{k}:{v}\n" for k, v in pairs)
    signed = ";".join(k for k, _ in pairs)
    text = "\n".join((method.upper(), "/", query, canonical, signed, _sha256(body)))
    return text, signed


def string_to_sign(timestamp: int, service: str, canonical: str) -> str:
    scope = f"{utc_date(timestamp)}/{service}/tc3_request"
    return "\n".join((ALGORITHM, str(timestamp), scope, _sha256(canonical.encode("utf-8"))))


def signature(secret_key: str, timestamp: int, service: str, text: str) -> str:
    key = _hmac(("TC3" + secret_key).encode("utf-8"), utc_date(timestamp))
    key = _hmac(_hmac(key, service), "tc3_request")
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    host: str,
    body: bytes,
    timestamp: int,
    method: str = "POST",
    content_type: str = CONTENT_TYPE,
) -> str:
    """The Authorization header of one request signed over content-type and host."""
    canonical, signed = canonical_request(
        method, {"content-type": content_type, "host": host}, body
    )
    text = string_to_sign(timestamp, service, canonical)
    scope = f"{utc_date(timestamp)}/{service}/tc3_request"
    return (
        f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={signed}, "
        f"Signature={signature(secret_key, timestamp, service, text)}"
    )


def headers(
    *,
    secret_id: str,
    secret_key: str,
    token: str | None,
    service: str,
    host: str,
    action: str,
    version: str,
    region: str,
    body: bytes,
    timestamp: int,
    content_type: str = CONTENT_TYPE,
) -> dict[str, str]:
    """Every header of a signed API 3.0 POST (Host is set by the HTTP client from the URL)."""
    result = {
        "Authorization": authorization(
            secret_id=secret_id,
            secret_key=secret_key,
            service=service,
            host=host,
            body=body,
            timestamp=timestamp,
            content_type=content_type,
        ),
        "Content-Type": content_type,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(timestamp),
    }
    if region:
        result["X-TC-Region"] = region
    if token:
        result["X-TC-Token"] = token
    return result
