"""
Lists read as values (myproject/rows.py) answer what DRF's serializers answer: for every filter
of docs/rest-api.md (and orderings, pages, categories), as an anonymous reader, a plain user and
staff, the body and status are held equal to those of the generic path (the serializer's
instances; for items, ModelSerializer's own field walk), row for row.
"""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from catalog.models import Item
from catalog.serializers import ItemSerializer
from identity.models import User
from myproject.rows import RowReader
from tests.factories import CategoryFactory, ItemFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(user, staff):
    shoes, hats = CategoryFactory(name="Shoes", slug="shoes"), CategoryFactory(name="Hats")
    prices = ["0.00", "5.00", "9.99", "10.10", "12345678.90", "10.50"]
    for n, price in enumerate(prices):
        ItemFactory(
            name=f"red été {n} 中文" if n % 2 else f"Blue {n}", description="<b>\u2028</b>",
            price=Decimal(price), stock=n % 3, enable=n != 4, category=shoes if n < 4 else hats,
        )  # fmt: skip
    # Datetimes with and without microseconds, in another year.
    Item.objects.filter(price=Decimal("5.00")).update(
        created_at=datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
    )
    Item.objects.filter(price=Decimal("9.99")).update(
        updated_at=datetime.datetime(2030, 1, 2, 3, 4, 5, 600, tzinfo=datetime.UTC)
    )
    UserFactory(name="zed", enable=False, phone="+14155550123", comment="private")
    StaffFactory(name="boss", email="a@example.com")
    User.objects.filter(name="zed").update(
        date_joined=datetime.datetime(2001, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
    )
    return {"shoes": str(shoes.uuid)}


def item_queries(world: dict) -> list[str]:
    return [
        "", f"category={world['shoes']}", "enable=true", "enable=false", "enable=1", "enable=0",
        "price_min=5", "price_max=10.10", "price_min=5&price_max=10.5", "in_stock=true",
        "in_stock=false", "search=red", "search=RED+été", "search=nothing", "ordering=-price",
        "ordering=name,-stock", "ordering=created_at", "ordering=-updated_at", "page_size=2",
        "page=2&page_size=2", "page=3&page_size=2", "page=last&page_size=4", "page=9",
        "enable=maybe", "ordering=password", "page_size=1001", f"category={world['shoes']}&"
        "enable=true&in_stock=true&search=e&ordering=-sku",
    ]  # fmt: skip


USER_QUERIES = [
    "", "enable=false", "enable=true", "is_staff=true", "is_staff=0", "search=ze",
    "search=zed@example", "search=%2B1415", "ordering=-name", "ordering=date_joined",
    "ordering=-email", "page=2&page_size=2", "is_staff=maybe",
]  # fmt: skip
CATEGORY_QUERIES = ["", "slug=shoes", "search=ha", "ordering=-slug", "ordering=name", "page_size=1"]


def generic(monkeypatch) -> None:
    """DRF's path from here on: no reader; items through ModelSerializer's own walk."""
    monkeypatch.setattr(RowReader, "of", classmethod(lambda cls, serializer_class: None))
    monkeypatch.setattr(
        ItemSerializer, "to_representation", serializers.ModelSerializer.to_representation
    )


def bodies(client, path: str, queries: list[str]) -> list[tuple[str, int, bytes]]:
    return [(query, *_get(client, f"{path}?{query}")) for query in queries]


def _get(client, url: str) -> tuple[int, bytes]:
    response = client.get(url)
    return response.status_code, response.content


@pytest.mark.parametrize("reader", ["anon", "user_client", "staff_client"])
def test_item_and_category_lists_are_the_generic_serializers(world, reader, request, monkeypatch):
    client = request.getfixturevalue(reader)
    queries = item_queries(world)
    with CaptureQueriesContext(connection) as captured:
        fast = bodies(client, "/catalog/items/", queries)
    assert any("DATE_FORMAT" in q["sql"] for q in captured.captured_queries)  # values were read
    fast += bodies(client, "/catalog/categories/", CATEGORY_QUERIES)
    generic(monkeypatch)
    slow = bodies(client, "/catalog/items/", queries)
    slow += bodies(client, "/catalog/categories/", CATEGORY_QUERIES)
    for ours, theirs in zip(fast, slow, strict=True):
        assert ours == theirs
    assert sum(status == 200 for _, status, _ in fast) >= len(queries)


@pytest.mark.parametrize("reader", ["user_client", "staff_client"])
def test_user_lists_are_the_generic_serializers(world, reader, request, monkeypatch):
    client = request.getfixturevalue(reader)
    fast = bodies(client, "/identity/users/", USER_QUERIES)
    generic(monkeypatch)
    slow = bodies(client, "/identity/users/", USER_QUERIES)
    for ours, theirs in zip(fast, slow, strict=True):
        assert ours == theirs
    if reader == "user_client":  # others' contact details stay hidden, her own do not
        rows = client.get("/identity/users/").json()["results"]
        assert {len(row) for row in rows if row["name"] != "alice"} == {5}
        assert [len(row) for row in rows if row["name"] == "alice"] == [8]
