"""WSGI entry point: uWSGI serves the REST API, admin and schema from here."""

import os

from django.core.wsgi import get_wsgi_application

from myproject.logs import uwsgi_request_log

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")

# uWSGI's request log writes each request's path escaped (uwsgi.ini's log-format).
application = uwsgi_request_log(get_wsgi_application())

from myproject.realtime import outbox  # noqa: E402 - once Django is set up

# Every worker relays the outbox from its start (and so publishes what a dead one left).
outbox.relay().start()

try:
    import uwsgi  # only importable in a uWSGI worker
except ImportError:
    pass
else:
    # A request's frames go out once uWSGI has closed its connection: Django's
    # request_finished fires before that, and the relay's work then delayed the response's
    # end by ~0.3 ms (make bench: writes). uWSGI calls after_req_hook once it is closed.
    uwsgi.after_req_hook = outbox.relay().release_after_close()
