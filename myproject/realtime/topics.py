"""
Names: topics (the groups sockets listen to), event types, private groups, and positions.
Every name the realtime pieces use is built here, never with an f-string elsewhere.

A topic is any group a client may name (`/identity/ws/check/<group>/`): `users` and `catalog`
carry the server's change events and are read-only; any other name is a chat room. A position
is `<epoch>:<seq>`: the seq-th frame of the topic within that epoch (myproject.realtime).
"""

import re
from dataclasses import dataclass, field

USERS = "users"
CATALOG = "catalog"
# The topics of server events: sockets may listen there, never send.
EVENT_TOPICS = frozenset({USERS, CATALOG})

# The server's own topic of revocations: which sockets must close (myproject.realtime.hub).
CONTROL = "sys.control"

# What a client may name as a topic, minus the server's own names: the control topic, and the
# groups of sockets a revocation closes (per user, per credential). Matched whole (fullmatch):
# `$` would also match before a trailing newline, and `users\n` would pass as a chat room.
TOPIC_NAME = re.compile(r"[A-Za-z0-9_.-]{1,80}")
# `app.`: the channel-layer groups of consumers of one's own (docs/consumers.md).
PRIVATE_PREFIXES = ("user.", "cred.", "sys.", "app.")

EPOCH = re.compile(r"[A-Za-z0-9_-]{1,32}")  # as a whole: fullmatch


def event_type(resource: str, action: str) -> str:
    """`("item", "bulk_created")` -> `"item.bulk_created"`."""
    return f"{resource}.{action}"


def is_public(name: str) -> bool:
    """A topic a client may name: valid, and not a private group."""
    return name_problem(name) is None


def name_problem(name: str) -> str | None:
    """Why a client may not name `name` as a topic (a group), or None if it may."""
    if not TOPIC_NAME.fullmatch(name):
        return "a group name is 1-80 characters of A-Z, a-z, 0-9, '_', '.' and '-'"
    if name.startswith(PRIVATE_PREFIXES):
        return f"group names starting with {', '.join(PRIVATE_PREFIXES)} are the server's own"
    return None


def user_group(uuid: object) -> str:
    """The sockets of one user: revoking the group closes them all."""
    return f"user.{uuid}"


def credential_group(digest: str) -> str:
    """The sockets opened with one token or session (identity.credentials)."""
    return f"cred.{digest}"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a topic stands: the last frame published (`seq`) within `epoch`. With database
    replicas, `gtid` is the MariaDB GTID position that covers the writes of every frame up to
    here (myproject.replicas); it is not part of the position's identity or text."""

    epoch: str
    seq: int
    gtid: str | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.epoch}:{self.seq}"

    @classmethod
    def parse(cls, text: object) -> "Position | None":
        """`"<epoch>:<seq>"` as a Position; None for anything else."""
        if not isinstance(text, str) or len(text) > 64:
            return None
        epoch, _, seq = text.partition(":")
        if not EPOCH.fullmatch(epoch) or not seq.isascii() or not seq.isdigit() or len(seq) > 18:
            return None
        return cls(epoch, int(seq))


# Where an unreadable `since` resumes from: in no epoch (an epoch is never empty), so nothing
# can be recovered from it and the client is told so.
NOWHERE = Position("", 0)
