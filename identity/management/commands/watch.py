"""
`python manage.py watch <route>`: what a socket of a WebSocket route hears, one JSON frame per
line, until Ctrl-C (or `--seconds`). It connects as a browser would, with an Origin header
(Python's WebSocket clients send none, and the server refuses them: 403), and, with `--as
<name>`, as that user: a token is made for it here and deleted when it stops (the command runs
beside the server, on its database).

    python manage.py watch /catalog/ws/
    python manage.py watch /identity/ws/check/ops/ --as admin
    python manage.py watch /catalog/ws/ --server http://127.0.0.1:8088 --since Xk2pQa9LmRw:40
"""

import contextlib
import json
import signal
import threading
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from identity.models import Token

# Seconds between two looks at whether to stop: a signal only sets a flag, which the loop reads.
POLL = 0.2


class Command(BaseCommand):
    help = "Print what a socket of a WebSocket route hears, one JSON frame per line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("route", help="e.g. /catalog/ws/ or /identity/ws/check/ops/")
        parser.add_argument("--server", default="http://127.0.0.1:8000", help="its HTTP base URL")
        parser.add_argument("--as", dest="user", help="the name of the user to connect as")
        parser.add_argument("--since", help="a position <epoch>:<seq> to resume from")
        parser.add_argument("--seconds", type=float, help="stop after this long")

    def handle(self, *args: Any, **options: Any) -> None:
        server = urlsplit(options["server"])
        if server.scheme not in ("http", "https") or not server.netloc:
            raise CommandError("--server is an http(s) URL, e.g. http://127.0.0.1:8000")
        token = _token_for(options["user"]) if options["user"] else None
        query = {key: value for key, value in (("token", token and token[1]),
                                               ("since", options["since"])) if value}  # fmt: skip
        scheme = "wss" if server.scheme == "https" else "ws"
        url = f"{scheme}://{server.netloc}{options['route']}"
        if query:
            url += "?" + urlencode(query)
        try:
            self._watch(url, f"{server.scheme}://{server.netloc}", options["seconds"])
        finally:
            if token is not None:
                token[0].delete()

    def _watch(self, url: str, origin: str, seconds: float | None) -> None:
        deadline = time.monotonic() + seconds if seconds else None
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or a process manager's stop
            signal.signal(signum, lambda *_: stop.set())
        try:
            with connect(url, origin=origin, max_size=None) as socket:
                while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                    left = POLL if deadline is None else deadline - time.monotonic()
                    with contextlib.suppress(TimeoutError):
                        frame = socket.recv(timeout=max(0.01, min(POLL, left)))
                        self.stdout.write(json.dumps(json.loads(frame)))
                        self.stdout.flush()
        except InvalidStatus as refused:
            raise CommandError(
                f"the server refused the handshake ({refused.response.status_code}): the route, "
                "the user (--as) or the origin (DJANGO_ALLOWED_HOSTS); its log says which"
            ) from refused
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            raise CommandError(f"the server closed the socket ({code})") from closed
        except OSError as exc:
            raise CommandError(f"cannot reach {url}: {exc}") from exc


def _token_for(name: str) -> tuple[Token, str]:
    try:
        user = get_user_model().objects.get_by_natural_key(name)
    except get_user_model().DoesNotExist as exc:
        raise CommandError(f"no user named {name!r}") from exc
    return Token.objects.issue(user)
