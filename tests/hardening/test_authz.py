"""
Object-level and property-level authorization, re-tested from outside through nginx for every
endpoint and verb (OWASP API Top 10: BOLA, broken property-level authorization), and no secret
in any log line.
"""

import uuid
from dataclasses import dataclass

import httpx
import pytest

from tests.stack import ADMIN_PASSWORD, LOG, NGINX, auth, login

pytestmark = pytest.mark.stack

PASSWORD = "authz-User-secret-42"


@dataclass
class World:
    staff: dict[str, str]
    alice: dict[str, str]
    bob: dict[str, str]
    alice_id: str
    bob_id: str
    item: str
    category: str


@pytest.fixture(scope="module")
def world(stack) -> World:
    tag = uuid.uuid4().hex[:8]
    ids, tokens = {}, {}
    for n, name in enumerate((f"alice-{tag}", f"bob-{tag}")):
        response = httpx.post(
            f"{NGINX}/identity/users/", headers=stack.auth, timeout=30,
            json={"name": name, "email": f"{name}@example.com", "password": PASSWORD},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        ids[n] = response.json()["uuid"]
        tokens[n] = login(name, PASSWORD, address=f"127.0.0.{30 + n}")
    category = httpx.post(f"{NGINX}/catalog/categories/", headers=stack.auth, timeout=30,
                          json={"name": tag, "slug": f"authz-{tag}"}).json()["uuid"]  # fmt: skip
    item = httpx.post(f"{NGINX}/catalog/items/", headers=stack.auth, timeout=30,
                      json={"sku": f"AUTHZ-{tag}", "name": "x", "price": "1.00", "stock": 5,
                            "category": category}).json()["uuid"]  # fmt: skip
    return World(stack.auth, auth(tokens[0]), auth(tokens[1]), ids[0], ids[1], item, category)


def call(method: str, path: str, headers: dict[str, str] | None, body: object = None) -> int:
    response = httpx.request(method, f"{NGINX}{path}", headers=headers or {}, json=body, timeout=30)
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.status_code


def test_catalog_writes_are_staff_only_for_every_verb(world):
    item, category = f"/catalog/items/{world.item}/", f"/catalog/categories/{world.category}/"
    writes = [
        ("POST", "/catalog/items/", {"sku": "NEW", "name": "n", "price": "1", "stock": 1,
                                     "category": world.category}),
        ("POST", "/catalog/items/", []),
        ("PUT", "/catalog/items/", [{"uuid": world.item, "stock": 0}]),
        ("PATCH", "/catalog/items/", [{"uuid": world.item, "stock": 0}]),
        ("DELETE", f"/catalog/items/?category={world.category}", None),
        ("PUT", item, {"sku": "X", "name": "x", "price": "1", "stock": 0,
                       "category": world.category}),
        ("PATCH", item, {"stock": 0}),
        ("DELETE", item, None),
        ("POST", f"{item}adjust_stock/", {"delta": -1}),
        ("POST", "/catalog/categories/", {"name": "c", "slug": "c"}),
        ("PATCH", "/catalog/categories/", [{"uuid": world.category, "name": "c"}]),
        ("DELETE", "/catalog/categories/?slug=x", None),
        ("PATCH", category, {"name": "c"}),
        ("DELETE", category, None),
    ]  # fmt: skip
    for method, path, body in writes:
        assert call(method, path, None, body) == 401, (method, path)
        assert call(method, path, world.alice, body) == 403, (method, path)
    for path in ("/catalog/items/", item, "/catalog/categories/", category):
        assert call("GET", path, None) == 200
    stock = httpx.get(f"{NGINX}{item}", timeout=30).json()["stock"]
    assert stock == 5  # nothing above changed it


def test_users_see_users_but_change_only_themselves(world):
    other = f"/identity/users/{world.bob_id}/"
    me = f"/identity/users/{world.alice_id}/"
    assert call("GET", "/identity/users/", None) == 401
    assert call("GET", other, world.alice) == 200
    for method, path, body in [
        ("PATCH", other, {"comment": "pwned"}),
        ("PUT", other, {"name": "x", "email": "x@example.com"}),
        ("DELETE", other, None),
        ("POST", f"{other}set_password/", {"password": "brand-New-secret-7"}),
        ("DELETE", me, None),
        ("POST", "/identity/users/", {"name": "x", "email": "x@example.com"}),
        ("PATCH", "/identity/users/", [{"uuid": world.bob_id, "comment": "pwned"}]),
        ("DELETE", f"/identity/users/?search={world.bob_id}", None),
    ]:
        assert call(method, path, world.alice, body) == 403, (method, path)
    assert httpx.get(f"{NGINX}{other}", headers=world.staff, timeout=30).json()["comment"] == ""
    assert call("PATCH", me, world.alice, {"comment": "mine"}) == 200


def test_privileged_properties_cannot_be_raised_by_their_owner(world):
    me = f"/identity/users/{world.alice_id}/"
    grab = {"is_staff": True, "enable": False, "is_superuser": True, "uuid": str(uuid.uuid4()),
            "date_joined": "2000-01-01T00:00:00Z"}  # fmt: skip
    response = httpx.patch(f"{NGINX}{me}", headers=world.alice, json=grab, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["is_staff"] is False
    assert body["enable"] is True
    assert body["uuid"] == world.alice_id
    assert not body["date_joined"].startswith("2000")
    assert "password" not in body
    assert call("POST", "/catalog/categories/", world.alice, {"name": "n", "slug": "n"}) == 403


def test_own_password_needs_the_old_one(world):
    url = f"/identity/users/{world.bob_id}/set_password/"
    assert call("POST", url, world.bob, {"password": "brand-New-secret-7"}) == 400


def test_no_token_or_password_in_any_log_line(world, stack):
    secrets = [ADMIN_PASSWORD, PASSWORD, stack.token, *(h["Authorization"].split()[1]
               for h in (world.alice, world.bob))]  # fmt: skip
    for path in sorted(LOG.glob("*.log")):
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"{path.name} contains a secret"
