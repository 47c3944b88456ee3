"""
Request bodies: JSON, parsed within limits. DRF's `JSONParser` answers malformed JSON with a
400, but a body that is valid JSON by the letter could still reach a 500 or a 503:

- nesting 100,000 levels deep: a RecursionError in Python's decoder (500);
- a lone surrogate (`"\\ud800"`): a str that cannot be encoded again, so the first query or
  hash that touches it fails (500);
- a string of megabytes: it reaches queries whole (DRF runs a field's uniqueness check even
  after its length check failed) and a statement over MySQL's `max_allowed_packet` fails like
  a lost database (503).

    POST /catalog/items/  [[[[ ... ]]]]              -> 400 {"detail": "JSON parse error - ..."}

So at most `JSON_MAX_DEPTH` levels, no lone surrogate, no string longer than
`TEXT_MAX_LENGTH` (the longest any field takes), keys included. JSON is UTF-8 (RFC 8259): a
`charset` parameter is not obeyed. It is the only parser (settings).
"""

import json
import re
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

from myproject.limits import JSON_MAX_DEPTH, TEXT_MAX_LENGTH

SURROGATE = re.compile("[\ud800-\udfff]")


class JSONParser(parsers.JSONParser):
    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        try:
            data = json.loads(stream.read().decode("utf-8"), parse_constant=strict_constant)
        except RecursionError:
            problem = f"nested deeper than {JSON_MAX_DEPTH} levels."
        except ValueError as exc:  # not JSON, not UTF-8, NaN or Infinity
            problem = str(exc)
        else:
            problem = json_problem(data)
        if problem:
            raise ParseError(f"JSON parse error - {problem}")
        return data


def json_problem(value: Any) -> str | None:
    """Why a decoded JSON value is unfit to handle (containers nested deeper than
    `JSON_MAX_DEPTH`, a string too long or holding a lone surrogate), or None. Walks it level
    by level, without recursion."""
    depth, level = 1, [value]
    while level:
        children: list[Any] = []
        for item in level:
            if isinstance(item, str):
                if len(item) > TEXT_MAX_LENGTH:
                    return f"a string is longer than {TEXT_MAX_LENGTH} characters."
                if not item.isascii() and SURROGATE.search(item):
                    return "a string holds a lone surrogate (not Unicode text)."
            elif isinstance(item, dict | list):
                if depth > JSON_MAX_DEPTH:
                    return f"nested deeper than {JSON_MAX_DEPTH} levels."
                children += item
                if isinstance(item, dict):
                    children += item.values()
        level = children
        depth += 1
    return None
