from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "myproject.realtime"
    label = "realtime"
    verbose_name = "Realtime"
    default_auto_field = "django.db.models.BigAutoField"
