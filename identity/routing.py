from django.urls import path

from identity.consumers import CheckConsumer

websocket_urlpatterns = [path("ws/check/<str:group_name>/", CheckConsumer.as_asgi())]
