"""
Password guessing, through nginx, from addresses other than 127.0.0.1: failed logins on
`POST /identity/token/` and on the admin's login form share one limit per client address
(10/min); successful logins do not count, so below the limit the right password always works;
nobody can lock a victim out by failing on its name from many addresses; and nginx's own
`limit_req` caps login attempts per address, 127.0.0.1 exempt. Every refusal is a JSON 429.
"""

import httpx
import pytest

from tests.stack import NGINX, Stack, from_address, new_account

pytestmark = pytest.mark.stack

TOKEN = f"{NGINX}/identity/token/"
ADMIN_LOGIN = f"{NGINX}/admin/login/"
ACCOUNTS = "127.0.0.55"


def token_login(client: httpx.Client, name: str, password: str) -> httpx.Response:
    return client.post(TOKEN, json={"username": name, "password": password})


def admin_login(client: httpx.Client, name: str, password: str) -> httpx.Response:
    if "csrftoken" not in client.cookies:
        client.get(ADMIN_LOGIN)
    return client.post(ADMIN_LOGIN, data={
        "username": name, "password": password, "next": "/admin/",
        "csrfmiddlewaretoken": client.cookies["csrftoken"],
    })  # fmt: skip


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    assert 0 < int(response.headers["retry-after"]) <= 60
    assert "detail" in response.json()


def test_the_right_password_works_below_the_limit_and_not_above(stack: Stack):
    address = "127.0.0.53"
    account = new_account(stack, "mistyper", address=address)  # a first success
    with from_address(address) as client:
        for _ in range(2):  # more successes: none counts
            assert token_login(client, account.name, account.password).status_code == 200
        for _ in range(9):
            assert token_login(client, account.name, "mistyped").status_code == 400
        assert token_login(client, account.name, account.password).status_code == 200
        assert token_login(client, account.name, "mistyped").status_code == 400  # the 10th
        assert_throttled(token_login(client, account.name, account.password))


def test_the_admin_form_and_the_token_share_one_limit(stack: Stack):
    account = new_account(stack, "shared", address=ACCOUNTS, staff=True)  # the admin is for staff
    with from_address("127.0.0.54") as client:
        for _ in range(5):
            form = admin_login(client, account.name, "wrong")
            assert form.status_code == 200  # the form again, with its error
            assert "sessionid" not in client.cookies
        for _ in range(5):
            assert token_login(client, account.name, "wrong").status_code == 400
        assert_throttled(token_login(client, account.name, account.password))
        assert_throttled(admin_login(client, account.name, account.password))
        assert "sessionid" not in client.cookies
        assert client.get(ADMIN_LOGIN).status_code == 200  # showing the form costs nothing
    with from_address("127.0.0.58") as client:  # another address is not concerned
        assert admin_login(client, account.name, account.password).status_code == 302


def test_failures_on_a_name_from_many_addresses_do_not_lock_its_owner_out(stack: Stack):
    victim = new_account(stack, "victim", address=ACCOUNTS)
    for n in range(1, 16):
        with from_address(f"127.0.2.{n}") as client:
            assert token_login(client, victim.name, "guess").status_code == 400
    with from_address("127.0.2.100") as client:
        assert token_login(client, victim.name, victim.password).status_code == 200


@pytest.mark.parametrize(("url", "address"), [(TOKEN, "127.0.0.56"), (ADMIN_LOGIN, "127.0.0.57")])
def test_nginx_caps_login_attempts_per_address_except_127_0_0_1(stack, url, address):
    # Bodies that fail before any password is checked: Django's limit never sees them.
    with from_address(address) as client:
        statuses = [client.post(url, json={}).status_code for _ in range(40)]
        assert 429 in statuses, statuses
        assert statuses[0] != 429
        refused = client.post(url, json={})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/json"
        assert "login" in refused.json()["detail"]
        assert client.get(ADMIN_LOGIN).status_code == 200  # only POSTs are limited
    with from_address("127.0.0.1") as client:
        answers = [client.post(url, json={}) for _ in range(40)]
        assert not [r.text for r in answers if r.status_code == 429 and "login" in r.text]
