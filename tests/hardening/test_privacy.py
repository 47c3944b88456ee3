"""
What a signed-in user who is not staff learns about others, through nginx: only `uuid`,
`name`, `enable`, `is_staff` and `date_joined`, whether listed or fetched one by one; and
neither `?search=` nor `?ordering=` works as an oracle for an email or a phone number.
"""

import uuid
from dataclasses import dataclass

import httpx
import pytest

from tests.stack import NGINX, Account, Stack, new_account

pytestmark = pytest.mark.stack

ADDRESS = "127.0.0.51"
USERS = f"{NGINX}/identity/users/"
PUBLIC = {"uuid", "name", "enable", "is_staff", "date_joined"}
EVERY = PUBLIC | {"email", "phone", "comment"}


@dataclass
class World:
    tag: str
    alice: Account
    bob: Account
    bob_email: str
    bob_phone: str


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    tag = f"pv{uuid.uuid4().hex[:6]}"
    alice = new_account(stack, f"{tag}-alice", address=ADDRESS)
    bob = new_account(stack, f"{tag}-bob", address=ADDRESS)
    # Contact details unrelated to the names: finding them must take an oracle. Alice's email
    # sorts after Bob's, her name before his.
    bob_email = f"aa-secret-{uuid.uuid4().hex[:8]}@corp.example"
    bob_phone = f"+1415{uuid.uuid4().int % 10**7:07d}"
    for account, body in [
        (bob, {"email": bob_email, "phone": bob_phone, "comment": "private note"}),
        (alice, {"email": f"zz-{alice.name}@example.com"}),
    ]:
        changed = httpx.patch(f"{USERS}{account.uuid}/", json=body, headers=stack.auth, timeout=30)
        assert changed.status_code == 200, changed.text
    return World(tag, alice, bob, bob_email, bob_phone)


def listed(headers: dict[str, str], **params: str) -> list[dict]:
    response = httpx.get(USERS, params=params, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_a_plain_user_sees_only_the_public_fields_of_others(world):
    rows = listed(world.alice.auth, search=world.tag)
    assert {row["name"] for row in rows} == {world.alice.name, world.bob.name}
    for row in rows:
        assert set(row) == (EVERY if row["uuid"] == world.alice.uuid else PUBLIC), row
    other = httpx.get(f"{USERS}{world.bob.uuid}/", headers=world.alice.auth, timeout=30)
    assert other.status_code == 200
    assert set(other.json()) == PUBLIC
    assert world.bob_email not in other.text
    assert world.bob_phone not in other.text
    own = httpx.get(f"{USERS}{world.alice.uuid}/", headers=world.alice.auth, timeout=30).json()
    assert set(own) == EVERY


def test_staff_sees_every_field(stack, world):
    fetched = httpx.get(f"{USERS}{world.bob.uuid}/", headers=stack.auth, timeout=30).json()
    assert set(fetched) == EVERY
    assert fetched["email"] == world.bob_email
    assert fetched["phone"] == world.bob_phone
    assert fetched["comment"] == "private note"


def test_search_is_no_oracle_for_email_or_phone(stack, world):
    for term in (world.bob_email, world.bob_email.split("@")[0], world.bob_phone, "corp.example"):
        assert listed(world.alice.auth, search=term) == [], term
        assert [row["uuid"] for row in listed(stack.auth, search=term)] == [world.bob.uuid], term


def test_ordering_by_email_is_no_oracle(stack, world):
    by_email = [row["name"] for row in listed(stack.auth, search=world.tag, ordering="email")]
    assert by_email == [world.bob.name, world.alice.name]
    for ordering in ("email", "-email", "phone", "comment"):
        response = httpx.get(USERS, params={"search": world.tag, "ordering": ordering},
                             headers=world.alice.auth, timeout=30)  # fmt: skip
        assert response.status_code == 400, ordering
        # A refusal naming only what she may order by: it tells nothing of anyone's email.
        (message,) = response.json()["ordering"]
        assert message.split("Allowed: ")[1].startswith("name, date_joined ("), message
