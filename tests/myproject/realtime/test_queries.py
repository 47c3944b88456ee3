"""
Live queries (myproject/realtime/queries.py): the REST list's own query strings, validated the
same way, matching exactly the rows that list includes (a property test on MariaDB, `search`
and decimals included), and the per-row frames a subscription receives for every write path.
"""

import uuid
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import Category, Item
from catalog.serializers import ItemSerializer
from catalog.services import items
from myproject.realtime.collation import contains, equal
from myproject.realtime.queries import InvalidFilter, compile_query
from tests.conftest import client_for
from tests.factories import CategoryFactory, ItemFactory, StaffFactory, UserFactory, token_for
from tests.ws import open_socket, quiet, receive, subscribe

# --- the same validation as the REST list ------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    ["price_min=abc", "category=not-a-uuid", "search=" + "+".join("t" * 11)],
)
def test_an_invalid_filter_gets_the_rest_lists_400_detail(anon, query):
    response = anon.get(f"/catalog/items/?{query}")
    assert response.status_code == 400
    with pytest.raises(InvalidFilter) as invalid:
        compile_query("item", query, AnonymousUser())
    assert invalid.value.detail == response.json()


# --- the same rows as the REST list (property test, on MariaDB) ------------------------------

# Letters the collation folds (case, accents, full width), digits, separators.
ALPHABET = "abcXYZ019 -_.éÉèàÀüÜöçñÇＡａ"
words = st.text(alphabet=ALPHABET, min_size=1, max_size=12)
terms = st.text(alphabet=ALPHABET.replace(" ", ""), min_size=1, max_size=4)
prices = st.decimals(min_value=0, max_value=999, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def catalogs(draw) -> list[dict]:
    return draw(
        st.lists(
            st.fixed_dictionaries({
                "name": words, "sku_stem": words, "price": prices,
                "stock": st.integers(0, 3), "enable": st.booleans(), "category": st.integers(0, 2),
            }),
            min_size=1, max_size=8,
        )
    )  # fmt: skip


@st.composite
def item_filters(draw) -> str:
    params = {}
    if draw(st.booleans()):
        params["category"] = draw(st.integers(0, 3))  # 3: a category with no items
    if draw(st.booleans()):
        params["enable"] = draw(st.sampled_from(["true", "false", "True", "1", "0"]))
    for name in ("price_min", "price_max"):
        if draw(st.booleans()):
            params[name] = str(draw(st.decimals(min_value=0, max_value=1000, places=3)))
    if draw(st.booleans()):
        params["in_stock"] = draw(st.sampled_from(["true", "false"]))
    if draw(st.booleans()):
        params["search"] = " ".join(draw(st.lists(terms, min_size=1, max_size=3)))
    if draw(st.booleans()):
        params["ordering"] = "-price"  # ignored by both
    return params


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(catalog=catalogs(), filters=st.lists(item_filters(), min_size=4, max_size=4))
def test_a_row_matches_exactly_when_the_rest_list_includes_it(catalog, filters):
    Item.objects.all().delete()
    Category.objects.all().delete()
    groups = [CategoryFactory() for _ in range(4)]
    rows = {}
    for n, spec in enumerate(catalog):
        item = Item.objects.create(
            sku=f"{spec['sku_stem']}{n}", name=spec["name"], price=spec["price"],
            stock=spec["stock"], enable=spec["enable"], category=groups[spec["category"]],
        )  # fmt: skip
        rows[str(item.uuid)] = ItemSerializer(item).data
    api = client_for(StaffFactory())
    for params in filters:
        if "category" in params:
            params = {**params, "category": str(groups[params["category"]].uuid)}
        text = urlencode(params)
        response = api.get(f"/catalog/items/?{text}&page_size=1000")
        assert response.status_code == 200, response.content
        listed = {row["uuid"] for row in response.json()["results"]}
        query = compile_query("item", text, AnonymousUser())
        matched = {uuid_ for uuid_, row in rows.items() if query.matches(dict(row))}
        assert matched == listed, text


@pytest.mark.django_db
@settings(max_examples=100, deadline=None)
@given(text=words, part=terms)
def test_text_compares_as_mariadb_does(text, part):
    from django.db import connection

    pattern = f"%{connection.ops.prep_for_like_query(part)}%"  # as Django's icontains
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s COLLATE utf8mb4_unicode_ci LIKE %s, %s COLLATE utf8mb4_unicode_ci = %s",
            [text, pattern, text, part],
        )
        like, same = cursor.fetchone()
    assert contains(text, part) == bool(like)
    assert equal(text, part) == bool(same)


