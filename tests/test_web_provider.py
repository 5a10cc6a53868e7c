"""The web function's answers, read without I/O: error classes, lenient results, tokens."""

from __future__ import annotations

import json

import pytest

from scheduler.errors import OutcomeUnknown, PermanentError, TransientError
from scheduler.providers import web


def _answer(**fields: object) -> str:
    return json.dumps(fields)


@pytest.mark.parametrize(
    ("action", "status", "text", "error"),
    [
        ("Start", 401, '{"message": "HMAC signature does not match"}', PermanentError),
        ("Start", 200, _answer(ErrorCode="InvalidParam", ErrorMessage="x"), PermanentError),
        ("Resume", 200, _answer(ErrorCode="InvalidStatus", ErrorMessage="x"), PermanentError),
        ("Start", 429, '{"message": "API rate limit exceeded"}', TransientError),
        ("Start", 500, "oops", TransientError),
        ("Start", 200, _answer(ErrorCode="InternalError", ErrorMessage="x"), TransientError),
        ("Start", 504, '{"message": "Gateway Time-out"}', OutcomeUnknown),
        ("Start", 502, "Bad Gateway", OutcomeUnknown),
        ("Start", 200, "<html>", OutcomeUnknown),
        ("Start", 200, _answer(RequestID="r"), OutcomeUnknown),  # acted? List will tell
        ("Start", 404, "There is no api match uri", PermanentError),
        # Describe answers InternalError for any Redis error but a missing task (issue 12.2)
        (
            "Describe",
            200,
            _answer(ErrorCode="InternalError", ErrorMessage="WRONGTYPE"),
            TransientError,
        ),
        ("Describe", 200, _answer(ErrorCode="InvalidParam", ErrorMessage="x"), PermanentError),
        # The function threw (an Action its build lacks) and SCF's own error body came back
        # as HTTP 200: nothing is known of what it did (issue 12.4)
        ("List", 200, _answer(errorCode=-1, errorMessage="TypeError: Cannot set"), OutcomeUnknown),
        ("Stop", 200, _answer(errorCode=-1, errorMessage="TypeError"), OutcomeUnknown),
    ],
)
def test_errors_are_classified(action: str, status: int, text: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        web.parse_response(action, status, text)
    assert type(info.value) is error
    if status == 401:
        assert "HMAC signature does not match" in str(info.value)  # the gateway's own words


def test_stop_on_a_task_that_is_no_longer_running_is_a_success() -> None:
    answer = web.parse_response("Stop", 200, _answer(ErrorCode="InvalidStatus"))
    assert answer["ErrorCode"] == "InvalidStatus"
    assert web.parse_response("Start", 200, _answer(TaskID="t-1"))["TaskID"] == "t-1"


def test_results_are_read_leniently() -> None:
    full = web.parse_task(
        {
            "TaskID": "t",
            "Status": "finished",
            "Result": {
                "Videos": [
                    {"Filename": "a.mp4", "FileSize": 169780, "FileDuration": "9", "FileId": 55},
                    {"Filename": "b.mp4"},  # falsy fields are dropped by the service
                    "junk",
                ]
            },
        }
    )
    assert full.done and full.error_code == ""
    assert [(v.filename, v.size, v.duration_s, v.file_id) for v in full.videos] == [
        ("a.mp4", 169780, 9.0, "55"),
        ("b.mp4", None, None, ""),
    ]
    failed = web.parse_task(
        {"TaskID": "t", "Status": "callback", "Result": {"ErrorCode": "InternalErr"}}
    )
    assert failed.done and failed.error_code == "InternalErr" and failed.videos == ()
    assert not web.parse_task({"TaskID": "t", "Status": "transcode"}).done
    assert not web.parse_task({}).done
    odd = web.parse_task({"TaskID": 7, "Status": "finished", "Result": {"Videos": 3}})
    assert odd.done and odd.task_id == "7" and odd.videos == ()
    assert not web.parse_task({"Result": "broken"}).error_code


def test_a_callback_token_names_its_start_and_cannot_be_forged() -> None:
    key = "physics-class/2026-11-30T09:00:00+08:00/1/Start"
    token = web.callback_token("app-secret", "web", key)
    parts = web.token_parts(token)
    assert parts is not None and parts[:2] == ("web", key)
    assert web.token_valid("app-secret", *parts)
    assert not web.token_valid("other-secret", *parts)
    other = web.callback_token("app-secret", "web", key.replace("/1/", "/2/"))
    assert other != token
    assert web.token_parts("not-a-token") is None
    assert "app-secret" not in token


def test_list_finds_the_page_s_task_and_skips_ones_already_owned() -> None:
    answer = {
        "Total": 3,
        "Tasks": [
            {"TaskID": "new", "Param": {"RecordURL": "https://a/"}},
            {"TaskID": "other-page", "Param": {"RecordURL": "https://b/"}},
            {"TaskID": "older", "Param": {"RecordURL": "https://a/"}},
            {"TaskID": "no-param"},
        ],
    }
    found = web.find_started(answer, "https://a/", set())
    assert found is not None and [t.task_id for t in found] == ["new", "older"]
    found = web.find_started(answer, "https://a/", {"new"})
    assert found is not None and [t.task_id for t in found] == ["older"]
    assert web.find_started({"Total": 0, "Tasks": []}, "https://a/", set()) == []


@pytest.mark.parametrize(
    "answer",
    [
        {},  # a 200 with nothing: not "no task"
        {"RequestID": "r"},
        {"Tasks": []},  # no Total
        {"Total": 0},  # no Tasks
        {"Total": 1, "Tasks": "garbage"},
        {"Total": True, "Tasks": []},
    ],
)
def test_only_a_well_formed_list_answer_can_say_there_is_no_task(answer: dict[str, object]) -> None:
    """Issue 12.4: an answer without a Tasks list and a Total must never justify a second
    Start (it would be a second paid recorder)."""
    assert web.find_started(answer, "https://a/", set()) is None


def test_list_keeps_each_task_s_status() -> None:
    answer = {
        "Total": 1,
        "Tasks": [{"TaskID": "t", "Status": "normal", "Param": {"RecordURL": "u"}}],
    }
    assert web.find_started(answer, "u", set()) == [web.Listed("t", "normal")]


def test_a_failed_callback_is_not_a_failed_recording() -> None:
    """Issue 12.1: the function keeps Result.Videos when only its callback POST failed."""
    result = web.parse_task(
        {
            "TaskID": "t",
            "Status": "finished",
            "Result": {
                "Videos": [{"Filename": "a.mp4", "FileURL": "http://cos/a.mp4"}],
                "ErrorCode": "CallbackFailed",
                "ErrorMessage": "Callback failed even after all tries.",
            },
        }
    )
    assert not result.failed and result.callback_failed
    assert [v.url for v in result.videos] == ["http://cos/a.mp4"]
    broken = web.parse_task({"TaskID": "t", "Status": "callback", "Result": {"ErrorCode": "X"}})
    assert broken.failed and not broken.callback_failed


def test_the_body_is_the_planned_data_with_its_placeholders_filled() -> None:
    data = json.dumps({"RecordURL": "https://a/", "CallbackURL": web.CALLBACK_URL})
    sent = json.loads(web.body("Start", data, callback_url="https://rec/callbacks/web/x"))
    assert sent == {
        "Action": "Start",
        "Data": {"RecordURL": "https://a/", "CallbackURL": "https://rec/callbacks/web/x"},
    }
    stop = json.loads(web.body("Stop", json.dumps({"TaskID": web.TASK_ID}), task_id="t-9"))
    assert stop == {"Action": "Stop", "Data": {"TaskID": "t-9"}}
