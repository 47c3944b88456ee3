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
