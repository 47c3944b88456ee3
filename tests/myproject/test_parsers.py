"""JSON bodies within limits (myproject/parsers.py): what Python's decoder accepts but the
application cannot handle is a 400, never a 500."""

import json

import pytest

from myproject.limits import JSON_MAX_DEPTH, TEXT_MAX_LENGTH
from myproject.parsers import json_problem

pytestmark = pytest.mark.django_db

ITEMS = "/catalog/items/"
USERS = "/identity/users/"


def post(client, path: str, body: bytes, content_type: str = "application/json"):
    return client.generic("POST", path, body, content_type=content_type)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b"[" * (JSON_MAX_DEPTH + 1) + b"]" * (JSON_MAX_DEPTH + 1),
        b'{"name": "\\ud800", "email": "a@example.com"}',
        b'[{"name": "a\\udfff", "email": "a@example.com"}]',
        b'{"\\ud800": 1}',
        b'{"name": "\xff"}',
        b'{"name": "\xed\xa0\x80"}',
        b'{"comment": NaN}',
        b'{"comment": -Infinity}',
        json.dumps({"comment": "x" * (TEXT_MAX_LENGTH + 1)}).encode(),
    ],
)
def test_pathological_json_is_a_400(staff_client, body):
    response = post(staff_client, USERS, body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


def test_a_charset_other_than_utf8_is_not_obeyed(staff_client):
    body = json.dumps({"name": "zoë", "email": "zoe@example.com"}).encode()
    for charset in ("rot13", "utf-16", "latin-1"):
        response = post(staff_client, USERS, body, f"application/json; charset={charset}")
        assert response.status_code in (201, 400), charset
    assert staff_client.get(USERS, {"search": "zoë"}).json()["count"] == 1


def test_json_problem_allows_what_the_api_takes():
    batch = [{"name": "é" * 150, "comment": "\U0001f600" * TEXT_MAX_LENGTH, "n": [1, {"a": None}]}]
    assert json_problem(batch) is None
    assert json_problem("[" * 5) is None
    deepest = json.loads("[" * JSON_MAX_DEPTH + "1" + "]" * JSON_MAX_DEPTH)
    assert json_problem(deepest) is None
    assert json_problem([deepest]) == f"nested deeper than {JSON_MAX_DEPTH} levels."
    assert "surrogate" in json_problem({"k": ["\ud83d"]})
    assert (
        json_problem({"k": "\ud83d\ude00".encode("utf-16", "surrogatepass").decode("utf-16")})
        is None
    )
