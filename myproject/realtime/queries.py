"""
Live queries: a socket subscribes to the rows of a REST list that match a query string, and
receives, per written row, whether it was `created`, `updated`, `entered`, `left` or `deleted`
for that list.

    query = compile_query("item", "category=…&price_max=10&search=red", viewer)
    query.action(before, after)   # -> "entered", "updated", … or None

The query string is the REST list's own: it is validated by the list's own filter backends (the
same FilterSet, the same bounded search), so an invalid one gets the same messages as a 400,
and a row matches exactly when that list would include it. The rows come from the event's
payload (myproject.realtime.frames: each write carries its rows before and after).

Matching in memory follows MariaDB's comparisons: decimals and integers as numbers, uuids and
booleans by value, and text as its `utf8mb4_unicode_ci` collation does it, character by
character (case, accents and widths ignored, trailing spaces ignored by `=`). Characters the
collation expands or ignores when comparing whole strings (`ß` = `ss`, zero-width spaces) are
compared as written: a subscription filtering on such text may differ from the list there.

Equal queries of one kind of reader share one `LiveQuery` (`QueryIndex`), and queries are
indexed by the value of their equality filter (an item's `category`, say), so a written row is
checked against the queries that can match it, not against every subscription. A row's text is
reduced as the collation sees it once (`Row`), whatever the number of queries testing it.

What is left unindexed (a search alone, a price range) is tested against every written row of
its resource, so its number is bounded (`Quota`): at most MAX_UNINDEXED distinct such queries
per process, and MAX_UNINDEXED_PER_ADDRESS such subscriptions per client address. Matching many
rows is done in slices (`QueryIndex.matches`, myproject.realtime.pacing), so a large write never
holds up the process's other sockets for long.
"""

import collections
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import models
from django.http import HttpRequest, QueryDict
from django_filters.constants import EMPTY_VALUES
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters as drf_filters
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from myproject.realtime.collation import equal, text_key
from myproject.realtime.pacing import Pacer
from myproject.services import ModelService

# Unindexed live queries (see the module docstring): distinct ones per process, and
# subscriptions per client address.
MAX_UNINDEXED = 1000
MAX_UNINDEXED_PER_ADDRESS = 50


class Row(dict):
    """A row's representation (a frame's `changes`), with its text as the collation sees it
    computed once for every query that tests it."""

    __slots__ = ("_keys",)

    def key(self, name: str) -> str:
        """The field's text, reduced as `collation.text_key` does."""
        try:
            keys = self._keys
        except AttributeError:
            keys = self._keys = {}
        found = keys.get(name)
        if found is None:
            found = keys[name] = text_key(str(self.get(name) or ""))
        return found


class InvalidFilter(Exception):
    """The query string is invalid: `detail` is what the REST list's 400 would say."""

    def __init__(self, detail: Any) -> None:
        super().__init__(str(detail))
        self.detail = detail


@dataclass(frozen=True)
class Resource:
    """A list that may be followed live: its viewset (filters, search, representation) and the
    topic its writes are published to. `public` reduces a row for readers who are neither staff
    nor the row itself (None: everyone reads everything).

    A FilterSet's filters with a `method` need an in-memory test beside it, in the FilterSet's
    `live_tests` (`{"in_stock": lambda row, value: ...}`): without one, compiling fails."""

    name: str
    viewset: type
    topic: str
    anonymous: bool = True
    public: Callable[[dict[str, Any]], dict[str, Any]] | None = None


RESOURCES: dict[str, Resource] = {}


def register(viewset: type, *, anonymous: bool = True) -> Resource:
    """Declared by each app (its `apps.py`) for each list that clients may follow and check
    fields of. Everything else comes from the viewset's service, the resource's one declaration:
    its name, its topic, its serializer, what others may read of a row (`public`)."""
    service = viewset.service
    public = service.public if type(service).public is not ModelService.public else None
    resource = Resource(service.resource, viewset, service.topic, anonymous, public)
    RESOURCES[resource.name] = resource
    return resource


# --- conditions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One filter of a query, tested on a row's representation."""

    key: str  # the row's field
    lookup: str  # exact, gt, gte, lt, lte, icontains, or "method"
    value: Any
    kind: str  # text, number, uuid, bool, method
    method: Callable[[dict[str, Any], Any], bool] | None = None
    needle: str = field(init=False, compare=False)  # a text value as the collation sees it

    def __post_init__(self) -> None:
        object.__setattr__(self, "needle", text_key(str(self.value)) if self.kind == "text" else "")

    def test(self, row: Row) -> bool:
        if self.kind == "method":
            return self.method(row, self.value)
        raw = row.get(self.key)
        if raw is None:
            return False
        if self.kind == "text":
            if self.lookup == "exact":
                return equal(str(raw), self.value)
            return self.needle in row.key(self.key)
        actual = _as(self.kind, raw)
        if actual is None:
            return False
        if self.lookup == "exact":
            return actual == self.value
        return {
            "gt": actual > self.value,
            "gte": actual >= self.value,
            "lt": actual < self.value,
            "lte": actual <= self.value,
        }[self.lookup]

    @property
    def index_key(self) -> Any:
        """The row value this condition needs, as an index key (equality filters only)."""
        return _index_value(self.kind, self.value)


