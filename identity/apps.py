from django.apps import AppConfig
from django.contrib.auth.signals import user_login_failed


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Identity"

    def ready(self) -> None:
        from identity.throttling import count_failed_login

        user_login_failed.connect(count_failed_login, dispatch_uid="identity.count_failed_login")
