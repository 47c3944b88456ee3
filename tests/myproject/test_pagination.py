"""
Pagination (myproject/pagination.py): the page before the count, the COUNT only for a full
page; the envelope (count, next, previous) as DRF's own paginator gives it; a page past the end
a 404 however large its number.
"""

import pytest
from rest_framework import pagination

from catalog.views import ItemViewSet
from tests.factories import CategoryFactory, ItemFactory

pytestmark = pytest.mark.django_db

ITEMS = "/catalog/items/"


class DRFPagination(pagination.PageNumberPagination):
    """DRF's own paginator, counting first: what the envelope must equal."""

    page_size_query_param = "page_size"
    max_page_size = 1000


@pytest.fixture
def seven(db):
    category = CategoryFactory()
    ItemFactory.create_batch(7, category=category)
    return category


@pytest.mark.parametrize(
    ("page", "size"), [(1, 50), (1, 7), (1, 3), (2, 3), (3, 3), (2, 5), (1, 1), (7, 1), (1, 10)]
)
def test_the_envelope_is_drfs(anon, seven, page, size, monkeypatch, django_assert_num_queries):
    ours = anon.get(ITEMS, {"page": page, "page_size": size}).json()
    monkeypatch.setattr(ItemViewSet, "pagination_class", DRFPagination)
    with django_assert_num_queries(2):  # DRF's: count, then page
        assert anon.get(ITEMS, {"page": page, "page_size": size}).json() == ours


def test_a_page_that_is_not_full_costs_one_query_and_counts_itself(
    anon, seven, django_assert_num_queries
):
    with django_assert_num_queries(1):
        body = anon.get(ITEMS, {"page_size": 10}).json()
    assert body["count"] == 7
    assert len(body["results"]) == 7
    with django_assert_num_queries(1):
        assert anon.get(ITEMS, {"page": 3, "page_size": 3}).json()["count"] == 7
    with django_assert_num_queries(2):  # a full page: is there more? the COUNT says
        assert anon.get(ITEMS, {"page": 2, "page_size": 3}).json()["count"] == 7


def test_an_empty_list_is_a_page_of_nothing(anon, db):
    assert anon.get(ITEMS).json() == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.parametrize("page", ["3", "8", "0", "-1", "x", "1.5", "99999999999999999999999999"])
def test_a_page_past_the_end_or_not_a_number_is_a_404(anon, seven, page):
    response = anon.get(ITEMS, {"page": page, "page_size": 3})
    if page == "3":
        assert response.status_code == 200
        return
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page."}


def test_the_last_page_by_name(anon, seven):
    body = anon.get(ITEMS, {"page": "last", "page_size": 3}).json()
    assert len(body["results"]) == 1
    assert body["next"] is None
