"""Stock adjustments that race end exactly right (row lock, F() update, CHECK constraint)."""

import threading

import pytest
from django.db import connection

from catalog.models import Item
from tests.conftest import client_for
from tests.factories import ItemFactory, StaffFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_decrements_never_lose_one_nor_go_negative():
    assert connection.vendor == "mysql"
    item = ItemFactory(stock=100)
    url = f"/catalog/items/{item.uuid}/adjust_stock/"
    staff = StaffFactory()
    codes: list[int] = []
    lock = threading.Lock()

    def sell(times: int) -> None:
        client = client_for(staff)
        for _ in range(times):
            status = client.post(url, {"delta": -1}, format="json").status_code
            with lock:
                codes.append(status)
        connection.close()

    threads = [threading.Thread(target=sell, args=(12,)) for _ in range(10)]  # 120 sales
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes.count(200) == 100
    assert codes.count(400) == 20
    assert Item.objects.get(pk=item.pk).stock == 0


def test_adjust_stock_adds_and_refuses_what_is_not_there(staff_client):
    item = ItemFactory(stock=3)
    url = f"/catalog/items/{item.uuid}/adjust_stock/"
    assert staff_client.post(url, {"delta": 5}, format="json").json()["stock"] == 8
    refused = staff_client.post(url, {"delta": -9}, format="json")
    assert refused.status_code == 400
    assert "delta" in refused.json()
    assert staff_client.post(url, {"delta": "x"}, format="json").status_code == 400
    assert Item.objects.get(pk=item.pk).stock == 8


def test_adjust_stock_refuses_what_the_column_cannot_hold(staff_client):
    _, maximum = connection.ops.integer_field_range("IntegerField")
    item = ItemFactory(stock=maximum - 1)
    url = f"/catalog/items/{item.uuid}/adjust_stock/"
    assert staff_client.post(url, {"delta": 1}, format="json").json()["stock"] == maximum
    refused = staff_client.post(url, {"delta": 1}, format="json")
    assert refused.status_code == 400
    assert str(maximum) in refused.json()["delta"][0]
    assert Item.objects.get(pk=item.pk).stock == maximum


def test_only_staff_adjusts_stock(user_client, anon):
    item = ItemFactory(stock=3)
    url = f"/catalog/items/{item.uuid}/adjust_stock/"
    assert anon.post(url, {"delta": -1}, format="json").status_code == 401
    assert user_client.post(url, {"delta": -1}, format="json").status_code == 403
    assert Item.objects.get(pk=item.pk).stock == 3
