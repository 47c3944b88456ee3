"""
Pathological input beyond schemathesis' defaults, through nginx, as an anonymous client, a
plain user and (non-superuser) staff, on every REST endpoint: JSON nested 100,000 deep, lone
surrogates (escaped in JSON; raw invalid UTF-8 in bodies, query strings and paths), numbers at
and past their types' limits (2**31, 2**63, 1e400, -0, NaN and Infinity literals, exponents,
4,000-digit decimals), NUL bytes, multi-megabyte strings, in bodies, filters and pagination.
Every answer is one the contract documents, as JSON: never a 5xx.

Found here before the fixes: RecursionError on deep nesting (500); lone surrogates in a bulk
batch (500: the uniqueness lookup ran before validation) and in a login name (500: the per-name
throttle hashed it); `adjust_stock` past 2**31-1 (500: MySQL's out-of-range error); and 503s,
as if the database were down, for a 20 MB string in a unique field or a login name and for a
bulk batch of long texts (statements over MySQL's max_allowed_packet); 503s for a 20 KB path or
200 header lines (nginx passed on what uWSGI could not read); and nginx's own HTML 400s.
"""

import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.stack import NGINX, Account, Stack, from_address, new_account

pytestmark = pytest.mark.stack

DOCUMENTED = {200, 201, 204, 400, 401, 403, 404, 405, 412, 413, 429}
MiB = 1024 * 1024


@dataclass
class World:
    staff: Account
    user: Account
    victim: Account
    category: str
    item: str
    trash: str  # an empty category: bulk deletes are kept to it
    clients: dict[str, list[httpx.Client]]
    sent: int = 0

    def targets(self) -> list[tuple[str, str]]:
        """Every write route, with a real object where the route takes one."""
        user, victim = f"/identity/users/{self.user.uuid}/", f"/identity/users/{self.victim.uuid}/"
        item, category = f"/catalog/items/{self.item}/", f"/catalog/categories/{self.category}/"
        return [
            ("POST", "/identity/token/"),
            *[(m, "/identity/users/") for m in ("POST", "PUT", "PATCH")],
            *[(m, path) for m in ("PUT", "PATCH") for path in (user, victim)],
            *[(m, f"{path}set_password/") for m in ("POST", "PUT") for path in (user, victim)],
            *[(m, path) for m in ("POST", "PUT", "PATCH")
              for path in ("/catalog/items/", "/catalog/categories/")],
            *[(m, path) for m in ("PUT", "PATCH") for path in (item, category)],
            ("POST", f"{item}adjust_stock/"),
        ]  # fmt: skip

    def send(self, role: str, method: str, path: str, body: bytes | None = None,
             query: str = "") -> httpx.Response:  # fmt: skip
        """Send as `role` and check that the answer is documented, JSON, and not a 5xx."""
        self.sent += 1
        clients = self.clients[role]
        headers = {"Content-Type": "application/json"}
        if role != "anonymous":
            headers["Authorization"] = f"Token {getattr(self, role).token}"
        url = f"{NGINX}{path}" + (f"?{query}" if query else "")
        response = clients[self.sent % len(clients)].request(
            method, url, content=body, headers=headers
        )
        what = (role, method, path, query[:80], (body or b"")[:80], response.status_code)
        assert response.status_code in DOCUMENTED, (*what, response.text[:300])
        if response.status_code != 204:
            assert response.headers.get("content-type", "").startswith("application/json"), what
        return response


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    address = "127.0.0.61"
    staff = new_account(stack, "fuzz-staff", address=address, staff=True)
    user = new_account(stack, "fuzz-user", address=address)
    victim = new_account(stack, "fuzz-victim", address=address)
    categories = []
    for _ in range(2):
        tag = uuid.uuid4().hex[:8]
        created = httpx.post(f"{NGINX}/catalog/categories/", headers=staff.auth, timeout=30,
                             json={"name": tag, "slug": f"fuzz-{tag}"})  # fmt: skip
        categories.append(created.json()["uuid"])
    item = httpx.post(f"{NGINX}/catalog/items/", headers=staff.auth, timeout=30,
                      json={"sku": f"FUZZ-{tag}", "name": "fuzz", "price": "1.00", "stock": 5,
                            "category": categories[0]}).json()["uuid"]  # fmt: skip
    # Anonymous requests come from many addresses (the per-address throttle would otherwise
    # answer most of them with a 429), signed-in ones from one address of this file's own.
    clients = {
        "anonymous": [from_address(f"127.0.3.{n}") for n in range(1, 41)],
        "user": [from_address("127.0.0.62")],
    }
    clients["staff"] = clients["user"]
    yield World(staff, user, victim, categories[0], item, categories[1], clients)
    for client in clients["anonymous"] + clients["user"]:
        client.close()
    # Failed logins and throttled requests on purpose: later tests should not inherit them.
    stack.forget_throttles()