# --- subscriptions ------------------------------------------------------------------------------

transactional = pytest.mark.django_db(transaction=True)


async def row(socket) -> dict:
    """The next frame of a subscription, past the topic's own frames."""
    while True:
        frame = await receive(socket)
        if "subscription" in frame:
            return frame


def item_row(category, sku: str, **fields) -> dict:
    return {"sku": sku, "name": sku, "price": "5.00", "stock": 1, "category": category, **fields}


@transactional
async def test_a_subscription_hears_what_each_write_did_to_its_list():
    a, b = await sync_to_async(CategoryFactory)(), await sync_to_async(CategoryFactory)()
    api = await sync_to_async(client_for)(await sync_to_async(StaffFactory)())
    socket = await open_socket("/catalog/ws/")
    subscribed = await subscribe(socket, "cheap-a", "item", f"category={a.uuid}&price_max=10")
    assert subscribed["type"] == "subscribed"
    assert (subscribed["id"], subscribed["topic"], subscribed["recovered"]) == (
        "cheap-a", "catalog", None
    )  # fmt: skip

    async def call(method: str, path: str, body=None):
        response = await sync_to_async(getattr(api, method))(path, body, format="json")
        assert response.status_code < 300, response.content
        return response.json() if response.content else None

    created = await call("post", "/catalog/items/", item_row(str(a.uuid), "Q-1"))
    await call("post", "/catalog/items/", item_row(str(b.uuid), "Q-2"))  # not in the list
    await call("patch", f"/catalog/items/{created['uuid']}/", {"stock": 7})
    await call("patch", f"/catalog/items/{created['uuid']}/", {"price": "20.00"})
    await call("patch", f"/catalog/items/{created['uuid']}/", {"price": "1.00"})
    await call("delete", f"/catalog/items/{created['uuid']}/")

    frames = [await receive(socket) for _ in range(11)]
    own = [f for f in frames if f["type"].startswith("item.") and "subscription" in f]
    assert [f["type"] for f in own] == [
        "item.created", "item.updated", "item.left", "item.entered", "item.deleted",
    ]  # fmt: skip
    assert all(f["subscription"] == "cheap-a" for f in own)
    assert own[1]["data"]["stock"] == 7
    assert own[-1]["data"] == {"uuid": created["uuid"]}
    # Each carries its topic frame's position: the frame just before it on this socket.
    for frame in own:
        topic_frame = frames[frames.index(frame) - 1]
        assert (frame["epoch"], frame["seq"]) == (topic_frame["epoch"], topic_frame["seq"])
    assert await quiet(socket, 0.3)
    await socket.disconnect()


@transactional
async def test_a_bulk_write_gives_frames_for_its_matching_rows_only():
    a = await sync_to_async(CategoryFactory)()
    rows = [await sync_to_async(ItemFactory)(category=a, stock=n % 2, sku=f"BULK-{n}")
            for n in range(6)]  # fmt: skip
    socket = await open_socket("/catalog/ws/")
    await subscribe(socket, "out", "item", f"category={a.uuid}&in_stock=false")
    changes = [(row, {"stock": 0}) for row in rows]  # 3 stay out of stock, 3 run out
    await sync_to_async(items.bulk_update)(changes)
    topic = await receive(socket)
    assert topic["type"] == "item.bulk_updated"
    frames = [await receive(socket) for _ in range(6)]
    assert sorted(f["type"] for f in frames) == ["item.entered"] * 3 + ["item.updated"] * 3
    assert {(f["epoch"], f["seq"]) for f in frames} == {(topic["epoch"], topic["seq"])}
    await sync_to_async(items.bulk_update)([(row, {"name": "renamed"}) for row in rows[:1]])
    await receive(socket)  # the topic frame; its one row is in the list: one frame
    assert (await receive(socket))["type"] == "item.updated"
    assert await quiet(socket, 0.3)
    await socket.disconnect()


