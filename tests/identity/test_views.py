"""The users API: the contract's permission table, row by row, and the rules on fields."""

import pytest
from rest_framework.test import APIClient

from identity.models import Token, User
from tests.conftest import client_for
from tests.factories import PASSWORD, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

USERS = "/identity/users/"


def detail(user: User) -> str:
    return f"{USERS}{user.uuid}/"


def new_user(name: str = "carol") -> dict:
    return {"name": name, "email": f"{name}@example.com", "password": PASSWORD}


# --- reads -------------------------------------------------------------------------------


def test_anonymous_cannot_list_or_retrieve_users(anon, user):
    assert anon.get(USERS).status_code == 401
    assert anon.get(detail(user)).status_code == 401


def test_signed_in_user_lists_and_retrieves_users(user_client, user, staff):
    response = user_client.get(USERS)
    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert user_client.get(detail(staff)).json()["name"] == "root"


def test_list_is_paginated_with_a_bounded_page_size(user_client):
    UserFactory.create_batch(5)
    body = user_client.get(USERS, {"page_size": 2}).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert len(body["results"]) == 2
    assert body["next"] is not None
    assert len(user_client.get(USERS, {"page_size": 1000}).json()["results"]) == 6
    for size in ("5000", "0", "-1", "two"):
        response = user_client.get(USERS, {"page_size": size})
        assert response.status_code == 400, size
        assert response.json() == {"page_size": ["Must be a whole number from 1 to 1000."]}


def test_list_filters_searches_and_orders(user_client, staff_client):
    UserFactory(name="zed", enable=False, phone="+14155550123")
    assert [u["name"] for u in user_client.get(USERS, {"enable": "false"}).json()["results"]] == [
        "zed"
    ]
    assert user_client.get(USERS, {"search": "ze"}).json()["count"] == 1
    assert staff_client.get(USERS, {"search": "+1415555"}).json()["count"] == 1
    assert staff_client.get(USERS, {"search": "zed@example"}).json()["count"] == 1
    names = [u["name"] for u in user_client.get(USERS, {"ordering": "-name"}).json()["results"]]
    assert names == sorted(names, reverse=True)


# --- privacy -------------------------------------------------------------------------------

PUBLIC = {"uuid", "name", "enable", "is_staff", "date_joined"}
EVERY = PUBLIC | {"email", "phone", "comment"}


def test_others_show_only_their_public_fields_to_non_staff(user_client, user, staff):
    rows = {row["name"]: row for row in user_client.get(USERS).json()["results"]}
    assert set(rows["root"]) == PUBLIC
    assert set(rows["alice"]) == EVERY
    assert set(user_client.get(detail(staff)).json()) == PUBLIC
    assert set(user_client.get(detail(user)).json()) == EVERY


def test_staff_sees_every_field_of_everyone(staff_client, user):
    assert all(set(row) == EVERY for row in staff_client.get(USERS).json()["results"])
    assert set(staff_client.get(detail(user)).json()) == EVERY


def test_public_representation_keeps_the_public_fields_alone(user):
    from identity.serializers import PUBLIC_FIELDS, UserSerializer, public_representation

    full = UserSerializer(user).data  # no request: the full record, as events carry it
    assert set(full) == EVERY
    assert set(PUBLIC_FIELDS) == PUBLIC
    assert public_representation(full) == {name: full[name] for name in PUBLIC}


@pytest.mark.parametrize("term", ["secret-mail", "corp.example", "+1415555"])
def test_search_by_contact_details_is_for_staff_only(user_client, staff_client, term):
    UserFactory(name="bob", email="secret-mail@corp.example", phone="+14155550123")
    assert user_client.get(USERS, {"search": term}).json()["count"] == 0
    assert staff_client.get(USERS, {"search": term}).json()["count"] == 1


