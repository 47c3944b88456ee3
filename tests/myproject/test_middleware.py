"""
Every answer is JSON, also where Django answers itself (myproject/middleware.py): an unknown URL
under the debug settings `make run` uses, a method a view does not take. And a body over the
limit is refused before it is read.
"""

import pytest
from django.test import Client
from django.urls import clear_url_caches


@pytest.fixture
def debug(settings):
    """The development settings of `make run` (Django's HTML debug page for a 404)."""
    settings.DEBUG = True
    yield
    clear_url_caches()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/nope/", "/identity/nope/", "/catalog/items/not-a-uuid/x/"])
def test_an_unknown_url_is_a_json_404_even_in_debug(debug, path):
    response = Client().get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_a_post_to_a_probe_is_a_json_405_not_a_csrf_403(path):
    client = Client(enforce_csrf_checks=True)
    response = client.post(path)
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "POST" not allowed.'}
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/identity/token/"), ("put", "/identity/token/"), ("get", "/identity/ws-ticket/")],
)
def test_a_method_a_view_lacks_is_405_before_authentication(anon, method, path):
    response = getattr(anon, method)(path)
    assert response.status_code == 405, response.content
    assert response.json() == {"detail": f'Method "{method.upper()}" not allowed.'}


def test_a_body_over_the_limit_is_a_json_413(anon, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    response = anon.post("/identity/token/", {"username": "x" * 20}, format="json")
    assert response.status_code == 413
    assert "at most 10 bytes" in response.json()["detail"]
