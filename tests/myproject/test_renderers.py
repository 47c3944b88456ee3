"""The orjson renderer (myproject/renderers.py) writes what DRF's `JSONRenderer` writes, byte for
byte, on what the API answers with: pages, error details, text of every kind."""

import datetime
import decimal
import uuid
import zoneinfo

import pytest
from django.utils.translation import gettext_lazy
from rest_framework import renderers
from rest_framework.exceptions import ErrorDetail
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from myproject.renderers import JSONRenderer
from tests.factories import ItemFactory

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
UTC = datetime.UTC
CASES = [
    None,
    {},
    [],
    {"count": 0, "next": None, "previous": None, "results": []},
    {"detail": ErrorDetail("Not found.", code="not_found")},
    {"search": [ErrorDetail("Null characters are not allowed.", code="null_characters")]},
    [{}, {"sku": [ErrorDetail("This field must be unique.", code="unique")]}],
    ReturnDict({"a": 1, "b": [True, False, None]}, serializer=None),
    ReturnList([{"x": "y"}], serializer=None),
    {"text": 'é ü 中文 🙂 \u2028 \u2029 \x00 \x1f \x7f \n \t " \\ / <script>'},
    {"big": 2**63 - 1, "small": -(2**63), "huge": 2**70},
    {
        "utc": datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "whole": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "paris": datetime.datetime(2026, 7, 2, 3, 4, 5, tzinfo=PARIS),
        "naive": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "date": datetime.date(2026, 1, 2),
        "time": datetime.time(3, 4, 5, 6),
        "delta": datetime.timedelta(seconds=90),
    },
    {"price": decimal.Decimal("12.50"), "uuid": uuid.UUID(int=7), "lazy": gettext_lazy("Yes")},
    {"nested": {"deep": [[[{"k": "v"}]]]}, "tuple": (1, 2)},
]


@pytest.mark.parametrize("data", CASES)
def test_the_same_bytes_as_drfs_renderer(data):
    assert JSONRenderer().render(data) == renderers.JSONRenderer().render(data)


def test_indented_output_is_drfs(db):
    data = {"a": [1, {"b": "c"}]}
    ours = JSONRenderer().render(data, "application/json; indent=4")
    assert ours == renderers.JSONRenderer().render(data, "application/json; indent=4")
    assert b"\n    " in ours


def test_a_list_response_is_drfs_bytes(anon, db, monkeypatch):
    ItemFactory.create_batch(3, name="naïve \u2028 item", description="<b>&</b>")
    ours = anon.get("/catalog/items/")
    monkeypatch.setattr(JSONRenderer, "render", renderers.JSONRenderer.render)
    theirs = anon.get("/catalog/items/")
    assert ours.content == theirs.content
    assert ours["Content-Type"] == "application/json"