@pytest.mark.parametrize("ordering", ["email", "-email", "phone"])
def test_ordering_by_contact_details_is_for_staff_only(user_client, staff_client, ordering):
    UserFactory(name="a-user", email="z@example.com")
    UserFactory(name="z-user", email="a@example.com")
    response = user_client.get(USERS, {"ordering": ordering})
    assert response.status_code == 400
    # Only what she may order by is named: the refusal reveals nothing of the others.
    (message,) = response.json()["ordering"]
    allowed = message.split("Allowed: ")[1]
    assert allowed.startswith("name, date_joined (")
    assert "email" not in allowed
    if ordering == "email":
        staff_rows = staff_client.get(USERS, {"ordering": ordering}).json()["results"]
        assert staff_rows[0]["name"] == "z-user"


def test_the_schema_says_only_the_public_fields_are_sure_to_be_there(anon):
    schema = anon.get("/schema/?format=json").json()["components"]["schemas"]
    assert set(schema["User"]["required"]) == {"uuid", "name", "date_joined"}
    assert {"name", "email"} <= set(schema["UserRequest"]["required"])


def test_unknown_or_malformed_uuid_is_404(user_client):
    assert user_client.get(f"{USERS}not-a-uuid/").status_code == 404
    assert user_client.get(f"{USERS}00000000-0000-0000-0000-000000000000/").status_code == 404


def test_password_never_appears_in_any_response(staff_client, staff):
    created = staff_client.post(USERS, new_user(), format="json")
    listed = staff_client.get(USERS)
    fetched = staff_client.get(detail(staff))
    for response in (created, listed, fetched):
        assert "password" not in response.content.decode()
        assert "pbkdf2" not in response.content.decode()
        assert "md5$" not in response.content.decode()


# --- create ------------------------------------------------------------------------------


def test_staff_creates_a_user_with_a_hashed_password(staff_client):
    response = staff_client.post(USERS, new_user(), format="json")
    assert response.status_code == 201
    user = User.objects.get(name="carol")
    assert user.check_password(PASSWORD)
    assert user.password != PASSWORD
    assert response.json()["uuid"] == str(user.uuid)


@pytest.mark.parametrize("who", ["anon", "user_client"])
def test_non_staff_cannot_create(request, who):
    client = request.getfixturevalue(who)
    response = client.post(USERS, new_user(), format="json")
    assert response.status_code == (401 if who == "anon" else 403)
    assert not User.objects.filter(name="carol").exists()


def test_create_validates_password_email_phone_and_uniqueness(staff_client, user):
    response = staff_client.post(
        USERS,
        {"name": "alice", "email": "nope", "phone": "12", "password": "123"},
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) >= {"name", "email", "phone"}
    response = staff_client.post(
        USERS, {**new_user(), "email": "ALICE@example.com".lower()}, format="json"
    )
    assert "email" in response.json()
    response = staff_client.post(USERS, {**new_user(), "password": "12345678"}, format="json")
    assert "password" in response.json()


def test_create_ignores_read_only_fields(staff_client):
    payload = {
        **new_user(),
        "uuid": "11111111-1111-1111-1111-111111111111",
        "date_joined": "2000-01-01T00:00:00Z",
    }
    body = staff_client.post(USERS, payload, format="json").json()
    assert body["uuid"] != payload["uuid"]
    assert not body["date_joined"].startswith("2000")


# --- update ------------------------------------------------------------------------------


def test_user_updates_itself(user_client, user):
    response = user_client.patch(detail(user), {"comment": "hi", "phone": "+4930123456"})
    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.comment, user.phone) == ("hi", "+4930123456")


def test_user_cannot_update_someone_else(user_client, staff):
    assert user_client.patch(detail(staff), {"comment": "x"}).status_code == 403
    staff.refresh_from_db()
    assert staff.comment == ""


