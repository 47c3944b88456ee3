"""
A socket's live queries: `subscribe` follows the rows of a REST list that match a query string
(compiled and capped by myproject.realtime.queries) through its resource's hub, `unsubscribe`
ends one; both are rated per socket (`DJANGO_WS_SUBSCRIBE_RATE`).

    {"type": "subscribe", "id": "cheap", "resource": "item", "filter": "price_max=10"}
    {"type": "unsubscribe", "id": "cheap"}
"""

from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from myproject.realtime import queries, quotas
from myproject.realtime.hub import Hub
from myproject.realtime.hubs import hubs
from myproject.realtime.inbound import FrameError
from myproject.realtime.listeners import Follower
from myproject.realtime.sink import Sink
from myproject.realtime.topics import NOWHERE, Position

# The longest query string a subscription may carry (a REST URL's query fits well within it).
MAX_FILTER = 4096


class LiveQueries:
    """The live-query half of EventConsumer (a mixin: it shares the consumer's state)."""

    sink: Sink | None
    user: Any
    credential: Any
    address: str
    # id -> (hub, follower)
    live_queries: dict[str, tuple[Hub, Follower]]
    subscribe_rate: quotas.RateLimit
    send_json: Callable[[dict[str, Any]], Awaitable[None]]

    def start_live_queries(self) -> None:
        self.live_queries = {}
        self.subscribe_rate = quotas.RateLimit(settings.WS_SUBSCRIBE_RATE)

    async def receive_subscription(self, frame: dict[str, Any]) -> None:
        """A `subscribe` or `unsubscribe` frame."""
        if not self.subscribe_rate.allow():
            raise FrameError(
                "rate_limited",
                f"At most {settings.WS_SUBSCRIBE_RATE} subscribe and unsubscribe frames.",
                **({"id": frame["id"]} if isinstance(frame.get("id"), str) else {}),
            )
        if frame["type"] == "subscribe":
            await self.subscribe(frame)
        else:
            await self.unsubscribe(frame)

    async def subscribe(self, frame: dict[str, Any]) -> None:
        """Follow the rows of a REST list that match a query string (a live query)."""
        id_ = frame.get("id")
        if not isinstance(id_, str) or not 0 < len(id_) <= 64:
            raise FrameError("invalid_id", "A subscription's id is a string of 1-64 characters.")
        if id_ in self.live_queries:
            raise FrameError("duplicate_id", f"Subscription {id_!r} exists already.", id=id_)
        if len(self.live_queries) >= settings.WS_MAX_SUBSCRIPTIONS:
            raise FrameError(
                "too_many_subscriptions",
                f"At most {settings.WS_MAX_SUBSCRIPTIONS} subscriptions per socket.",
                id=id_,
            )
        resource = queries.RESOURCES.get(frame.get("resource"))
        if resource is None:
            names = ", ".join(sorted(queries.RESOURCES))
            raise FrameError("unknown_resource", f"resource is one of {names}.", id=id_)
        if not resource.anonymous and self.credential is None:
            raise FrameError("forbidden", f"Sign in to follow {resource.name} rows.", id=id_)
        text = frame.get("filter", "")
        if not isinstance(text, str) or len(text) > MAX_FILTER:
            raise FrameError(
                "invalid_filter", f"filter is a query string of at most {MAX_FILTER} characters.",
                id=id_,
            )  # fmt: skip
        since = frame.get("since")
        since = None if since is None else Position.parse(since) or NOWHERE
        try:
            query = queries.compile_query(resource.name, text, self.user)
        except queries.InvalidFilter as exc:
            raise FrameError("invalid_filter", exc.detail, id=id_) from exc
        refused = queries.quota.take(query, self.address)
        if refused is not None:
            raise FrameError("too_many_subscriptions", refused, id=id_)
        follower = Follower(self.sink, id_, query)
        hub = hubs().get(resource.topic)
        self.live_queries[id_] = (hub, follower)
        try:
            await hub.attach(follower, since)
        except BaseException as exc:  # timed out, or the socket's task cancelled meanwhile
            self.end_live_query(id_)
            if isinstance(exc, TimeoutError):
                raise FrameError("unavailable", "Try again shortly.", id=id_) from exc
            raise

    async def unsubscribe(self, frame: dict[str, Any]) -> None:
        id_ = frame.get("id")
        if not isinstance(id_, str) or id_ not in self.live_queries:
            raise FrameError("unknown_subscription", f"No subscription {id_!r}.", id=id_)
        self.end_live_query(id_)
        await self.send_json({"type": "unsubscribed", "id": id_})

    def end_live_query(self, id_: str) -> None:
        found = self.live_queries.pop(id_, None)
        if found is not None:
            hub, follower = found
            hub.detach(follower)
            queries.quota.give_back(follower.query, self.address)

    def end_live_queries(self) -> None:
        for id_ in list(getattr(self, "live_queries", ())):
            self.end_live_query(id_)
