"""
One-use WebSocket tickets: `POST /identity/ws-ticket/` gives a signed-in client a ticket, which
opens one socket (`?ticket=`) within TTL seconds. Browsers cannot set headers on a WebSocket, so
without tickets the long-lived token would travel in the URL, where proxies and load balancers
log it; a ticket in a log is spent or expired.

    key = issue(user, credential)          # REST
    found = await redeem(key)              # the handshake: (user id, credential) or None

A ticket is bound to the credential it was issued with: its socket closes when that token or
session ends (identity.credentials). Tickets live in the shared cache (Redis), stored under a
digest; redeeming deletes it, and only the one caller whose delete removed it gets it, so a
ticket opens one socket even when two handshakes race.
"""

import hashlib
import secrets

from django.core.cache import cache

from identity.credentials import Credential
from identity.models import User

TTL = 30  # seconds


def _key(ticket: str) -> str:
    return f"ws-ticket:{hashlib.sha256(ticket.encode()).hexdigest()}"


def _pad(ticket: str, size: int) -> bytes:
    """`size` bytes derived from the ticket, independent of its digest (`_key`)."""
    return hashlib.shake_256(b"ws-ticket-credential:" + ticket.encode()).digest(size)


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def issue(user: User, credential: Credential) -> str | None:
    """A new ticket; None if the cache could not store it (Redis unreachable)."""
    ticket = secrets.token_urlsafe(32)
    key = credential.key.encode()
    sealed = _xor(key, _pad(ticket, len(key)))
    if not cache.add(_key(ticket), (str(user.pk), credential.kind, sealed), timeout=TTL):
        return None
    return ticket


async def redeem(ticket: str) -> tuple[str, Credential] | None:
    """The user id and credential of a valid ticket, spending it; None otherwise."""
    if not ticket or len(ticket) > 100:
        return None
    key = _key(ticket)
    found = await cache.aget(key)
    if found is None or not await cache.adelete(key):
        return None
    user_id, kind, sealed = found
    return user_id, Credential(kind, _xor(sealed, _pad(ticket, len(sealed))).decode())
