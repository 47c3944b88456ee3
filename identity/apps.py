from django.apps import AppConfig
from django.contrib.auth.signals import user_login_failed


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Identity"

    def ready(self) -> None:
        from identity import credentials  # connects its receivers
        from identity.throttling import count_failed_login
        from identity.views import UserViewSet
        from myproject.realtime import queries, revocation

        user_login_failed.connect(count_failed_login, dispatch_uid="identity.count_failed_login")
        # Sockets opened with a token or a session close when it no longer stands.
        revocation.register_check(credentials.still_standing, every=credentials.SWEEP)
        # Followed live by signed-in users only, each seeing what it may read over REST.
        queries.register(UserViewSet, anonymous=False)
