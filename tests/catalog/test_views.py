"""The catalog API: who may do what, every filter, constant queries, bulk on items."""

from decimal import Decimal

import pytest

from catalog.models import Category, Item
from tests.factories import CategoryFactory, ItemFactory

pytestmark = pytest.mark.django_db

ITEMS = "/catalog/items/"
CATEGORIES = "/catalog/categories/"


def item_payload(category: Category, sku: str = "NEW-1", **extra) -> dict:
    return {"sku": sku, "name": "New", "price": "12.50", "stock": 3,
            "category": str(category.uuid), **extra}  # fmt: skip


# --- permissions: anonymous / user / staff on every verb ----------------------------------


@pytest.fixture
def item() -> Item:
    return ItemFactory()


def verbs(item: Item) -> list[tuple[str, str, object]]:
    detail = f"{ITEMS}{item.uuid}/"
    cat = str(item.category_id)
    return [
        ("post", ITEMS, item_payload(item.category)),
        ("post", ITEMS, [item_payload(item.category, "NEW-2")]),
        ("put", detail, item_payload(item.category, item.sku)),
        ("patch", detail, {"stock": 5}),
        ("put", ITEMS, [{"uuid": str(item.uuid), **item_payload(item.category, item.sku)}]),
        ("patch", ITEMS, [{"uuid": str(item.uuid), "stock": 6}]),
        ("delete", f"{ITEMS}?category={cat}", None),
        ("delete", detail, None),
    ]


@pytest.mark.parametrize("who", ["anon", "user_client"])
def test_anyone_reads_the_catalog(request, who, item):
    client = request.getfixturevalue(who)
    assert client.get(ITEMS).json()["count"] == 1
    assert client.get(f"{ITEMS}{item.uuid}/").json()["sku"] == item.sku
    assert client.get(CATEGORIES).json()["count"] == 1
    assert client.get(f"{CATEGORIES}{item.category_id}/").status_code == 200


@pytest.mark.parametrize(("who", "status"), [("anon", 401), ("user_client", 403)])
def test_non_staff_cannot_write_with_any_verb(request, who, status, item):
    client = request.getfixturevalue(who)
    for method, url, body in verbs(item):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == status, (method, url)
    item.refresh_from_db()
    assert item.stock == 10
    assert Item.objects.count() == 1


def test_staff_writes_with_every_verb(staff_client, item):
    elsewhere = ItemFactory()  # so that deleting a category's items is not deleting all
    expected = [201, 201, 200, 200, 200, 200, 204, 404]  # the last row is gone by then
    got = [getattr(staff_client, m)(u, b, format="json").status_code for m, u, b in verbs(item)]
    assert got == expected
    assert not Item.objects.filter(category=item.category).exists()
    assert Item.objects.filter(pk=elsewhere.pk).exists()


def test_staff_manages_categories(staff_client):
    response = staff_client.post(CATEGORIES, {"name": "Garden", "slug": "garden"})
    assert response.status_code == 201
    uuid = response.json()["uuid"]
    assert staff_client.patch(f"{CATEGORIES}{uuid}/", {"name": "Yard"}).json()["name"] == "Yard"
    response = staff_client.post(
        CATEGORIES, [{"name": "A", "slug": "a"}, {"name": "B", "slug": "b"}]
    )
    assert response.status_code == 201
    assert staff_client.delete(f"{CATEGORIES}{uuid}/").status_code == 204


def test_deleting_a_category_in_use_is_refused(staff_client, item):
    response = staff_client.delete(f"{CATEGORIES}{item.category_id}/")
    assert response.status_code == 400
    assert Category.objects.filter(pk=item.category_id).exists()


# --- representation and validation ----------------------------------------------------------


