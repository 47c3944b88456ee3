"""`?search=` everywhere (myproject/filters.py): at most SEARCH_MAX_TERMS terms, as DRF splits
them, of at most 100 characters each; more is a 400 before any query."""

import pytest

from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db

LISTS = ["/catalog/items/", "/catalog/categories/", "/identity/users/"]


def terms(n: int, separator: str = " ") -> str:
    return separator.join(f"t{i}" for i in range(n))


@pytest.mark.parametrize("path", LISTS)
def test_ten_terms_of_100_characters_are_fine(staff_client, path):
    for search in (terms(10), terms(10, ","), "x" * 100, '"one quoted phrase of many words"'):
        assert staff_client.get(path, {"search": search}).status_code == 200, search


@pytest.mark.parametrize("path", LISTS)
def test_more_or_longer_terms_are_a_400_before_any_query(
    staff_client, path, django_assert_max_num_queries
):
    for search, message in [
        (terms(11), "At most 10 terms"),
        (terms(11, ","), "At most 10 terms"),
        (terms(5000), "At most 10 terms"),
        ("x" * 101, "at most 100 characters"),
    ]:
        with django_assert_max_num_queries(2):  # the token and its user
            response = staff_client.get(path, {"search": search})
        assert response.status_code == 400
        assert message in response.json()["search"][0]


def test_the_limit_is_a_setting(staff_client, settings):
    ItemFactory(name="red shoe")
    settings.SEARCH_MAX_TERMS = 2
    assert staff_client.get("/catalog/items/", {"search": "red shoe"}).json()["count"] == 1
    assert staff_client.get("/catalog/items/", {"search": "a red shoe"}).status_code == 400


def test_the_bulk_delete_is_bounded_too(staff_client):
    ItemFactory.create_batch(2)
    assert staff_client.delete(f"/catalog/items/?search={terms(11)}").status_code == 400
