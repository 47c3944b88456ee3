"""The page at `/` itself (no stack, no browser): served fresh, with a strict CSP it obeys."""

import re
from pathlib import Path

from django.contrib.staticfiles import finders


def test_the_page_is_served_with_its_script_and_a_strict_csp(client):
    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<script type="module" src="/static/web/app.js"></script>' in html
    assert '<link rel="stylesheet" href="/static/web/app.css">' in html
    csp = response["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "connect-src 'self' ws://testserver wss://testserver" in csp
    assert "frame-ancestors 'none'" in csp
    # Tokens live in the browser; the page must still never be served from a cache.
    assert "no-store" in response["Cache-Control"]


def test_the_page_has_nothing_inline_that_its_csp_would_block(client):
    html = client.get("/").content.decode()

    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html), "inline style attribute"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"


def test_every_static_file_and_module_import_exists(client):
    html = client.get("/").content.decode()
    referenced = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
    assert referenced
    modules = ["web/app.js"]
    while modules:
        module = modules.pop()
        path = finders.find(module)
        assert path, f"{module} is missing"
        for target in re.findall(r'^import .* from "\./([^"]+)";$', Path(path).read_text(), re.M):
            modules.append(f"web/{target}")
    for name in referenced:
        assert finders.find(name), f"{name} is missing"


def test_only_safe_methods(client):
    assert client.post("/").status_code == 405
    assert client.head("/").status_code == 200