def test_item_representation(anon, item):
    body = anon.get(f"{ITEMS}{item.uuid}/").json()
    assert body["price"] == "9.99"
    assert body["category"] == str(item.category_id)
    assert set(body) == {"uuid", "sku", "name", "description", "price", "stock", "category",
                         "enable", "created_at", "updated_at"}  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", "-1"),
        ("price", "abc"),
        ("stock", -1),
        ("stock", 1.5),
        ("sku", ""),
        ("category", "00000000-0000-0000-0000-000000000000"),
        ("category", "nope"),
        ("price", "1" * 20),
    ],
)
def test_invalid_items_are_refused(staff_client, field, value):
    category = CategoryFactory()
    response = staff_client.post(ITEMS, {**item_payload(category), field: value}, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_database_constraints_hold_whatever_the_path():
    from django.db import IntegrityError, transaction

    item = ItemFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(stock=-1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(price=Decimal("-0.01"))


def test_updated_at_moves_on_update(staff_client, item):
    before = item.updated_at
    staff_client.patch(f"{ITEMS}{item.uuid}/", {"stock": 1}, format="json")
    item.refresh_from_db()
    assert item.updated_at > before


# --- filters -------------------------------------------------------------------------------


@pytest.fixture
def shelf() -> dict[str, Item]:
    a, b = CategoryFactory(slug="a"), CategoryFactory(slug="b")
    return {
        "cheap": ItemFactory(sku="C-1", name="Cheap mug", price=Decimal("2.00"), category=a),
        "mid": ItemFactory(sku="M-1", name="Teapot", price=Decimal("20.00"), stock=0, category=a),
        "dear": ItemFactory(
            sku="D-1", name="Kettle", price=Decimal("200.00"), category=b, enable=False
        ),
    }


def skus(client, **params) -> list[str]:
    response = client.get(ITEMS, params)
    assert response.status_code == 200, response.content
    return [i["sku"] for i in response.json()["results"]]


def test_filter_by_category(anon, shelf):
    assert skus(anon, category=str(shelf["dear"].category_id)) == ["D-1"]


def test_filter_by_enable(anon, shelf):
    assert skus(anon, enable="false") == ["D-1"]
    assert skus(anon, enable="true") == ["C-1", "M-1"]


def test_filter_by_price_range(anon, shelf):
    assert skus(anon, price_min="10") == ["D-1", "M-1"]
    assert skus(anon, price_max="20") == ["C-1", "M-1"]
    assert skus(anon, price_min="10", price_max="100") == ["M-1"]


def test_filter_by_stock(anon, shelf):
    assert skus(anon, in_stock="true") == ["C-1", "D-1"]
    assert skus(anon, in_stock="false") == ["M-1"]


def test_search_by_sku_and_name(anon, shelf):
    assert skus(anon, search="tea") == ["M-1"]
    assert skus(anon, search="C-1") == ["C-1"]


def test_ordering(anon, shelf):
    assert skus(anon, ordering="-price") == ["D-1", "M-1", "C-1"]
    assert skus(anon, ordering="name") == ["C-1", "D-1", "M-1"]


@pytest.mark.parametrize("params", [{"price_min": "abc"}, {"category": "not-a-uuid"}])
def test_invalid_filter_values_are_400(anon, params):
    assert anon.get(ITEMS, params).status_code == 400


# --- query counts --------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ITEMS, CATEGORIES])
def test_lists_cost_constant_queries_whatever_the_page_size(
    anon, path, django_assert_max_num_queries
):
    category = CategoryFactory()
    ItemFactory.create_batch(60, category=category)
    CategoryFactory.create_batch(60)
    for size in (1, 10, 50):
        with django_assert_max_num_queries(2):  # count + page
            assert len(anon.get(path, {"page_size": size}).json()["results"]) == size


def test_bulk_item_writes_cost_constant_queries(staff_client, django_assert_max_num_queries):
    categories = CategoryFactory.create_batch(5)
    for n in (5, 200):
        rows = [item_payload(categories[i % 5], f"Q{n}-{i}") for i in range(n)]
        with django_assert_max_num_queries(10):
            assert staff_client.post(ITEMS, rows, format="json").status_code == 201
        rows = [
            {"uuid": str(i.uuid), "stock": 1} for i in Item.objects.filter(sku__startswith=f"Q{n}-")
        ]
        with django_assert_max_num_queries(10):
            assert staff_client.patch(ITEMS, rows, format="json").status_code == 200


# --- bulk all or nothing -------------------------------------------------------------------


def test_bulk_create_items_is_all_or_nothing(staff_client):
    category = CategoryFactory()
    ItemFactory(sku="TAKEN")
    rows = [
        item_payload(category, "OK-1"),
        item_payload(category, "TAKEN"),
        item_payload(category, "OK-2", price="-5"),
        item_payload(category, "ok-1"),  # the same sku as row 0 (case-insensitive)
        {**item_payload(category, "OK-3"), "category": "00000000-0000-0000-0000-000000000000"},
    ]
    response = staff_client.post(ITEMS, rows, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert errors[0] == {}
    assert list(errors[1]) == ["sku"]
    assert list(errors[2]) == ["price"]
    assert list(errors[3]) == ["sku"]
    assert list(errors[4]) == ["category"]
    assert Item.objects.count() == 1


def test_bulk_update_items_is_all_or_nothing(staff_client):
    a, b = ItemFactory.create_batch(2)
    rows = [{"uuid": str(a.uuid), "stock": 99}, {"uuid": str(b.uuid), "stock": -1}]
    assert staff_client.patch(ITEMS, rows, format="json").status_code == 400
    a.refresh_from_db()
    assert a.stock == 10


def test_bulk_update_moves_items_between_categories(staff_client):
    item = ItemFactory()
    other = CategoryFactory()
    rows = [{"uuid": str(item.uuid), "category": str(other.uuid)}]
    response = staff_client.patch(ITEMS, rows, format="json")
    assert response.status_code == 200
    assert response.json()[0]["category"] == str(other.uuid)
    item.refresh_from_db()
    assert item.category == other


def test_a_negative_zero_price_is_zero(staff_client, item):
    url = f"{ITEMS}{item.uuid}/"
    for price in ("-0", "-0.00", -0.0):
        response = staff_client.patch(url, {"price": price}, format="json")
        assert response.json()["price"] == "0.00", price
        assert staff_client.get(url).json()["price"] == "0.00"
