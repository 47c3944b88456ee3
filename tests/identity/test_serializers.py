"""`UserSerializer.to_representation` writes out DRF's field-by-field walk: held equal to it, in
any time zone, and reduced to the public fields for readers who are neither staff nor the user."""

import zoneinfo
from types import SimpleNamespace

from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from rest_framework import serializers

from identity.models import User
from identity.serializers import PUBLIC_FIELDS, UserSerializer
from tests.strategies import moments


def drf_representation(user: User) -> dict:
    """What ModelSerializer's field-by-field walk makes of the user: the reference."""
    return serializers.ModelSerializer.to_representation(UserSerializer(), user)


users = st.builds(
    User,
    uuid=st.uuids(),
    name=st.text(max_size=150),
    email=st.text(max_size=254),
    phone=st.text(max_size=16),
    comment=st.text(max_size=300),
    enable=st.booleans(),
    is_staff=st.booleans(),
    date_joined=moments,
)


@given(users, st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]))
def test_the_written_out_representation_is_drfs(user, zone):
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        assert UserSerializer(user).data == drf_representation(user)


@given(users, st.booleans())
def test_readers_who_are_not_staff_see_the_public_fields_of_others(user, staff):
    reader = User(name="reader", is_staff=staff)
    request = SimpleNamespace(user=reader)
    data = UserSerializer(user, context={"request": request}).data
    full = drf_representation(user)
    assert data == (full if staff else {name: full[name] for name in PUBLIC_FIELDS})
    assert UserSerializer(reader, context={"request": request}).data == drf_representation(reader)
