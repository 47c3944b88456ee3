"""ETags and If-Match (myproject/conditional.py): no silent lost updates between two editors."""

import pytest

from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


def test_single_object_responses_carry_an_etag_that_changes_with_the_object(staff_client):
    item = ItemFactory()
    url = f"/catalog/items/{item.uuid}/"
    first = staff_client.get(url)["ETag"]
    assert first.startswith('"')
    assert staff_client.get(url)["ETag"] == first
    updated = staff_client.patch(url, {"stock": 1}, format="json")
    assert updated["ETag"] != first
    assert staff_client.get(url)["ETag"] == updated["ETag"]


def test_a_stale_if_match_is_refused_with_412_and_writes_nothing(staff_client):
    item = ItemFactory(stock=10)
    url = f"/catalog/items/{item.uuid}/"
    etag = staff_client.get(url)["ETag"]
    assert (
        staff_client.patch(url, {"stock": 9}, format="json", HTTP_IF_MATCH=etag).status_code == 200
    )
    second_editor = staff_client.patch(url, {"stock": 1}, format="json", HTTP_IF_MATCH=etag)
    assert second_editor.status_code == 412
    item.refresh_from_db()
    assert item.stock == 9
    assert staff_client.delete(url, HTTP_IF_MATCH=etag).status_code == 412
    assert staff_client.delete(url, HTTP_IF_MATCH="*").status_code == 204


def test_users_have_etags_too(user_client, user):
    url = f"/identity/users/{user.uuid}/"
    etag = user_client.get(url)["ETag"]
    assert user_client.patch(url, {"comment": "a"}, HTTP_IF_MATCH=etag).status_code == 200
    assert user_client.patch(url, {"comment": "b"}, HTTP_IF_MATCH=etag).status_code == 412


def test_writes_without_if_match_still_work(staff_client):
    item = ItemFactory()
    assert staff_client.patch(f"/catalog/items/{item.uuid}/", {"stock": 2}).status_code == 200
