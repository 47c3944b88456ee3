from django.apps import AppConfig


class ExamplesConfig(AppConfig):
    """The consumers of docs/consumers.md, served when `DJANGO_EXAMPLES` is on."""

    name = "examples"
    verbose_name = "Examples"
