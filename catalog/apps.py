from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from catalog.views import CategoryViewSet, ItemViewSet
        from myproject.realtime import queries

        # The lists clients may follow live and check fields of (myproject.realtime.queries).
        queries.register(ItemViewSet)
        queries.register(CategoryViewSet)