def test_staff_updates_anyone_including_privileges(staff_client, user):
    response = staff_client.put(
        detail(user),
        {"name": "alice", "email": "alice@example.com", "is_staff": True, "enable": True},
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.is_staff


def test_user_cannot_raise_its_own_privileges(user_client, user):
    response = user_client.patch(detail(user), {"is_staff": True, "enable": True, "comment": "x"})
    assert response.status_code == 200
    user.refresh_from_db()
    assert not user.is_staff
    assert user.comment == "x"


def test_staff_cannot_disable_or_demote_itself(staff_client, staff):
    response = staff_client.patch(detail(staff), {"is_staff": False, "enable": False})
    assert response.status_code == 200
    staff.refresh_from_db()
    assert staff.is_staff
    assert staff.enable


def test_mass_assignment_of_hidden_fields_is_ignored(user_client, user):
    user_client.patch(
        detail(user),
        {
            "is_superuser": True,
            "uuid": "11111111-1111-1111-1111-111111111111",
            "date_joined": "2000-01-01T00:00:00Z",
            "last_login": "2000-01-01T00:00:00Z",
        },
    )
    user.refresh_from_db()
    assert not user.is_superuser
    assert str(user.uuid) != "11111111-1111-1111-1111-111111111111"
    assert user.date_joined.year != 2000


def test_password_cannot_change_through_update(user_client, user):
    response = user_client.patch(detail(user), {"password": "another-Secret-42"})
    assert response.status_code == 400
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


# --- destroy -----------------------------------------------------------------------------


def test_staff_destroys_a_user(staff_client, user):
    assert staff_client.delete(detail(user)).status_code == 204
    assert not User.objects.filter(pk=user.pk).exists()


def test_user_cannot_destroy_even_itself(user_client, user):
    assert user_client.delete(detail(user)).status_code == 403
    assert User.objects.filter(pk=user.pk).exists()


# --- set_password --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put"])
def test_user_sets_own_password_with_old_password(user, method):
    client = client_for(user)
    url = f"{detail(user)}set_password/"
    response = getattr(client, method)(url, {"password": "brand-New-secret-7"})
    assert response.status_code == 400
    assert "old_password" in response.json()
    response = getattr(client, method)(
        url, {"password": "brand-New-secret-7", "old_password": PASSWORD}
    )
    assert response.status_code == 204
    user.refresh_from_db()
    assert user.check_password("brand-New-secret-7")


def test_set_password_revokes_every_token(staff_client, user):
    client = client_for(user)
    other_device = client_for(user)
    response = staff_client.post(f"{detail(user)}set_password/", {"password": "brand-New-secret-7"})
    assert response.status_code == 204
    assert not Token.objects.filter(user=user).exists()
    assert client.get(USERS).status_code == 401
    assert other_device.get(USERS).status_code == 401


def test_user_cannot_set_someone_elses_password(user_client, staff):
    url = f"{detail(staff)}set_password/"
    response = user_client.post(url, {"password": "brand-New-secret-7", "old_password": PASSWORD})
    assert response.status_code == 403
    staff.refresh_from_db()
    assert staff.check_password(PASSWORD)


def test_set_password_runs_the_password_validators(staff_client, user):
    response = staff_client.post(f"{detail(user)}set_password/", {"password": "alice"})
    assert response.status_code == 400
    assert "password" in response.json()


# --- superusers ----------------------------------------------------------------------------


@pytest.fixture
def superuser(db: None) -> User:
    return StaffFactory(name="super", is_superuser=True)


def superuser_writes(superuser: User) -> list[tuple[str, str, dict | None]]:
    url = detail(superuser)
    return [
        ("patch", url, {"comment": "owned"}),
        ("patch", url, {"enable": False}),
        ("put", url, {"name": "super", "email": "evil@example.com"}),
        ("post", f"{url}set_password/", {"password": "attacker-Chosen-99"}),
        ("put", f"{url}set_password/", {"password": "attacker-Chosen-99"}),
        ("delete", url, None),
    ]


def test_staff_cannot_write_a_superuser(staff_client, superuser):
    for method, url, body in superuser_writes(superuser):
        response = getattr(staff_client, method)(url, body, format="json")
        assert response.status_code == 403, (method, url)
        assert "superuser" in response.json()["detail"]
    superuser.refresh_from_db()
    assert (superuser.comment, superuser.enable, superuser.email) == ("", True, "super@example.com")
    assert superuser.check_password(PASSWORD)
    assert staff_client.get(detail(superuser)).status_code == 200  # reading is fine


def test_a_superuser_writes_a_superuser(superuser):
    client = client_for(StaffFactory(is_superuser=True))
    for method, url, body in superuser_writes(superuser):
        expected = 204 if "set_password" in url or method == "delete" else 200
        assert getattr(client, method)(url, body, format="json").status_code == expected
    assert not User.objects.filter(pk=superuser.pk).exists()


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_bulk_update_touching_a_superuser_is_refused_whole(staff_client, user, superuser, method):
    batch = [
        {"uuid": str(user.uuid), "name": "alice", "email": "alice@example.com", "comment": "x"},
        {"uuid": str(superuser.uuid), "name": "super", "email": "super@example.com",
         "enable": False},
    ]  # fmt: skip
    response = getattr(staff_client, method)(USERS, batch, format="json")
    assert response.status_code == 403
    user.refresh_from_db()
    superuser.refresh_from_db()
    assert (user.comment, superuser.enable) == ("", True)


def test_a_bulk_delete_touching_a_superuser_is_refused_whole(staff_client, user, superuser):
    assert staff_client.delete(f"{USERS}?is_staff=true").status_code == 403  # root, super
    assert User.objects.filter(is_staff=True).count() == 2
    assert staff_client.delete(f"{USERS}?is_staff=false").status_code == 204
    assert not User.objects.filter(pk=user.pk).exists()


# --- disabled users ----------------------------------------------------------------------


def test_disabled_user_is_locked_out_of_token_and_login(staff_client, user, anon):
    client = client_for(user)
    assert staff_client.patch(detail(user), {"enable": False}).status_code == 200
    assert client.get(USERS).status_code == 401
    assert not Token.objects.filter(user=user).exists()
    response = anon.post("/identity/token/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    # Even a token minted by other means is refused while disabled.
    assert client_for(user).get(USERS).status_code == 401


# --- errors are JSON ------------------------------------------------------------------------


def test_unknown_url_is_a_json_404(anon):
    response = anon.get("/no/such/page/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_method_not_allowed_is_405(user_client):
    assert user_client.generic("TRACE", USERS).status_code == 405


def test_malformed_json_is_400(staff_client):
    response = staff_client.generic("POST", USERS, "{not json", content_type="application/json")
    assert response.status_code == 400


def test_oversized_body_is_413(staff_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = staff_client.post(USERS, {**new_user(), "comment": "x" * 2000})
    assert response.status_code == 413
    assert response.json()["detail"].startswith("Request body too large")


def test_browsable_api_is_off_without_debug(user_client):
    response = user_client.get(USERS, HTTP_ACCEPT="text/html")
    assert response.status_code == 406 or response["Content-Type"] == "application/json"


def staff_only(client: APIClient) -> int:
    return client.post(USERS, new_user("dave"), format="json").status_code


def test_staff_flag_is_what_grants_writes(db):
    assert staff_only(client_for(UserFactory())) == 403
    assert staff_only(client_for(StaffFactory())) == 201


def test_a_user_created_without_a_password_logs_in_once_one_is_set(staff_client, anon):
    created = staff_client.post(USERS, {"name": "invited", "email": "invited@example.com"})
    assert created.status_code == 201, created.content
    login = {"username": "invited", "password": ""}
    assert anon.post("/identity/token/", login, format="json").status_code == 400
    url = f"{USERS}{created.json()['uuid']}/set_password/"
    assert staff_client.post(url, {"password": "brand-New-secret-7"}).status_code == 204
    login["password"] = "brand-New-secret-7"
    assert anon.post("/identity/token/", login, format="json").status_code == 200
