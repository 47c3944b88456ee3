"""Test data: one factory per model."""

import factory
from factory.django import DjangoModelFactory

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
