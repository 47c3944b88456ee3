"""Bulk verbs (myproject/bulk.py), exercised on users: all or nothing, constant queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from identity.models import User
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

USERS = "/identity/users/"


def rows(n: int, prefix: str = "bulk") -> list[dict]:
    return [
        {"name": f"{prefix}{i}", "email": f"{prefix}{i}@example.com", "password": PASSWORD}
        for i in range(n)
    ]


# --- create ------------------------------------------------------------------------------


def test_bulk_create_creates_every_row(staff_client):
    response = staff_client.post(USERS, rows(3), format="json")
    assert response.status_code == 201
    assert [u["name"] for u in response.json()] == ["bulk0", "bulk1", "bulk2"]
    assert User.objects.filter(name__startswith="bulk").count() == 3
    assert User.objects.get(name="bulk1").check_password(PASSWORD)


def test_bulk_create_is_all_or_nothing_with_one_error_per_element(staff_client, user):
    batch = rows(3)
    batch[1]["email"] = "not-an-email"
    batch[2]["name"] = "alice"  # taken by `user`
    before = User.objects.count()
    response = staff_client.post(USERS, batch, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert isinstance(errors, list)
    assert len(errors) == 3
    assert errors[0] == {}
    assert "email" in errors[1]
    assert "name" in errors[2]
    assert User.objects.count() == before


def test_bulk_create_catches_duplicates_inside_the_batch(staff_client):
    batch = rows(3)
    batch[2]["email"] = batch[0]["email"].upper()
    response = staff_client.post(USERS, batch, format="json")
    assert response.status_code == 400
    assert response.json()[0] == {}
    assert "email" in response.json()[2]
    assert not User.objects.filter(name__startswith="bulk").exists()


def test_bulk_create_rejects_non_objects_and_empty_lists(staff_client):
    response = staff_client.post(USERS, [1, "x", None], format="json")
    assert response.status_code == 400
    assert len(response.json()) == 3
    assert staff_client.post(USERS, [], format="json").status_code == 400


def test_bulk_batch_over_the_limit_is_refused_with_the_limit(staff_client, settings):
    settings.BULK_MAX_BATCH = 2
    response = staff_client.post(USERS, rows(3), format="json")
    assert response.status_code == 400
    assert "at most 2" in str(response.json())
    assert not User.objects.filter(name__startswith="bulk").exists()


def test_non_staff_cannot_bulk_create(user_client):
    assert user_client.post(USERS, rows(2), format="json").status_code == 403


def test_bulk_create_costs_constant_queries(staff_client, django_assert_max_num_queries):
    # auth (2) + savepoints + uniqueness (2 fields) + insert: not one per row
    with django_assert_max_num_queries(10):
        assert staff_client.post(USERS, rows(5, "a"), format="json").status_code == 201
    with django_assert_max_num_queries(10):
        assert staff_client.post(USERS, rows(200, "b"), format="json").status_code == 201


# --- update ------------------------------------------------------------------------------


def test_bulk_update_of_a_model_with_unique_fields_succeeds(staff_client):
    """djangorestframework-bulk answers this with a 500 (UniqueValidator without instance)."""
    users = UserFactory.create_batch(3)
    payload = [
        {"uuid": str(u.uuid), "name": u.name, "email": u.email, "comment": f"c{i}"}
        for i, u in enumerate(users)
    ]
    response = staff_client.put(USERS, payload, format="json")
    assert response.status_code == 200, response.content
    assert [u["comment"] for u in response.json()] == ["c0", "c1", "c2"]
    assert sorted(
        User.objects.filter(comment__startswith="c").values_list("comment", flat=True)
    ) == ["c0", "c1", "c2"]


def test_bulk_partial_update_changes_only_given_fields(staff_client):
    users = UserFactory.create_batch(2, comment="keep")
    payload = [{"uuid": str(u.uuid), "phone": "+4930123456"} for u in users]
    response = staff_client.patch(USERS, payload, format="json")
    assert response.status_code == 200
    for u in users:
        u.refresh_from_db()
        assert (u.phone, u.comment) == ("+4930123456", "keep")


def test_bulk_update_validates_uniqueness_against_other_rows_and_the_batch(staff_client, user):
    a, b, c = UserFactory.create_batch(3)
    payload = [
        {"uuid": str(a.uuid), "email": "fresh@example.com"},
        {"uuid": str(b.uuid), "email": user.email},  # taken by a row outside the batch
        {"uuid": str(c.uuid), "email": "FRESH@example.com"},  # taken inside the batch
    ]
    response = staff_client.patch(USERS, payload, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert errors[0] == {}
    assert "email" in errors[1]
    assert "email" in errors[2]
    a.refresh_from_db()
    assert a.email != "fresh@example.com"


def test_bulk_update_keeping_own_unique_values_is_valid(staff_client):
    a, b = UserFactory.create_batch(2)
    payload = [{"uuid": str(u.uuid), "email": u.email, "name": u.name} for u in (a, b)]
    assert staff_client.patch(USERS, payload, format="json").status_code == 200


def test_bulk_update_refuses_missing_unknown_and_repeated_uuids(staff_client):
    a = UserFactory()
    payload = [
        {"comment": "no uuid"},
        {"uuid": "00000000-0000-0000-0000-000000000000", "comment": "x"},
        {"uuid": "garbage", "comment": "x"},
        {"uuid": str(a.uuid), "comment": "first"},
        {"uuid": str(a.uuid), "comment": "again"},
    ]
    response = staff_client.patch(USERS, payload, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert [("uuid" in e) for e in errors] == [True, True, True, False, True]
    a.refresh_from_db()
    assert a.comment == ""


def test_bulk_update_is_all_or_nothing(staff_client):
    a, b = UserFactory.create_batch(2)
    payload = [
        {"uuid": str(a.uuid), "comment": "changed"},
        {"uuid": str(b.uuid), "phone": "bad"},
    ]
    assert staff_client.patch(USERS, payload, format="json").status_code == 400
    assert not User.objects.filter(comment="changed").exists()


def test_bulk_update_costs_constant_queries(staff_client, django_assert_max_num_queries):
    for size in (3, 150):
        users = UserFactory.create_batch(size)
        payload = [{"uuid": str(u.uuid), "email": f"x{u.name}@example.org"} for u in users]
        with django_assert_max_num_queries(10):
            assert staff_client.patch(USERS, payload, format="json").status_code == 200


def test_bulk_update_can_disable_users_and_revokes_their_tokens(staff_client):
    from tests.conftest import client_for

    victim = UserFactory()
    client = client_for(victim)
    response = staff_client.patch(
        USERS, [{"uuid": str(victim.uuid), "enable": False}], format="json"
    )
    assert response.status_code == 200
    assert client.get(USERS).status_code == 401


def test_bulk_update_cannot_change_own_privileges(staff_client, staff):
    payload = [{"uuid": str(staff.uuid), "is_staff": False, "enable": False}]
    assert staff_client.patch(USERS, payload, format="json").status_code == 200
    staff.refresh_from_db()
    assert staff.is_staff
    assert staff.enable


def test_non_staff_cannot_bulk_update(user_client, user):
    payload = [{"uuid": str(user.uuid), "comment": "x"}]
    assert user_client.patch(USERS, payload, format="json").status_code == 403
    assert user_client.put(USERS, payload, format="json").status_code == 403


def test_bulk_update_needs_a_list(staff_client):
    assert staff_client.patch(USERS, {"comment": "x"}, format="json").status_code == 400


# --- destroy -----------------------------------------------------------------------------


def test_bulk_destroy_deletes_the_filtered_set(staff_client, staff):
    UserFactory.create_batch(3, enable=False)
    keep = UserFactory()
    assert staff_client.delete(f"{USERS}?enable=false").status_code == 204
    assert set(User.objects.values_list("pk", flat=True)) == {staff.pk, keep.pk}


def test_bulk_destroy_by_search(staff_client, staff):
    UserFactory(name="temp1")
    UserFactory(name="temp2")
    assert staff_client.delete(f"{USERS}?search=temp").status_code == 204
    assert not User.objects.filter(name__startswith="temp").exists()


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?ordering=name",
        "?page=1",
        "?page_size=10",
        "?search=",
        "?search=%20%20",
        "?search=,,",
        "?search=%2C%20%2C",
        "?enable=",
        "?enable=%20",
        "?unknown=1",
    ],
)
def test_bulk_destroy_without_a_real_filter_is_refused(staff_client, query):
    assert_bulk_destroy_refused(staff_client, query, "filter")


def assert_bulk_destroy_refused(client, query: str, reason: str) -> None:
    """A bulk delete of users with `query` is refused with a 400 naming `reason`; none goes."""
    UserFactory.create_batch(2)
    before = User.objects.count()
    response = client.delete(f"{USERS}{query}")
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert User.objects.count() == before


@pytest.mark.parametrize("query", ['?search=""', "?search=''", '?search="" ""', "?search=e"])
def test_bulk_destroy_of_a_filter_matching_every_row_is_refused(staff_client, query):
    # An empty quoted phrase is one empty term, which every row contains: it used to pass the
    # guard and delete every user. Any search that every row matches is refused the same way.
    assert_bulk_destroy_refused(staff_client, query, "every row")


def test_bulk_destroy_of_everything_but_one_row_is_allowed(staff_client, staff):
    UserFactory.create_batch(2, enable=False)
    assert staff_client.delete(f"{USERS}?enable=false").status_code == 204
    assert list(User.objects.all()) == [staff]


def test_bulk_create_writes_long_texts_in_statements_that_fit(staff_client):
    # 120 rows of 60,000 four-byte characters: 29 MB of SQL in one INSERT, over MySQL's
    # max_allowed_packet (16 MiB); the service splits it.
    batch = [{**row, "comment": "\U0001f600" * 60_000} for row in rows(120)]
    response = staff_client.post(USERS, batch, format="json")
    assert response.status_code == 201, response.content[:300]
    assert User.objects.filter(name__startswith="bulk").count() == 120
    assert len(User.objects.get(name="bulk7").comment) == 60_000


def test_a_unique_value_too_long_for_its_column_is_not_looked_up(staff_client):
    batch = rows(2)
    batch[0]["name"] = "x" * 60_000  # 10,000 of them would make a query of 600 MB
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.post(USERS, batch, format="json")
    assert response.status_code == 400
    assert "name" in response.json()[0]
    assert not [query for query in queries if "x" * 151 in query["sql"]]


def test_non_staff_cannot_bulk_destroy(user_client):
    UserFactory(enable=False)
    assert user_client.delete(f"{USERS}?enable=false").status_code == 403
    assert User.objects.filter(enable=False).exists()


def test_bulk_destroy_costs_constant_queries(staff_client, django_assert_max_num_queries):
    for size in (2, 100):
        UserFactory.create_batch(size, enable=False)
        with django_assert_max_num_queries(16):
            assert staff_client.delete(f"{USERS}?enable=false").status_code == 204
