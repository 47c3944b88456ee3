import datetime
import uuid
import zoneinfo
from decimal import Decimal

from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from rest_framework import serializers

from catalog.models import Category, Item
from catalog.serializers import ItemSerializer
from tests.strategies import moments


def drf_representation(item: Item) -> dict:
    """What ModelSerializer's field-by-field walk makes of the item: the reference."""
    return serializers.ModelSerializer.to_representation(ItemSerializer(), item)


items = st.builds(
    Item,
    uuid=st.uuids(),
    sku=st.text(max_size=64),
    name=st.text(max_size=200),
    description=st.text(max_size=300),
    price=st.decimals(min_value=0, max_value=Decimal("9999999999.99"), places=2)
    | st.sampled_from([Decimal("5"), Decimal("0"), Decimal("1.5"), Decimal("10.10")]),
    stock=st.integers(min_value=0, max_value=2**31 - 1),
    category_id=st.uuids(),
    enable=st.booleans(),
    created_at=moments,
    updated_at=moments,
)


@given(items)
def test_the_fast_representation_is_drfs(item):
    assert ItemSerializer(item).data == drf_representation(item)


@given(items, st.sampled_from(["Europe/Paris", "America/New_York"]))
def test_the_current_time_zone_is_honoured_as_drf_does(item, zone):
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        fast = ItemSerializer(item).data
        assert fast == drf_representation(item)
    assert not fast["created_at"].endswith("Z")  # local time, with its offset


def test_lists_use_it_too_and_validated_data_still_works():
    item = Item(
        uuid=uuid.uuid4(), sku="A-1", name="A", description="", price=Decimal("2"), stock=3,
        category_id=uuid.uuid4(), enable=True,
        created_at=datetime.datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=datetime.UTC),
        updated_at=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    )  # fmt: skip
    (listed,) = ItemSerializer([item], many=True).data
    assert listed == drf_representation(item)
    assert listed["price"] == "2.00"
    assert listed["created_at"] == "2026-01-02T03:04:05.000600Z"
    assert listed["category"] == str(item.category_id)
    # Validated but unsaved data (a dict) takes DRF's own path.
    as_dict = {field: getattr(item, field) for field in listed if field != "category"}
    as_dict["category"] = Category(uuid=item.category_id)
    assert ItemSerializer().to_representation(as_dict) == listed
