from django.urls import path

from identity.views import TokenView, UserViewSet
from myproject.bulk import BulkRouter

router = BulkRouter()
router.register("users", UserViewSet)

urlpatterns = [path("token/", TokenView.as_view(), name="token"), *router.urls]
