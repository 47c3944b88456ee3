"""
Where frames are numbered and kept: the one source of truth for positions and history.

One backend per module, as Django's session backends are: `base` (what a broker does, and what
it is handed), `redis` (production: `REDIS_URL` or Sentinel; its Lua scripts in `lua/`), `local`
(the embedded default: an SQLite file every process of the machine shares). `broker()` is the
process's one broker, chosen by the settings.
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from myproject import redis_clients
from myproject.realtime.broker.base import Broker, Entry, Listening, Outgoing

__all__ = ["Broker", "Entry", "Listening", "Outgoing", "broker"]

_broker: Broker | None = None


@receiver(setting_changed)
def _forget_broker(setting: str, **kwargs: Any) -> None:
    """Tests change where and how long history is kept: build a new broker then."""
    global _broker
    if setting.startswith(("REDIS_", "WS_HISTORY", "WS_LOCAL")):
        _broker = None


def broker() -> Broker:
    """This process's broker: Redis when configured, else the shared SQLite file."""
    global _broker
    if _broker is None:
        if redis_clients.enabled():
            from myproject.realtime.broker.redis import RedisBroker

            _broker = RedisBroker()
        else:
            from myproject.realtime.broker.local import LocalBroker

            _broker = LocalBroker(Path(settings.WS_LOCAL_HISTORY))
    return _broker
