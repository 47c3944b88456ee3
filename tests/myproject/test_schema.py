"""The OpenAPI schema generates without warnings and describes the bulk verbs."""

import pytest
from django.core.management import call_command


def test_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "identity_users_bulk_update" in text
    assert "identity_users_bulk_destroy" in text
    assert "UserCreateOrBulk" in text


@pytest.mark.django_db
def test_schema_and_docs_are_served(anon):
    schema = anon.get("/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    docs = anon.get("/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/catalog/items/", "/catalog/categories/", "/identity/users/"])
def test_lists_document_their_bounds_and_parameters(anon, path):
    schema = anon.get("/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
    assert parameters["page_size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert "400" in parameters["page_size"]["description"]
    assert "400" in parameters["ordering"]["description"]
    filters = {
        "/catalog/items/": {"category", "enable", "in_stock", "price_min", "price_max"},
        "/catalog/categories/": {"slug"},
        "/identity/users/": {"enable", "is_staff"},
    }
    assert filters[path] <= set(parameters)
    for name in {"enable", "in_stock", "is_staff"} & set(parameters):
        assert parameters[name]["schema"] == {"type": "boolean"}
