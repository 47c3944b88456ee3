"""
The real ASGI application plus `/probe/`, which reports what myproject/realtime/daphne.py set
up in the process serving it (tests/myproject/realtime/test_daphne.py).
"""

import gc
import json
from typing import Any

from twisted.internet.abstract import FileDescriptor

from myproject.asgi import application as served


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http" or scope["path"] != "/probe/":
        await served(scope, receive, send)
        return
    body = {
        "frozen": gc.get_freeze_count(),
        "threshold": gc.get_threshold(),
        "write": FileDescriptor.write.__module__,
    }
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