def _as(kind: str, value: Any) -> Any:
    try:
        if kind == "number":
            return Decimal(str(value))
        if kind == "uuid":
            return uuid.UUID(str(value))
        if kind == "bool":
            return bool(value)
    except (InvalidOperation, ValueError, TypeError):
        return None
    return value


def _index_value(kind: str, value: Any) -> Any:
    if kind == "text":
        return text_key(str(value))
    return _as(kind, value)


def _kind(model_field: models.Field) -> str:
    if isinstance(model_field, models.ForeignKey):
        return _kind(model_field.target_field)
    if isinstance(model_field, models.BooleanField):
        return "bool"
    if isinstance(model_field, models.UUIDField):
        return "uuid"
    if isinstance(model_field, models.DecimalField | models.IntegerField | models.FloatField):
        return "number"
    if isinstance(model_field, models.CharField | models.TextField):
        return "text"
    raise TypeError(f"no live comparison for {type(model_field).__name__}")


SEARCH_SEPARATOR = "|"  # in a search condition's key: the fields any of which may contain it


@dataclass(frozen=True)
class Term:
    """One search term: a case-insensitive substring of one of `fields` (DRF's search)."""

    fields: tuple[str, ...]
    text: str

    key: str = field(init=False, compare=False)  # `text` as the collation sees it

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", text_key(self.text))

    def test(self, row: Row) -> bool:
        key = self.key
        return any(key in row.key(name) for name in self.fields)


# --- queries ---------------------------------------------------------------------------------


class LiveQuery:
    """A compiled query string of one resource, as one kind of reader may follow it."""

    def __init__(
        self, resource: Resource, conditions: list[Condition], terms: list[Term], key: tuple
    ) -> None:
        self.resource = resource
        self.conditions = conditions
        self.terms = terms
        self.key = key
        indexable = [c for c in conditions if c.lookup == "exact" and c.kind != "bool"]
        first = indexable[0] if indexable else None
        # (field, kind, value): rows whose field has that value are the only candidates.
        self.index = (first.key, first.kind, first.index_key) if first else None

    @property
    def indexed(self) -> bool:
        """Whether an equality filter narrows the rows it is tested against."""
        return self.index is not None

    def matches(self, row: dict[str, Any] | None) -> bool:
        if row is None:
            return False
        if not isinstance(row, Row):
            row = Row(row)
        return all(c.test(row) for c in self.conditions) and all(t.test(row) for t in self.terms)

    def action(self, before: Row | None, after: Row | None) -> str | None:
        """What a row's write means to this query's list; None: nothing."""
        was, now = self.matches(before), self.matches(after)
        if before is None:
            return "created" if now else None
        if after is None:
            return "deleted" if was else None
        if was and now:
            return "updated"
        if now:
            return "entered"
        return "left" if was else None


def compile_query(resource_name: str, query_string: str, user: Any) -> LiveQuery:
    """The live form of `GET <list>?<query_string>` as `user` would send it; InvalidFilter with
    the 400's detail if that list would refuse it."""
    resource = RESOURCES[resource_name]
    http = HttpRequest()
    http.method = "GET"
    http.GET = QueryDict(query_string)
    request = Request(http)
    request.user = user if user is not None else AnonymousUser()
    view = resource.viewset()
    view.request, view.args, view.kwargs = request, (), {}
    view.action, view.format_kwarg = "list", None
    queryset = view.get_queryset()
    model = queryset.model
    conditions: list[Condition] = []
    terms: list[Term] = []
    try:
        for backend_class in view.filter_backends:
            backend = backend_class()
            if isinstance(backend, DjangoFilterBackend):
                filterset = backend.get_filterset(request, queryset, view)
                if filterset is None:
                    continue
                if not filterset.is_valid():
                    raise InvalidFilter(dict(filterset.errors))
                conditions += _conditions(filterset, model)
            elif isinstance(backend, drf_filters.SearchFilter):
                fields = backend.get_search_fields(view, request) or ()
                for text in backend.get_search_terms(request) if fields else ():
                    terms.append(Term(tuple(_search_key(name) for name in fields), text))
    except ValidationError as exc:
        raise InvalidFilter(exc.detail) from exc
    key = (
        resource.name,
        tuple(sorted((c.key, c.lookup, repr(c.value)) for c in conditions)),
        tuple(sorted((t.fields, text_key(t.text)) for t in terms)),
    )
    return LiveQuery(resource, conditions, terms, key)


def _search_key(name: str) -> str:
    if name[:1] in "^=@$":
        raise TypeError(f"no live search for {name!r}: only plain (icontains) search fields")
    return name