ROLES = ["anonymous", "user", "staff"]
SURROGATE = '"\\ud800"'
# Whole bodies that are pathological as such, whatever the endpoint expects.
BODIES = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b"{\"name\": " + b"[" * 40 + b"]" * 40 + b"}",
    f'{{"name": {SURROGATE}, "username": {SURROGATE}, "sku": {SURROGATE}}}'.encode(),
    f'[{{"name": {SURROGATE}, "sku": {SURROGATE}, "email": {SURROGATE}, "slug": "x"}}]'.encode(),
    f'{{{SURROGATE}: 1}}'.encode(),
    b'{"name": "\\udc00\\ud800", "password": "\\udfff", "delta": 1}',
    b'{"name": "\xff\xfe", "username": "\xed\xa0\x80"}',
    b"\xc0\xaf\x80",
    b'{"stock": NaN, "price": Infinity, "delta": -Infinity}',
    b'{"stock": 1' + b"0" * 5000 + b"}",
    b'{"delta": 1e400, "stock": 1e400, "price": 1e400}',
    b'{"username": "a\\u0000b", "password": "\\u0000", "name": "\\u0000"}',
    b"null", b"1", b'"text"', b"[]", b"{}", b"[{}]", b"[null, 1, []]", b"",
]  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
def test_pathological_bodies_on_every_write_route(world, role):
    for method, path in world.targets():
        for body in BODIES:
            world.send(role, method, path, body)


def field_cases(world: World) -> list[tuple[str, str, dict | list]]:
    """Valid bodies with one field at a limit: each must be validated, never crash a query."""
    item = {"sku": f"F-{uuid.uuid4().hex[:8]}", "name": "n", "price": "1.00", "stock": 1,
            "category": world.category}  # fmt: skip
    user = {"name": f"f-{uuid.uuid4().hex[:8]}", "email": f"f-{uuid.uuid4().hex[:8]}@example.com"}
    numbers = [2**31, 2**31 - 1, -(2**31) - 1, 2**63, -(2**63) - 1, 10**30, -0.0, 1e308, 5e-324,
               1.5, "1e400", "-1e400", "1E+10", "1e-5", "-0", "9" * 4000, "0." + "0" * 4000 + "1",
               "NaN", "sNaN", "Infinity", "-Infinity", "0x10", " 1 ", True, [], {}]  # fmt: skip
    strings = ["a\x00b", "\x00", " ", "x" * 5000, "x" * 2 * MiB, "\U0001f600" * 10000, "é" * 70000]
    cases: list[tuple[str, str, dict | list]] = []
    for number in numbers:
        cases += [("POST", "/catalog/items/", {**item, "stock": number}),
                  ("POST", "/catalog/items/", {**item, "price": number}),
                  ("PATCH", f"/catalog/items/{world.item}/", {"price": number}),
                  ("PATCH", "/catalog/items/", [{"uuid": world.item, "stock": number}]),
                  ("POST", f"/catalog/items/{world.item}/adjust_stock/",
                   {"delta": number})]  # fmt: skip
    for text in strings:
        for name in ("sku", "name", "description"):
            cases += [("POST", "/catalog/items/", {**item, name: text}),
                      ("POST", "/catalog/items/", [{**item, name: text}])]  # fmt: skip
        for name in ("name", "email", "phone", "comment"):
            cases += [("POST", "/identity/users/", {**user, name: text}),
                      ("POST", "/identity/users/", [{**user, name: text}]),
                      ("PATCH", f"/identity/users/{world.victim.uuid}/", {name: text})]  # fmt: skip
        cases += [("POST", "/catalog/categories/", {"name": text, "slug": text}),
                  ("POST", f"/identity/users/{world.victim.uuid}/set_password/",
                   {"password": text}),
                  ("POST", "/identity/token/", {"username": text, "password": text})]  # fmt: skip
    return cases


