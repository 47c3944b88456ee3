from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from identity.throttling import login_throttled
from myproject.health import healthz, readyz
from myproject.metrics import metrics_view

urlpatterns = [
    # Before the admin's own URLs: its login form shares the API's limit on failed logins.
    path("admin/login/", login_throttled(admin.site.login)),
    path("admin/", admin.site.urls),
    path("identity/", include("identity.urls")),
    path("catalog/", include("catalog.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("web.urls")),
]
if settings.DEBUG:
    urlpatterns.append(path("api-auth/", include("rest_framework.urls")))
if apps.is_installed("examples"):  # DJANGO_EXAMPLES (docs/consumers.md)
    urlpatterns.insert(0, path("examples/", include("examples.urls")))

handler400 = "myproject.exceptions.bad_request"
handler403 = "myproject.exceptions.permission_denied"
handler404 = "myproject.exceptions.not_found"
handler500 = "myproject.exceptions.server_error"
