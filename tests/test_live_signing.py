"""TC3-HMAC-SHA256 (scheduler/providers/tc3.py): Tencent's published worked example, byte for
byte, and the official SDK's own signer (tencentcloud-sdk-python-common) on live requests.

The worked example is the CVM DescribeInstances request of Tencent's "Signature v3" page
(English edition, e.g. tencentcloud.com/document/api/267/37447 in the LIVE docs; read through
the search tool's code index): SecretId AKID**********************0123456789EXAMPLE, SecretKey
Gu5t9xGARNpq86cd98joQYCN3EXAMPLE (step 3 of the page), timestamp 1551113065, region
ap-guangzhou, version 2017-03-12. The page publishes the payload hash, the CanonicalRequest,
its hash, the StringToSign and the Signature; every one is asserted here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from scheduler.providers import tc3

EXAMPLE_ID = "AKID**********************0123456789EXAMPLE"
EXAMPLE_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
EXAMPLE_BODY = (
    b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)
EXAMPLE_HEADERS = {
    "content-type": "application/json; charset=utf-8",
    "host": "cvm.tencentcloudapi.com",
}
EXAMPLE_CANONICAL = (
    "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
    "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
)
EXAMPLE_STRING_TO_SIGN = (
    "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
    "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
)
EXAMPLE_SIGNATURE = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"


def test_the_published_canonical_request_and_string_to_sign() -> None:
    canonical, signed = tc3.canonical_request("POST", EXAMPLE_HEADERS, EXAMPLE_BODY)
    assert canonical == EXAMPLE_CANONICAL
    assert signed == "content-type;host"
    assert tc3.string_to_sign(1551113065, "cvm", canonical) == EXAMPLE_STRING_TO_SIGN


def test_the_published_signature_and_authorization() -> None:
    assert tc3.signature(EXAMPLE_KEY, 1551113065, "cvm", EXAMPLE_STRING_TO_SIGN) == (
        EXAMPLE_SIGNATURE
    )
    assert tc3.authorization(
        secret_id=EXAMPLE_ID,
        secret_key=EXAMPLE_KEY,
        service="cvm",
        host="cvm.tencentcloudapi.com",
        body=EXAMPLE_BODY,
        timestamp=1551113065,
    ) == (
        f"TC3-HMAC-SHA256 Credential={EXAMPLE_ID}/2019-02-25/cvm/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={EXAMPLE_SIGNATURE}"
    )


def test_the_date_is_utc_not_the_host_zone() -> None:
    # 1551113065 is 2019-02-26 00:44:25 in UTC+8: the page's own warning
    assert tc3.utc_date(1551113065) == "2019-02-25"


def _sdk_authorization(
    secret_id: str, secret_key: str, token: str | None, body: dict[str, Any], ts: int
) -> tuple[str, dict[str, str], str]:
    """What the official SDK signs for a live CreateRecordTask at `ts`: (Authorization, its
    headers, the body it sends)."""
    pytest.importorskip("tencentcloud.common")
    from tencentcloud.common import abstract_client, credential
    from tencentcloud.common.http.request import RequestInternal

    client = abstract_client.AbstractClient(
        credential.Credential(secret_id, secret_key, token), "ap-guangzhou"
    )
    client._endpoint = "live.tencentcloudapi.com"
    client._service = "live"
    client._apiVersion = "2018-08-01"
    req = RequestInternal("live.tencentcloudapi.com", "POST", "/")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(abstract_client.time, "time", lambda: float(ts))
        client._build_req_with_tc3_signature("CreateRecordTask", body, req)
    return req.header["Authorization"], dict(req.header), str(req.data)


@pytest.mark.parametrize("ts", [1551113065, 1767225599, 1767225600, 2000000000])
@pytest.mark.parametrize("token", [None, "session-token-x"])
def test_the_official_sdk_signs_live_requests_the_same(ts: int, token: str | None) -> None:
    body = {
        "DomainName": "push.example.com",
        "AppName": "live",
        "StreamName": "news 中文",
        "StartTime": ts + 60,
        "EndTime": ts + 3660,
    }
    expected, sdk_headers, sent = _sdk_authorization("AKIDsdk", "sdk-secret", token, body, ts)
    ours = tc3.headers(
        secret_id="AKIDsdk",
        secret_key="sdk-secret",
        token=token,
        service="live",
        host="live.tencentcloudapi.com",
        action="CreateRecordTask",
        version="2018-08-01",
        region="ap-guangzhou",
        body=sent.encode("utf-8"),
        timestamp=ts,
        content_type=sdk_headers["Content-Type"],
    )
    assert ours["Authorization"] == expected
    for name in ("X-TC-Action", "X-TC-Version", "X-TC-Timestamp", "X-TC-Region"):
        assert ours[name] == sdk_headers[name]
    assert ours.get("X-TC-Token") == sdk_headers.get("X-TC-Token")
    assert json.loads(sent) == body