def _conditions(filterset: Any, model: type[models.Model]) -> list[Condition]:
    conditions = []
    for name, value in filterset.form.cleaned_data.items():
        if value in EMPTY_VALUES:
            continue
        filter_ = filterset.filters[name]
        if filter_.method is not None:
            method = getattr(type(filterset), "live_tests", {}).get(name)
            if method is None:
                raise TypeError(f"{type(filterset).__name__}.{name} has no live test")
            conditions.append(Condition(name, "method", value, "method", method))
            continue
        model_field = model._meta.get_field(filter_.field_name)
        kind = _kind(model_field)
        lookup = filter_.lookup_expr
        if lookup == "iexact":
            lookup = "exact"  # the collation is case-insensitive either way
        if lookup not in {"exact", "gt", "gte", "lt", "lte", "icontains"}:
            raise TypeError(f"no live test for the lookup {lookup!r} of {name}")
        if kind == "text" and lookup not in {"exact", "icontains"}:
            raise TypeError(f"no live ordering of text ({name})")
        value = str(value) if kind == "text" else _as(kind, value)
        conditions.append(Condition(model_field.name, lookup, value, kind))
    return conditions


# --- many queries ----------------------------------------------------------------------------


class QueryIndex:
    """The live queries of one topic in one process, by resource and by equality value."""

    def __init__(self) -> None:
        # resource -> (field, value) -> query key -> query; (None) for unindexed queries
        self.buckets: dict[str, dict[Any, dict[tuple, LiveQuery]]] = {}
        self.queries: dict[tuple, LiveQuery] = {}
        self.subscribers: dict[tuple, dict[Any, None]] = {}

    def add(self, query: LiveQuery, subscriber: Any) -> LiveQuery:
        """Follow `query` for `subscriber`; returns the shared query (equal ones are one)."""
        shared = self.queries.get(query.key)
        if shared is None:
            shared = self.queries[query.key] = query
            bucket = self.buckets.setdefault(query.resource.name, {})
            bucket.setdefault(query.index, {})[query.key] = query
            self.subscribers[query.key] = {}
        self.subscribers[query.key][subscriber] = None
        return shared

    def remove(self, query: LiveQuery, subscriber: Any) -> None:
        subscribers = self.subscribers.get(query.key)
        if subscribers is None:
            return
        subscribers.pop(subscriber, None)
        if not subscribers:
            del self.subscribers[query.key]
            del self.queries[query.key]
            bucket = self.buckets[query.resource.name]
            bucket[query.index].pop(query.key, None)
            if not bucket[query.index]:
                del bucket[query.index]

    def __bool__(self) -> bool:
        return bool(self.queries)

    def all_subscribers(self) -> list[Any]:
        return [s for subscribers in self.subscribers.values() for s in subscribers]

    def matches(
        self, resource: str, rows: list[list[Any]], found: dict[tuple, list[tuple]]
    ) -> Iterator[None]:
        """Fill `found` (query key -> [(action, before, after)]) with the written rows each query
        sees; a generator that pauses once a slice of work is done (myproject.realtime.pacing),
        for the caller to yield to the event loop."""
        bucket = self.buckets.get(resource)
        if not bucket:
            return
        fields = {index[:2] for index in bucket if index is not None}
        unindexed = bucket.get(None, {})
        pacer = Pacer()
        for before, after in rows:
            keys = set(unindexed)
            for name, kind in fields:
                for row in (before, after):
                    if row is not None and row.get(name) is not None:
                        keys.update(bucket.get((name, kind, _index_value(kind, row[name])), ()))
            for key in keys:
                action = self.queries[key].action(before, after)
                if action is not None:
                    found.setdefault(key, []).append((action, before, after))
            if pacer.due():
                yield
                pacer.restart()


class Quota:
    """The unindexed live queries of this process (see the module docstring): counted per
    distinct query and per client address, taken when a subscription starts and given back
    when it ends."""

    def __init__(self) -> None:
        self.queries: collections.Counter[tuple] = collections.Counter()
        self.addresses: collections.Counter[str] = collections.Counter()

    def take(self, query: LiveQuery, address: str) -> str | None:
        """Count a subscription to `query` from `address`; why not, if it may not."""
        if query.indexed:
            return None
        if self.addresses[address] >= MAX_UNINDEXED_PER_ADDRESS:
            return (
                f"At most {MAX_UNINDEXED_PER_ADDRESS} live queries without an equality filter "
                "per client address."
            )
        if query.key not in self.queries and len(self.queries) >= MAX_UNINDEXED:
            return "This server follows too many live queries without an equality filter."
        self.queries[query.key] += 1
        self.addresses[address] += 1
        return None

    def give_back(self, query: LiveQuery, address: str) -> None:
        if query.indexed:
            return
        for counter, key in ((self.queries, query.key), (self.addresses, address)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]


quota = Quota()
