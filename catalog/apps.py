from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from catalog.views import CategoryViewSet, ItemViewSet
        from myproject.realtime import queries, topics

        # The lists clients may follow live (myproject.realtime.queries).
        queries.register(queries.Resource("item", ItemViewSet, topics.CATALOG))
        queries.register(queries.Resource("category", CategoryViewSet, topics.CATALOG))
