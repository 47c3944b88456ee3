"""
The web client in a real browser: headless Chromium (the Debian package, driven by
Playwright) against the split stack through nginx, so REST (uWSGI) and the check channels
(daphne) are used together the way a person's browser uses them.

Screenshots of the key states go to var/test-artifacts/web/. Every wait is explicit (Playwright's
`expect` with a timeout); the only sleep lets daphne run a few seconds before it is restarted.
"""

import json
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, WebSocketRoute, expect, sync_playwright

from tests.stack import ADMIN_NAME, ADMIN_PASSWORD, NGINX, ROOT, login, new_account

pytestmark = pytest.mark.stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "var" / "test-artifacts" / "web"
# The page's sessionStorage entry (web/static/web/session.js).
SESSION_KEY = "myproject.session"
# Milliseconds for anything live: a check answer, an event, a refetch.
TIMEOUT = 15_000
PASSWORD = "web-Client-secret-42"

OpenPage = Callable[..., Page]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed (`make test` installs it: scripts/browser-deps.sh)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        # The system Chromium: Playwright's own browser downloads are never used.
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser, stack) -> Iterator[OpenPage]:
    """Opens the page in a fresh browser context (a separate browser profile, as another
    person's browser would be), signed in as the stack's admin unless `signed_in=False`.
    Fails the test on any uncaught script error or Content-Security-Policy violation."""
    contexts, problems = [], []

    def open_(
        signed_in: bool = True,
        token: str | None = None,
        name: str = ADMIN_NAME,
        prepare: Callable[[Page], None] | None = None,
    ) -> Page:
        context = browser.new_context(base_url=NGINX, viewport={"width": 1400, "height": 900})
        contexts.append(context)
        if signed_in:
            # A token made beforehand rather than the login form: logins are throttled.
            entry = json.dumps({"token": token or stack.token, "name": name})
            context.add_init_script(
                f"sessionStorage.setItem({json.dumps(SESSION_KEY)}, {json.dumps(entry)})"
            )
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on("console", lambda message: csp_violation(message.text, problems))
        if prepare is not None:
            prepare(page)
        page.goto("/")
        if signed_in:
            expect_live(page)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not problems


def csp_violation(text: str, problems: list[str]) -> None:
    # Failed requests (a 412, a socket refused while daphne restarts) are logged as console
    # errors too, and are expected here; a blocked script or style never is.
    if "Content Security Policy" in text:
        problems.append(f"CSP: {text}")


def expect_live(page: Page, timeout: float = TIMEOUT) -> None:
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=timeout)
    expect(page.locator("#conn-text")).to_have_text("live")


