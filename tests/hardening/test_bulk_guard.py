"""
A bulk delete needs a filter that narrows the set, judged by what the filter does rather than
which parameters are present. The bypasses tried here, through nginx with a staff token:
a search of an empty quoted phrase (`?search=""`: one empty term, which every row contains;
before the fix it deleted every user, superusers included), searches and filters that reduce
to nothing, unknown parameters, and filters that match every row (`?price_min=0`).
"""

import uuid

import httpx
import pytest

from tests.stack import NGINX, Stack

pytestmark = pytest.mark.stack

ITEMS = f"{NGINX}/catalog/items/"
USERS = f"{NGINX}/identity/users/"
# Each narrows nothing: no filter at all, or one that every row passes.
NO_FILTER = [
    "", "search=", "search=%20%20", "search=,,", "search=%2C%20%2C", 'search=""', "search=''",
    'search=%22%22%20%22%22', "enable=", "enable=%20", "foo=bar", "ordering=sku", "page=1",
    "page_size=1",
]  # fmt: skip
WHOLE_TABLE = ["price_min=0", "price_max=9999999999", "price_min=-1"]


def count(url: str, stack: Stack, **params: str) -> int:
    response = httpx.get(url, headers=stack.auth, params={**params, "page_size": 1}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["count"]


def new_items(stack: Stack, count: int) -> str:
    """`count` items in a category of their own; its uuid."""
    tag = uuid.uuid4().hex[:8]
    category = httpx.post(f"{NGINX}/catalog/categories/", headers=stack.auth, timeout=30,
                          json={"name": tag, "slug": f"guard-{tag}"}).json()["uuid"]  # fmt: skip
    batch = [{"sku": f"GUARD-{tag}-{n}", "name": f"guard {tag}", "price": "1.00", "stock": n,
              "category": category} for n in range(count)]  # fmt: skip
    created = httpx.post(ITEMS, json=batch, headers=stack.auth, timeout=30)
    assert created.status_code == 201, created.text
    return category


@pytest.fixture(scope="module")
def items(stack: Stack) -> str:
    """Three items of a category of their own, and a bystander elsewhere: never the table."""
    new_items(stack, 1)
    return new_items(stack, 3)


@pytest.mark.parametrize("query", NO_FILTER + WHOLE_TABLE + ["search=%00"])
def test_a_bulk_delete_that_narrows_nothing_is_refused(stack, items, query):
    before = count(ITEMS, stack)
    response = httpx.delete(f"{ITEMS}?{query}", headers=stack.auth, timeout=30)
    assert response.status_code == 400, (query, response.text)
    assert response.headers["content-type"] == "application/json"
    assert count(ITEMS, stack) == before


def test_a_narrowing_filter_deletes_exactly_its_rows(stack, items):
    before = count(ITEMS, stack)
    assert count(ITEMS, stack, category=items) == 3
    response = httpx.delete(ITEMS, params={"category": items, "in_stock": "true"},
                            headers=stack.auth, timeout=30)  # fmt: skip
    assert response.status_code == 204, response.text
    assert count(ITEMS, stack) == before - 2
    # Now the category's one item left is its whole set, but not the whole table.
    response = httpx.delete(ITEMS, params={"category": items}, headers=stack.auth, timeout=30)
    assert response.status_code == 204, response.text
    assert count(ITEMS, stack) == before - 3


@pytest.mark.parametrize("query", ['search=""', "search=''", "search=,,", "is_staff=", "enable="])
def test_the_empty_phrase_bypass_cannot_delete_every_user(stack, query):
    before = count(USERS, stack)
    response = httpx.delete(f"{USERS}?{query}", headers=stack.auth, timeout=30)
    assert response.status_code == 400, (query, response.text)
    assert count(USERS, stack) == before
    assert httpx.get(USERS, headers=stack.auth, timeout=30).status_code == 200  # still signed in
