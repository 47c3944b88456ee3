"""
The real ASGI application with the stale-connection decorator turned into a no-op: the control
case that shows, in a real daphne process, what the decorator prevents (tests/myproject/test_db.py).
"""

import myproject.db

myproject.db.close_old_connections = lambda func: func  # before the consumers are imported

from myproject.asgi import application  # noqa: E402

__all__ = ["application"]
