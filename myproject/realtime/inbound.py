"""
What a client sends, refused or read: a handshake refused (`Refused`, HTTP 403), and frames read
as JSON objects within limits, or answered with an `error` frame (`FrameError`; the socket stays
open).
"""

import json
from typing import Any

from django.conf import settings

# Deeper JSON than this is refused: it only costs (recursion in json and msgpack).
MAX_DEPTH = 32


class FrameError(Exception):
    """A frame the server will not act on; answered with an `error` frame (`detail` is text,
    or the field errors of an invalid filter)."""

    def __init__(self, code: str, detail: Any, **extra: Any) -> None:
        super().__init__(str(detail))
        self.code = code
        self.detail = detail
        self.extra = extra


class Refused(Exception):
    """The handshake is refused (HTTP 403); the log says why (`reason`, `detail`)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_frame(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
    """A client frame as a JSON object, or FrameError saying what is wrong with it."""
    if text_data is None:
        raise FrameError("binary", "Frames must be JSON text, not binary.")
    if len(text_data.encode("utf-8", "surrogatepass")) > settings.WS_MAX_FRAME:
        raise FrameError("too_large", f"Frames are limited to {settings.WS_MAX_FRAME} bytes.")
    try:
        frame = json.loads(text_data)
    except (ValueError, RecursionError) as exc:
        raise FrameError("invalid_json", "The frame is not valid JSON.") from exc
    if not isinstance(frame, dict):
        raise FrameError("not_an_object", "The frame must be a JSON object.")
    if _depth(frame) > MAX_DEPTH:
        raise FrameError("too_deep", f"JSON nested deeper than {MAX_DEPTH} levels.")
    return frame


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return depth
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
    return depth
