"""
The `?search=` of every list: DRF's `SearchFilter`, bounded. Each term costs one OR of a
case-insensitive substring match per search field, so thousands of terms made one request
cost thousands of LIKEs per row; and a term longer than any field's value can match nothing.

    GET /catalog/items/?search=red+shoe     -> 2 terms, fine
    GET /catalog/items/?search=t0+t1+...+t10 -> 400 {"search": ["At most 10 terms ..."]}

Terms are counted as DRF splits them (spaces and commas; a quoted phrase is one term), at most
`SEARCH_MAX_TERMS` (`DJANGO_SEARCH_MAX_TERMS`), each at most `TERM_MAX_LENGTH` characters.
It is the default filter backend (settings), so every list and bulk delete uses it.
"""

from django.conf import settings
from rest_framework import filters
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

TERM_MAX_LENGTH = 100


class SearchFilter(filters.SearchFilter):
    search_description = (
        f"Terms separated by spaces or commas (a quoted phrase is one term), each a "
        f"case-insensitive substring of one of the searched fields; all must match. At most "
        f"{settings.SEARCH_MAX_TERMS} terms of at most {TERM_MAX_LENGTH} characters."
    )

    def get_search_terms(self, request: Request) -> list[str]:
        terms = super().get_search_terms(request)
        limit = settings.SEARCH_MAX_TERMS
        if len(terms) > limit:
            raise ValidationError({self.search_param: [f"At most {limit} terms in a search."]})
        if any(len(term) > TERM_MAX_LENGTH for term in terms):
            raise ValidationError(
                {self.search_param: [f"Search terms are at most {TERM_MAX_LENGTH} characters."]}
            )
        return terms
