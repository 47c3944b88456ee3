"""
Optimistic concurrency for single objects: every single-object response carries an `ETag`, and a
PUT, PATCH or DELETE sent with `If-Match` proceeds only if the row still has that ETag (else
412). Two editors can no longer silently overwrite each other: the second one is told.

The ETag is a digest of the REST representation, so any visible change alters it. The check
and the write happen in one transaction with the row locked (`select_for_update`), so nothing
can slip in between.
"""

import hashlib
import json
from typing import Any

from django.db import models, transaction
from django.utils.http import parse_etags, quote_etag
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response


class PreconditionFailed(APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The object changed since you read it (ETag mismatch); reload and retry."
    default_code = "precondition_failed"


def etag_of(data: Any) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return quote_etag(digest[:32])


class ConditionalMixin:
    """For viewsets: ETag on single-object responses, If-Match honoured on writes."""

    locking = False

    def get_queryset(self) -> models.QuerySet:
        queryset = super().get_queryset()
        return queryset.select_for_update() if self.locking else queryset

    def get_object(self) -> models.Model:
        instance = super().get_object()
        header = self.request.headers.get("If-Match")
        if header and self.request.method in ("PUT", "PATCH", "DELETE"):
            current = etag_of(self.get_serializer(instance).data)
            tags = parse_etags(header)
            if "*" not in tags and current not in tags:
                raise PreconditionFailed
        return instance

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._tagged(super().retrieve(request, *args, **kwargs))

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with transaction.atomic():
            self.locking = True
            response = super().update(request, *args, **kwargs)
        return self._tagged(response)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with transaction.atomic():
            self.locking = True
            return super().destroy(request, *args, **kwargs)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().create(request, *args, **kwargs)
        return self._tagged(response) if isinstance(response.data, dict) else response

    def _tagged(self, response: Response) -> Response:
        if response.status_code < 300 and isinstance(response.data, dict):
            response["ETag"] = etag_of(response.data)
        return response