def shot(page: Page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def search(page: Page, table: str, text: str) -> None:
    """Type into a table's search box and wait until the table shows the result."""
    box = page.locator(f"#{table}-search")
    box.fill(text)
    box.press("Enter")  # search now rather than after the typing pause
    expect(page.locator(f"#{table}")).not_to_have_attribute("aria-busy", "true", timeout=TIMEOUT)


def row(page: Page, table: str, text: str) -> Locator:
    return page.locator(f"#{table} tbody tr", has_text=text)


def api(stack, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, f"{NGINX}{path}", headers=stack.auth, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def category(stack) -> dict:
    slug = unique("web")
    response = api(
        stack, "POST", "/catalog/categories/", json={"name": f"Web {slug}", "slug": slug}
    )
    assert response.status_code == 201, response.text
    return response.json()


def create_item(stack, category: dict, sku: str, **fields: object) -> dict:
    body = {
        "sku": sku,
        "name": f"Item {sku}",
        "price": "10.00",
        "stock": 5,
        "category": category["uuid"],
        **fields,
    }
    response = api(stack, "POST", "/catalog/items/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_log_in_through_the_form_and_log_out(open_page, stack, category):
    # Something to look at in the screenshot: a few items, written in one bulk request.
    run = unique("demo")
    body = [
        {"sku": f"{run}-{n}", "name": f"Demo item {n}", "price": f"{n * 3}.50", "stock": n,
         "category": category["uuid"]}
        for n in range(1, 6)
    ]  # fmt: skip
    assert api(stack, "POST", "/catalog/items/", json=body).status_code == 201
    page = open_page(signed_in=False)
    login = page.locator("#login")
    expect(login).to_be_visible()
    expect(page.locator("#conn-text")).to_have_text("offline")

    login.get_by_label("Name").fill(ADMIN_NAME)
    login.get_by_label("Password").fill(ADMIN_PASSWORD)
    login.get_by_role("button", name="Log in").click()

    expect_live(page)
    expect(page.locator("#who-name")).to_have_text(ADMIN_NAME)
    # Other tests of the session may have filled page 1: look the admin up.
    search(page, "users", ADMIN_NAME)
    expect(row(page, "users", f"{ADMIN_NAME}@example.com")).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("#items .page-info")).to_contain_text("in all", timeout=TIMEOUT)
    shot(page, "logged-in")
    token = json.loads(page.evaluate(f"sessionStorage.getItem({json.dumps(SESSION_KEY)})"))["token"]

    page.get_by_role("button", name="Log out").click()

    expect(login).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()
    expect(page.locator("#conn-text")).to_have_text("offline")
    assert page.evaluate(f"sessionStorage.getItem({json.dumps(SESSION_KEY)})") is None
    revoked = httpx.get(
        f"{NGINX}/identity/users/", headers={"Authorization": f"Token {token}"}, timeout=30
    )
    assert revoked.status_code == 401, "logging out revokes the token on the server"


def test_a_taken_email_is_shown_inline_before_anything_is_submitted(open_page):
    page = open_page()
    sent = []
    page.on("request", lambda request: request.method == "POST" and sent.append(request.url))
    page.locator("#users").get_by_role("button", name="New user").click()
    form = page.locator("#user-form")
    expect(form).to_be_visible()
    form.get_by_label("Name").fill(unique("web"))
    email = form.get_by_label("Email")

    email.press_sequentially(f"{ADMIN_NAME}@example.com", delay=15)  # typed, key by key

    error = form.locator("#user-email-error")
    expect(error).to_have_text("A user with that email already exists.", timeout=TIMEOUT)
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_attribute("aria-describedby", re.compile(r"\buser-email-error\b"))
    shot(page, "inline-error")

    form.get_by_role("button", name="Save").click()

    expect(form.locator(".form-error")).to_have_text("Please fix the highlighted fields first.")
    expect(email).to_be_focused()
    expect(form).to_be_visible()
    assert sent == [], "nothing is submitted while a field is known to be invalid"

    # A free address clears the error as soon as it is typed.
    email.fill(f"{unique('free')}@example.com")
    expect(error).to_be_hidden()
    expect(email).not_to_have_attribute("aria-invalid", "true")
    form.get_by_label("Phone").press_sequentially("12345", delay=15)
    expect(form.locator("#user-phone-error")).to_contain_text("E.164", timeout=TIMEOUT)
    assert sent == []


def test_a_create_in_one_browser_appears_in_another_without_reload(open_page, category):
    sku = unique("live")
    a, b = open_page(), open_page()
    search(b, "items", sku)
    expect(b.locator("#items .empty")).to_be_visible()
    b.evaluate("window.notReloaded = true")

    a.locator("#items").get_by_role("button", name="New item").click()
    form = a.locator("#item-form")
    form.get_by_label("SKU").fill(sku)
    form.get_by_label("Name").fill("Made in browser A")
    form.get_by_label("Price").fill("12.50")
    form.get_by_label("Stock").fill("3")
    form.get_by_label("Category").select_option(label=category["name"])
    form.get_by_role("button", name="Save").click()
    expect(form).to_be_hidden(timeout=TIMEOUT)
    expect(a.locator("#status")).to_have_text(f"Item {sku} created.")

    arrived = row(b, "items", sku)
    expect(arrived).to_be_visible(timeout=TIMEOUT)
    expect(arrived.locator('[data-field="name"]')).to_have_text("Made in browser A")
    expect(arrived.locator('[data-field="category"]')).to_have_text(category["name"])
    expect(arrived.locator('[data-field="price"]')).to_have_text("12.50")
    assert b.evaluate("window.notReloaded") is True
    shot(b, "live-create-from-another-browser")


def test_changes_made_through_the_rest_api_appear_live(open_page, stack):
    name = unique("rest")
    page = open_page()
    search(page, "users", name)
    expect(page.locator("#users .empty")).to_be_visible()

    body = {"name": name, "email": f"{name}@example.com", "password": PASSWORD}
    created = api(stack, "POST", "/identity/users/", json=body)
    assert created.status_code == 201, created.text
    user = created.json()
    arrived = row(page, "users", name)
    expect(arrived).to_be_visible(timeout=TIMEOUT)

    # A single update: the row is replaced in place.
    updated = api(
        stack, "PATCH", f"/identity/users/{user['uuid']}/", json={"phone": "+14155550123"}
    )
    assert updated.status_code == 200, updated.text
    expect(arrived.locator('[data-field="phone"]')).to_have_text("+14155550123", timeout=TIMEOUT)
    shot(page, "live-update")

    # A bulk update's event carries only uuids: the page refetches.
    body = [{"uuid": user["uuid"], "phone": "+14155550124", "enable": False}]
    bulk = api(stack, "PATCH", "/identity/users/", json=body)
    assert bulk.status_code == 200, bulk.text
    expect(arrived.locator('[data-field="phone"]')).to_have_text("+14155550124", timeout=TIMEOUT)
    expect(arrived.locator('[data-field="enable"]')).to_have_text("no")

    deleted = api(stack, "DELETE", f"/identity/users/{user['uuid']}/")
    assert deleted.status_code == 204, deleted.text
    expect(arrived).to_have_count(0, timeout=TIMEOUT)
    expect(page.locator("#users .empty")).to_be_visible()


def test_the_page_reconnects_after_a_daphne_restart(open_page, stack, category):
    sku = unique("back")
    page = open_page()
    search(page, "items", sku)
    conn = page.locator("#conn")

    with ThreadPoolExecutor(max_workers=1) as pool:
        restart = pool.submit(stack.script, "restart-daphne")
        expect(conn).to_have_attribute("data-state", "reconnecting", timeout=30_000)
        expect(page.locator("#conn-text")).to_have_text("reconnecting…")
        shot(page, "reconnecting")
        restart.result(timeout=120)
    expect_live(page, timeout=60_000)

    # Events flow again on the new sockets...
    create_item(stack, category, sku, name="After the restart")
    expect(row(page, "items", sku)).to_be_visible(timeout=TIMEOUT)
    shot(page, "reconnected")
    # ...and so do the live checks.
    page.locator("#items").get_by_role("button", name="New item").click()
    form = page.locator("#item-form")
    form.get_by_label("SKU").press_sequentially(sku, delay=15)
    expect(form.locator("#item-sku-error")).to_contain_text("already exists", timeout=TIMEOUT)
    form.get_by_role("button", name="Cancel").click()
    expect(form).to_be_hidden()


def test_the_page_resumes_where_it_left_off_and_reads_nothing_again(open_page, stack, category):
    """While the page's catalog socket is away, an item on screen changes: on reconnecting the
    page resumes from its position, the server replays the change, and the row shows it
    without the page reading the list again."""
    sku = unique("resume")
    item = create_item(stack, category, sku, name="Before")
    hold, held, routes, servers = [False], [], [], []

    def route(socket: WebSocketRoute) -> None:
        routes.append(socket)
        if hold[0]:
            held.append(socket)
        else:
            servers.append(socket.connect_to_server())

    page = open_page(prepare=lambda page: page.route_web_socket(re.compile(r"/catalog/ws/"), route))
    search(page, "items", sku)
    expect(row(page, "items", sku)).to_contain_text("Before", timeout=TIMEOUT)
    reads = []
    page.on("request", lambda request: "/catalog/items/" in request.url and reads.append(request))

    hold[0] = True
    servers[-1].close()
    routes[-1].close(code=4503, reason="restarting")  # as a daphne restart does
    expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting", timeout=TIMEOUT)
    changed = api(stack, "PATCH", f"/catalog/items/{item['uuid']}/", json={"name": "After"})
    assert changed.status_code == 200, changed.text
    wait_until(page, lambda: bool(held))
    assert "since=" in held[0].url, "the page reconnected without its position"
    hold[0] = False
    held[0].connect_to_server()

    expect_live(page)
    expect(row(page, "items", sku)).to_contain_text("After", timeout=TIMEOUT)
    assert [r.url for r in reads if r.method == "GET"] == [], "the page read the list again"


def test_the_items_table_follows_its_filter_live(open_page, stack, category):
    """The items table shows one category's items under 10 and follows exactly that query: a
    row that enters the shown set appears in place, one that leaves it disappears, and the
    page never reads the list again."""
    tag = unique("live")
    cheap = create_item(stack, category, f"{tag}-a", price="5.00")
    dear = create_item(stack, category, f"{tag}-b", price="50.00")
    page = open_page()
    filters = page.locator("#items .filters")
    expect(filters.get_by_label("Category")).to_contain_text(category["name"], timeout=TIMEOUT)
    filters.get_by_label("Category").select_option(category["uuid"])
    filters.get_by_label("Price to").fill("10")
    search(page, "items", tag)
    expect(row(page, "items", cheap["sku"])).to_be_visible(timeout=TIMEOUT)
    expect(row(page, "items", dear["sku"])).to_have_count(0)
    page.wait_for_timeout(500)  # the subscription is made once the list is read
    reads = []
    page.on(
        "request", lambda r: r.method == "GET" and "/catalog/items/" in r.url and reads.append(r)
    )

    entering = api(stack, "PATCH", f"/catalog/items/{dear['uuid']}/", json={"price": "7.00"})
    assert entering.status_code == 200, entering.text
    expect(row(page, "items", dear["sku"])).to_be_visible(timeout=TIMEOUT)
    expect(row(page, "items", dear["sku"])).to_have_class(re.compile("flash"))
    shot(page, "live-query-entered")
    leaving = api(stack, "PATCH", f"/catalog/items/{cheap['uuid']}/", json={"price": "20.00"})
    assert leaving.status_code == 200, leaving.text
    expect(row(page, "items", cheap["sku"])).to_have_count(0, timeout=TIMEOUT)
    created = create_item(stack, category, f"{tag}-c", price="1.00")
    expect(row(page, "items", created["sku"])).to_be_visible(timeout=TIMEOUT)
    elsewhere = create_item(stack, category, f"{tag}-d", price="99.00")  # not in the list
    page.wait_for_timeout(1000)
    expect(row(page, "items", elsewhere["sku"])).to_have_count(0)
    # Rows are in the list's order (by SKU): -b before -c.
    skus = page.locator("#items tbody tr td[data-field='sku']").all_text_contents()
    assert skus == [dear["sku"], created["sku"]]
    assert "GET" not in reads, "the page read the list again"


def wait_until(page: Page, condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait, letting Playwright handle the page's events meanwhile (a plain sleep would not)."""
    waited = 0
    while not condition():
        assert waited < timeout, "timed out"
        page.wait_for_timeout(50)
        waited += 50


def test_a_stale_edit_is_refused_with_a_clear_message(open_page, stack, category):
    sku = unique("stale")
    item = create_item(stack, category, sku, name="Original name", price="20.00")
    page = open_page()
    search(page, "items", sku)
    listed = row(page, "items", sku)
    expect(listed).to_be_visible(timeout=TIMEOUT)

    listed.get_by_role("button", name=f"Edit {sku}").click()
    form = page.locator("#item-form")
    expect(form.get_by_label("Name")).to_have_value("Original name", timeout=TIMEOUT)
    # Someone else changes the item while the form is open (the row follows live).
    changed = api(
        stack, "PATCH", f"/catalog/items/{item['uuid']}/", json={"name": "Changed meanwhile"}
    )
    assert changed.status_code == 200, changed.text
    expect(listed.locator('[data-field="name"]')).to_have_text("Changed meanwhile", timeout=TIMEOUT)

    form.get_by_label("Price").fill("7.77")
    form.get_by_role("button", name="Save").click()

    alert = form.locator(".form-error")
    expect(alert).to_contain_text("changed this record after you opened it", timeout=TIMEOUT)
    expect(alert).to_contain_text("not saved")
    expect(form).to_be_visible()
    shot(page, "stale-edit-refused")
    current = api(stack, "GET", f"/catalog/items/{item['uuid']}/").json()
    assert (current["name"], current["price"]) == ("Changed meanwhile", "20.00")

    # Starting again from the latest version saves.
    form.get_by_role("button", name="Load the latest version").click()
    expect(form.get_by_label("Name")).to_have_value("Changed meanwhile", timeout=TIMEOUT)
    expect(alert).to_be_hidden()
    form.get_by_label("Price").fill("7.77")
    form.get_by_role("button", name="Save").click()
    expect(form).to_be_hidden(timeout=TIMEOUT)
    expect(listed.locator('[data-field="price"]')).to_have_text("7.77", timeout=TIMEOUT)


def test_a_revoked_session_goes_back_to_the_login_form(open_page, stack):
    name = unique("plain")
    body = {"name": name, "email": f"{name}@example.com", "password": PASSWORD}
    created = api(stack, "POST", "/identity/users/", json=body)
    assert created.status_code == 201, created.text
    page = open_page(token=login(name, PASSWORD, address="127.0.0.7"), name=name)
    search(page, "users", name)

    # Not staff: no creating, and editing only itself.
    expect(page.get_by_role("button", name="New user")).to_be_hidden()
    expect(page.get_by_role("button", name="New item")).to_be_hidden()
    expect(row(page, "users", name).get_by_role("button", name=f"Edit {name}")).to_be_visible()

    # Disabling the user closes its sockets with 4401: the page asks for a new login.
    disabled = api(
        stack, "PATCH", f"/identity/users/{created.json()['uuid']}/", json={"enable": False}
    )
    assert disabled.status_code == 200, disabled.text

    expect(page.locator("#login")).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("#login-error")).to_contain_text("Your session was ended")
    expect(page.locator("#conn-text")).to_have_text("offline")
    expect(page.locator("#app")).to_be_hidden()
    shot(page, "session-revoked")


def test_two_people_see_each_other_and_the_row_the_other_is_editing(open_page, stack, category):
    """Presence and signals (the check channel's group "web"), in two browser contexts."""
    ann = new_account(stack, "ann", address="127.0.0.71", staff=True)
    admin = open_page()
    theirs = open_page(token=ann.token, name=ann.name)
    expect(admin.locator("#company-names")).to_have_text(ann.name, timeout=TIMEOUT)
    expect(theirs.locator("#company-names")).to_contain_text(ADMIN_NAME, timeout=TIMEOUT)

    sku = unique("EDIT")
    create_item(stack, category, sku)
    for page in (admin, theirs):
        search(page, "items", sku)
    theirs.get_by_role("button", name=f"Edit {sku}").click()
    expect(theirs.locator("#item-dialog")).to_be_visible()
    marker = row(admin, "items", sku).locator(".editing")
    expect(marker).to_have_text(f"{ann.name} editing", timeout=TIMEOUT)
    shot(admin, "someone-else-editing")
    # Someone who comes later learns it too: the editor says it again on their arrival.
    late = open_page()
    search(late, "items", sku)
    expect(row(late, "items", sku).locator(".editing")).to_have_text(
        f"{ann.name} editing", timeout=TIMEOUT
    )

    theirs.locator("#item-form [data-cancel]").click()
    expect(marker).to_have_count(0, timeout=TIMEOUT)
    theirs.context.close()  # gone: closed the browser
    expect(admin.locator("#company")).to_be_hidden(timeout=TIMEOUT)
