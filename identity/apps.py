from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Identity"

    def ready(self) -> None:
        from identity import credentials  # noqa: F401 - connects its receivers
        from identity.views import UserViewSet
        from myproject.realtime import queries, topics

        # Followed live by signed-in users only, each seeing what it may read over REST.
        queries.register(
            queries.Resource("user", UserViewSet, topics.USERS, anonymous=False, public=None)
        )