def test_fields_at_and_past_their_limits(world):
    for method, path, body in field_cases(world):
        world.send("staff", method, path, json.dumps(body).encode())
    own = f"/identity/users/{world.user.uuid}/"
    for text in ("\x00", "x" * 2 * MiB):
        world.send("user", "PATCH", own, json.dumps({"comment": text, "name": text}).encode())
        world.send("user", "POST", f"{own}set_password/",
             json.dumps({"password": text, "old_password": text}).encode())  # fmt: skip
        world.send("anonymous", "POST", "/identity/token/",
             json.dumps({"username": text, "password": text}).encode())  # fmt: skip


def test_a_20_mb_string_is_a_400_not_a_database_outage(world):
    huge = "x" * 20 * MiB
    item = {"sku": huge, "name": "n", "price": "1", "stock": 1, "category": world.category}
    for role, method, path, body in [
        ("staff", "POST", "/catalog/items/", item),
        ("staff", "POST", "/catalog/items/", [item]),
        ("staff", "PATCH", f"/identity/users/{world.victim.uuid}/", {"email": huge}),
        ("anonymous", "POST", "/identity/token/", {"username": huge, "password": "x"}),
    ]:
        response = world.send(role, method, path, json.dumps(body).encode())
        assert response.status_code == 400, (method, path, response.text[:300])


def test_a_bulk_batch_of_long_texts_is_written(world):
    # 500 rows of 40,000 characters: 20 MB, within the body limit, but not one statement.
    tag = uuid.uuid4().hex[:8]
    batch = [{"name": f"long-{tag}-{n}", "email": f"long-{tag}-{n}@example.com",
              "comment": "x" * 40_000} for n in range(500)]  # fmt: skip
    response = world.send("staff", "POST", "/identity/users/", json.dumps(batch).encode())
    assert response.status_code == 201, response.text[:300]


def test_stock_cannot_be_adjusted_past_its_column(world):
    patched = world.send("staff", "PATCH", f"/catalog/items/{world.item}/",
                   json.dumps({"stock": 2**31 - 1}).encode())  # fmt: skip
    assert patched.status_code == 200, patched.text
    adjust = f"/catalog/items/{world.item}/adjust_stock/"
    response = world.send("staff", "POST", adjust, b'{"delta": 1}')
    assert response.status_code == 400, response.text
    assert world.send("staff", "POST", adjust, b'{"delta": -5}').json()["stock"] == 2**31 - 6


QUERY_VALUES = ["%00", "a%00b", "%ff", "%ED%A0%80", "%C0%AF", "1e400", "-1e400", "NaN", "-1", "0",
                "-0", "99999999999999999999999999", "1" * 4000, "x" * 8000, "", "%20", "%22%22",
                "true", ",,,", "%25", "_", "\\", "'", "--"]  # fmt: skip
QUERY_NAMES = ["page", "page_size", "search", "ordering", "enable", "is_staff", "category",
               "price_min", "price_max", "in_stock", "slug", "unknown"]  # fmt: skip
LISTS = ["/identity/users/", "/catalog/items/", "/catalog/categories/"]