@transactional
async def test_since_replays_the_missed_matching_frames():
    a = await sync_to_async(CategoryFactory)()
    socket = await open_socket("/catalog/ws/")
    first = await subscribe(socket, "a", "item", f"category={a.uuid}")
    await socket.disconnect()
    item = await sync_to_async(ItemFactory)(category=a)
    await sync_to_async(items.update)(item, {"stock": 4})  # matches
    other = await sync_to_async(ItemFactory)()
    await sync_to_async(items.update)(other, {"stock": 4})  # does not
    socket = await open_socket("/catalog/ws/")
    since = f"{first['epoch']}:{first['seq']}"
    again = await subscribe(socket, "a", "item", f"category={a.uuid}", since=since)
    assert (again["type"], again["seq"], again["recovered"]) == ("subscribed", first["seq"], True)
    replayed = await row(socket)
    assert (replayed["type"], replayed["data"]["stock"]) == ("item.updated", 4)
    with pytest.raises(TimeoutError):
        await row(socket)  # nothing more for this subscription
    await socket.disconnect()


@transactional
async def test_a_user_subscription_delivers_what_its_reader_may_read():
    reader = await sync_to_async(UserFactory)()
    staff = await sync_to_async(StaffFactory)()
    plain = await open_socket("/catalog/ws/", await sync_to_async(token_for)(reader))
    full = await open_socket("/catalog/ws/", await sync_to_async(token_for)(staff))
    for socket in (plain, full):
        assert (await subscribe(socket, "u", "user", "enable=true"))["topic"] == "users"
    api = await sync_to_async(client_for)(staff)
    name = f"u{uuid.uuid4().hex[:6]}"
    await sync_to_async(api.post)(
        "/identity/users/", {"name": name, "email": f"{name}@example.com", "phone": "+14155550123"},
        format="json",
    )  # fmt: skip
    seen_by_staff = await receive(full)
    seen_by_reader = await receive(plain)
    assert seen_by_staff["type"] == seen_by_reader["type"] == "user.created"
    assert seen_by_staff["data"]["email"] == f"{name}@example.com"
    assert set(seen_by_reader["data"]) == {"uuid", "name", "enable", "is_staff", "date_joined"}
    for socket in (plain, full):
        await socket.disconnect()


@transactional
async def test_every_write_path_reaches_a_subscription(tmp_path):
    """The admin, `import_catalog` and `adjust_stock` write through the same service, so a
    live query sees their rows too."""
    import io

    from django.core.management import call_command
    from django.test import Client

    category = await sync_to_async(CategoryFactory)(slug="paths")
    socket = await open_socket("/catalog/ws/")
    await subscribe(socket, "q", "item", f"category={category.uuid}&in_stock=true")

    async def row_frames(count: int) -> list[str]:
        frames = []
        while len(frames) < count:
            frame = await receive(socket, timeout=5)
            if "subscription" in frame:
                frames.append(f"{frame['type']} {frame['data'].get('sku', '')}")
        return frames

    path = tmp_path / "items.csv"
    path.write_text("sku,name,price,stock,category\nIMP-1,a,1.00,3,paths\nIMP-2,b,1.00,0,paths\n")
    await sync_to_async(call_command)("import_catalog", str(path), stdout=io.StringIO())
    assert await row_frames(1) == ["item.created IMP-1"]  # IMP-2 is not in stock

    item = await sync_to_async(Item.objects.get)(sku="IMP-2")
    await sync_to_async(items.adjust_stock)(item, 5)
    assert await row_frames(1) == ["item.entered IMP-2"]

    def admin_edit() -> int:
        staff = StaffFactory(is_superuser=True)
        client = Client()
        client.force_login(staff)
        form = {"sku": "IMP-2", "name": "b", "description": "", "price": "1.00", "stock": "0",
                "category": str(category.uuid), "enable": "on"}  # fmt: skip
        return client.post(f"/admin/catalog/item/{item.uuid}/change/", form).status_code

    assert await sync_to_async(admin_edit)() == 302
    assert await row_frames(1) == ["item.left IMP-2"]
    await socket.disconnect()
