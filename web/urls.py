from django.conf import settings
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import path

from web.views import index

urlpatterns = [path("", index, name="web-index")]

# `make run` serves everything from one daphne process, which (unlike runserver) does not serve
# static files; nginx does in the stack. `staticfiles_urlpatterns` is empty unless DEBUG.
if settings.DEBUG:
    urlpatterns += staticfiles_urlpatterns()
