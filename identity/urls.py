from django.urls import path

from identity.views import TokenView, UserViewSet, WebSocketTicketView
from myproject.bulk import BulkRouter

router = BulkRouter()
router.register("users", UserViewSet)

urlpatterns = [
    path("token/", TokenView.as_view(), name="token"),
    path("ws-ticket/", WebSocketTicketView.as_view(), name="ws-ticket"),
    *router.urls,
]
