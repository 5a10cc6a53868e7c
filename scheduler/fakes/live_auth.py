"""The LIVE API 3.0 fake's own TC3-HMAC-SHA256 check (no daemon code): the Authorization
header, the signed headers, the timestamp window and the temporary-credential token. Errors
are Tencent's common codes, answered in an HTTP 200 like the real API's."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime

#: X-TC-Timestamp more than this far from the server's clock: AuthFailure.SignatureExpire. [C]
MAX_SKEW_S = 300
_AUTH = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def _mac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_signature(
    secret_key: str, method: str, headers: Mapping[str, str], signed: str, body: bytes, ts: int
) -> str:
    names = signed.split(";")
    canonical_headers = "".join(f"{n}:{headers.get(n, '').strip().lower()}\n" for n in names)
    canonical = "\n".join(
        (method, "/", "", canonical_headers, signed, hashlib.sha256(body).hexdigest())
    )
    day = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
    scope = f"{day}/live/tc3_request"
    text = "\n".join(
        ("TC3-HMAC-SHA256", str(ts), scope, hashlib.sha256(canonical.encode()).hexdigest())
    )
    key = _mac(_mac(_mac(f"TC3{secret_key}".encode(), day), "live"), "tc3_request")
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def verify(
    keys: Mapping[str, str],
    token: str | None,
    method: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
) -> None:
    """Raise Refused unless the request is signed with one of `keys` (SecretId -> SecretKey).
    `headers` has lower-case names."""
    now = time.time() if now is None else now
    auth = _AUTH.match(headers.get("authorization", ""))
    if auth is None:
        raise Refused("AuthFailure.InvalidAuthorization", "Authorization header is malformed")
    stamp = headers.get("x-tc-timestamp", "")
    if not stamp.isdigit():
        raise Refused("MissingParameter", "X-TC-Timestamp is missing or not UNIX seconds")
    ts = int(stamp)
    if abs(now - ts) > MAX_SKEW_S:
        raise Refused("AuthFailure.SignatureExpire", "the signature expired (clock skew?)")
    if auth["id"] not in keys:
        raise Refused("AuthFailure.SecretIdNotFound", "the SecretId does not exist")
    if auth["date"] != datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d"):
        raise Refused("AuthFailure.SignatureFailure", "the credential date is not the UTC date")
    if auth["service"] != "live":
        raise Refused("AuthFailure.SignatureFailure", "the credential scope is not `live`")
    signed = auth["signed"]
    if not {"content-type", "host"} <= set(signed.split(";")):
        raise Refused("AuthFailure.SignatureFailure", "content-type and host must be signed")
    wanted = expected_signature(keys[auth["id"]], method, headers, signed, body, ts)
    if not hmac.compare_digest(wanted, auth["sig"]):
        raise Refused("AuthFailure.SignatureFailure", "the signature does not match")
    if token is not None and headers.get("x-tc-token") != token:
        raise Refused("AuthFailure.TokenFailure", "the token is missing or wrong")
