from django.urls import path

from catalog.consumers import CatalogConsumer

websocket_urlpatterns = [path("ws/", CatalogConsumer.as_asgi())]
