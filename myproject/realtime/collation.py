"""
Text compared as MariaDB compares it under `utf8mb4_unicode_ci`, for live queries to agree with
the REST lists' `search` (LIKE) and equality filters (myproject.realtime.queries).

LIKE compares character by character, and the collation ignores case, accents and widths:
`É` and `e`, a full-width `A` and `a` are one letter to it. Each character is reduced to its
base letter (compatibility decomposition, combining marks dropped) and lower-cased, when that
leaves one character; otherwise it stays as written. `=` also ignores trailing spaces (PAD
SPACE).
"""

import functools
import unicodedata


@functools.lru_cache(maxsize=4096)
def _letter(char: str) -> str:
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return base.lower() if len(base) == 1 else char.lower() if len(char.lower()) == 1 else char


def text_key(text: str) -> str:
    """`text` as the collation sees it, one character for each of `text`'s."""
    if text.isascii():
        return text.lower()  # what the character-by-character reduction gives ASCII, faster
    return "".join(_letter(char) for char in text)


def contains(text: str, part: str) -> bool:
    """`text LIKE '%<part>%'` (Django's `icontains` on MariaDB)."""
    return text_key(part) in text_key(text)


def equal(text: str, other: str) -> bool:
    """`text = other` (trailing spaces ignored, as PAD SPACE collations do)."""
    return text_key(text.rstrip(" ")) == text_key(other.rstrip(" "))
