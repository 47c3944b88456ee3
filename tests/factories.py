"""Test data: one factory per model."""

from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from catalog.models import Category, Item
from identity.models import Token, User

PASSWORD = "correct-Horse-battery-9"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.name}@example.com")
    password = factory.django.Password(PASSWORD)


class StaffFactory(UserFactory):
    is_staff = True


def token_for(user: User) -> str:
    return Token.objects.issue(user)[1]


class CategoryFactory(DjangoModelFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


class ItemFactory(DjangoModelFactory):
    class Meta:
        model = Item

    sku = factory.Sequence(lambda n: f"SKU-{n:06d}")
    name = factory.Sequence(lambda n: f"Item {n}")
    price = Decimal("9.99")
    stock = 10
    category = factory.SubFactory(CategoryFactory)
