from catalog.views import CategoryViewSet, ItemViewSet
from myproject.bulk import BulkRouter

router = BulkRouter()
router.register("categories", CategoryViewSet)
router.register("items", ItemViewSet)

urlpatterns = router.urls
