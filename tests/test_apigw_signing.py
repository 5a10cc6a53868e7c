"""API Gateway application-auth signing: the reference's worked examples, exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from scheduler.providers import apigw

KEY = "APIDexampleappkey0000000000000000000000"
SECRET = "exampleAppSecret0000000000000000000000"
BODY = (
    b'{"Action":"Start","Data":{"RecordURL":"https://example.com/page","Width":1280,'
    b'"Height":720,"MaxDurationLimit":3600}}'
)
WHEN = datetime(2026, 1, 1, 4, 0, tzinfo=UTC)
STRING = (
    "x-date: Thu, 01 Jan 2026 04:00:00 GMT\nPOST\napplication/json\napplication/json\n"
    "YmU5NDQ1MjkwZmRmMjVlZjgwNzUyMTdhYzAyYzIwZWE=\n/record"
)


def test_content_md5_is_base64_of_the_hex_digest_like_every_official_demo() -> None:
    assert apigw.content_md5(BODY) == "YmU5NDQ1MjkwZmRmMjVlZjgwNzUyMTdhYzAyYzIwZWE="
    assert apigw.content_md5(BODY, apigw.Md5Form.BASE64_OF_DIGEST) == "vpRFKQ/fJe+AdSF6wCwg6g=="
    assert apigw.content_md5(b"") == ""


def test_x_date_is_rfc1123_gmt_whatever_the_zone(host_tz: str) -> None:
    shanghai = WHEN.astimezone(ZoneInfo("Asia/Shanghai"))
    assert apigw.x_date(shanghai) == "Thu, 01 Jan 2026 04:00:00 GMT"


@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        ("/release/record", [], "/record"),
        ("/test/record", [], "/record"),
        ("/prepub/record", [], "/record"),
        ("/record", [], "/record"),
        ("/releases/record", [], "/releases/record"),  # only a whole prefix is stripped
        ("/", [("p", "test")], "/?p=test"),
        ("/release/x", [("b", "2"), ("a", "1"), ("flag", ""), ("a", "0")], "/x?a=0&a=1&b=2&flag"),
    ],
)
def test_signed_path(path: str, params: list[tuple[str, str]], expected: str) -> None:
    assert apigw.path_and_parameters(path, params) == expected


def test_worked_example_string_and_signatures() -> None:
    text = apigw.string_to_sign(
        headers={"x-date": "Thu, 01 Jan 2026 04:00:00 GMT"},
        method="post",
        accept="application/json",
        content_type="application/json",
        content_md5=apigw.content_md5(BODY),
        path=apigw.path_and_parameters("/release/record"),
    )
    assert text == STRING
    assert apigw.signature(SECRET, text) == "yaWW10wMcjUUH/Oj1te78NPAFAY="
    assert apigw.signature(SECRET, text, "hmac-sha256") == (
        "ekPVSPu10t7952P4ybiac9mqniDFXqINkjClKbv1IpE="
    )


def test_doc_example_with_two_signed_headers_and_a_form_body() -> None:
    text = apigw.string_to_sign(
        headers={"x-date": "Thu, 11 Mar 2021 08:29:58 GMT", "source": "apigw test"},
        method="POST",
        accept="application/json",
        content_type="application/x-www-form-urlencoded",
        content_md5="",
        path=apigw.path_and_parameters("/", [("p", "test")]),
    )
    assert text == (
        "source: apigw test\nx-date: Thu, 11 Mar 2021 08:29:58 GMT\nPOST\napplication/json\n"
        "application/x-www-form-urlencoded\n\n/?p=test"
    )


def test_sign_builds_the_authorization_header_of_the_worked_example() -> None:
    headers = apigw.sign(
        app_key=KEY,
        app_secret=SECRET,
        method="POST",
        url="https://service-x-1250000000.gz.apigw.tencentcs.com/release/record",
        body=BODY,
        now=WHEN,
    )
    assert headers["Authorization"] == (
        f'hmac id="{KEY}", algorithm="hmac-sha1", headers="x-date", '
        'signature="yaWW10wMcjUUH/Oj1te78NPAFAY="'
    )
    assert headers["Content-MD5"] == "YmU5NDQ1MjkwZmRmMjVlZjgwNzUyMTdhYzAyYzIwZWE="
    assert headers["x-date"] == "Thu, 01 Jan 2026 04:00:00 GMT"
    assert SECRET not in " ".join(headers.values())


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="hmac-sha1, hmac-sha256"):
        apigw.sign(
            app_key=KEY,
            app_secret=SECRET,
            method="POST",
            url="https://h/record",
            body=b"",
            now=WHEN,
            algorithm="hmac-md5",
        )
