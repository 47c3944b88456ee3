"""Production settings pass `check --deploy`; session-authenticated writes need CSRF."""

import os
import subprocess
import sys

import pytest
from rest_framework.test import APIClient

from tests.factories import PASSWORD, StaffFactory
from tests.live import ROOT


def test_production_settings_pass_check_deploy():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "off",
        "DJANGO_HTTPS": "on",
        "DJANGO_SECRET_KEY": "x7$Kq!2vN#pL9@wE4rT6yU8iO0aS3dF5gH7jK1lZ2xC4vB6nM8-unique-prod",
        "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_missing_secret_key_is_refused_outside_debug():
    env = {**os.environ, "DJANGO_DEBUG": "off"}
    env.pop("DJANGO_SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_session_authenticated_writes_need_a_csrf_token():
    staff = StaffFactory()
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=staff.name, password=PASSWORD)
    payload = {"name": "Garden", "slug": "garden"}
    refused = client.post("/catalog/categories/", payload, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    token = client.get("/admin/").cookies["csrftoken"].value  # its logout form sets one
    accepted = client.post("/catalog/categories/", payload, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201
