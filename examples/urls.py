from django.urls import re_path

from examples.routing import ROOM
from examples.views import announce

urlpatterns = [re_path(rf"^announce/{ROOM}/$", announce, name="example-announce")]