@pytest.mark.parametrize("role", ROLES)
def test_pathological_query_strings_on_every_list(world, role):
    for path in LISTS:
        for name in QUERY_NAMES:
            for value in QUERY_VALUES:
                world.send(role, "GET", path, query=f"{name}={value}")
    for name in QUERY_NAMES:  # the bulk delete, kept to the fuzz's own category
        for value in QUERY_VALUES:
            world.send(role, "DELETE", "/catalog/items/",
                 query=f"category={world.trash}&{name}={value}")  # fmt: skip


def raw(request: bytes) -> tuple[int, str, bytes]:
    """Send bytes as they are (no client normalises them); the status, content type, body."""
    with socket.create_connection(("127.0.0.1", 8088), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers.get("Content-Type", ""), body


@pytest.mark.parametrize(
    "target",
    [b"/catalog/items/?search=\xff\xfe", b"/catalog/items/?search=\xed\xa0\x80",
     b"/catalog/items/?category=\xc0\xaf&price_min=\xff", b"/catalog/items/\xff\xfe/",
     b"/identity/users/\xed\xa0\x80/", b"/catalog/items/%00/", b"/catalog/items/%ff/",
     b"/catalog/\xff/", b"/identity/users/?search=%00%ff",
     b"/catalog/items/" + b"x" * 20000 + b"/"],
)  # fmt: skip
def test_raw_bytes_in_paths_and_query_strings(world, target):
    staff = f"Authorization: Token {world.staff.token}\r\n".encode()
    for method, headers in [(b"GET", b""), (b"DELETE", staff)]:
        status, content_type, body = raw(
            method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers
            + b"Connection: close\r\n\r\n"
        )  # fmt: skip
        assert status in DOCUMENTED, (target[:60], status, body[:200])
        if status != 204:
            assert content_type.startswith("application/json"), (target[:60], status, content_type)


@pytest.mark.parametrize(
    ("lines", "path"),
    [(200, b"/catalog/items/"), (990, b"/catalog/items/?search=" + b"x" * 7900),
     (20, b"/catalog/items/"), (5000, b"/catalog/items/")],
)  # fmt: skip
def test_many_or_long_header_lines(world, lines, path):
    # nginx must not pass on what uWSGI cannot read (it drops the request: a 502): too many
    # variables, or more than its buffer holds.
    header = b"X-Filler: " + (b"y" * 7000 if lines == 20 else b"z") + b"\r\n"
    status, content_type, body = raw(
        b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header * lines
        + b"Connection: close\r\n\r\n"
    )  # fmt: skip
    assert status in DOCUMENTED, (lines, status, body[:200])
    assert content_type.startswith("application/json"), (lines, status, content_type)


def test_a_raw_invalid_utf8_body(world):
    for body in (b'{"username": "\xff", "password": "x"}', b'{"username": "\xed\xa0\x80"}'):
        request = (b"POST /identity/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   b"Content-Type: application/json\r\nConnection: close\r\n"
                   b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
        status, content_type, _ = raw(request)
        assert status == 400
        assert content_type.startswith("application/json")


# Property-based: random JSON built from the same pathological atoms, to random routes.
ATOMS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
    st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**100, -0.0, "\ud800", "\udfff\ud800", "\x00",
                     "1e400", "NaN", "-0", "x" * 70_000, "9" * 500]),
)  # fmt: skip
KEYS = st.sampled_from(["name", "email", "phone", "comment", "enable", "is_staff", "password",
                        "old_password", "username", "sku", "price", "stock", "category",
                        "description", "slug", "delta", "uuid"]) | st.text(max_size=5)  # fmt: skip
VALUES = st.recursive(
    ATOMS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=20,
)
FUZZ_BODIES = st.one_of(
    VALUES.map(lambda v: json.dumps(v).encode()),
    st.lists(st.dictionaries(KEYS, VALUES, max_size=6), max_size=4).map(
        lambda v: json.dumps(v).encode()
    ),
    st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),
    st.binary(max_size=200),
)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(data=st.data())
def test_random_bodies_on_random_routes(world, data):
    role = data.draw(st.sampled_from(ROLES))
    method, path = data.draw(st.sampled_from(world.targets()))
    world.send(role, method, path, data.draw(FUZZ_BODIES))
