"""
Every log holds one line per record, and no secret, whatever a client sends.

Servers decode what they log: a `%0a` in a path wrote a line of the client's choosing (under
`DJANGO_LOG_FORMAT=json`, a whole JSON record). Each log escapes control characters at its
source, with `escape`:

- Python logs (settings.LOGGING): `Redact`, the filter of the one handler, escapes every
  record's message and extras, in both formats; `TextFormatter` indents a traceback's lines
  under its record and escapes them too.
- uWSGI's request log: uwsgi.ini's log-format writes the `path` logvar, the path escaped here
  (`uwsgi_request_log`, myproject/wsgi.py), not the decoded `PATH_INFO`.
- daphne's access log (on under `make run`, off in deploy/daphne.sh): `AccessLog`.
- nginx escapes its own access log.

No log line carries a query string (`?token=`, `?ticket=`), a cookie or a body: extras are
reduced to plain values, and a request (django.request's `request`, whose repr has the query
string) to its method and path.
"""

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from daphne.access import AccessLogGenerator
from django.http import HttpRequest

# C0 and C1 control characters, DEL, and Unicode's line and paragraph separators.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# What every LogRecord has; anything else on a record is an extra (`extra=`, a filter's).
STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _escaped(match: re.Match[str]) -> str:
    char = match[0]
    return NAMED.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def escape(text: str) -> str:
    """`text` on one line: control characters as escapes (`\\n`, `\\x1b`, `\\u2028`)."""
    return CONTROL.sub(_escaped, text)


def escape_quoted(text: str) -> str:
    """`escape`, and `"` as `\\x22` too: for a field between quotes (an access log's
    request), which the text must not end early."""
    return escape(text).replace('"', "\\x22")


def _plain(value: object) -> object:
    """An extra as it may be logged: text escaped, numbers as they are, a request as its
    method and path, and anything else as its type's name (its repr may hold anything)."""
    if isinstance(value, HttpRequest):
        return f"{value.method} {escape(value.path)}"
    if isinstance(value, str):
        return escape(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return type(value).__name__


class Redact(logging.Filter):
    """Escapes each record's message and reduces its extras to plain values (`_plain`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: left for the handler to report, as logging does
            message = None
        if message is not None:
            record.msg, record.args = escape(message), None
        for name in vars(record).keys() - STANDARD:
            setattr(record, name, _plain(getattr(record, name)))
        return True


class TextFormatter(logging.Formatter):
    """The text format, where a record starts a line: the lines of its traceback follow
    indented and escaped, so that none passes for a record."""

    def formatException(self, ei: Any) -> str:
        return _indented(super().formatException(ei).split("\n"))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info).split("\n"))


def _indented(lines: Iterable[str]) -> str:
    return "\n".join(f"    {escape(line)}" for line in lines)


def uwsgi_request_log(application: Callable) -> Callable:
    """`application`, giving uWSGI's request log the escaped path (the `path` logvar) of each
    request; `application` itself outside uWSGI."""
    try:
        import uwsgi  # only importable in a uWSGI worker
    except ImportError:
        return application

    def logged(environ: dict[str, Any], start_response: Callable) -> Any:
        # WSGI gives the path's bytes as latin-1; they are UTF-8 (or not: escaped as bytes).
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "backslashreplace")
        uwsgi.set_logvar("path", escape_quoted(path))
        return application(environ, start_response)

    return logged


class AccessLog(AccessLogGenerator):
    """daphne's access log, without query strings (daphne writes the URI as sent, `?token=`
    included) and escaped."""

    def write_entry(self, host: str, date: Any, request: str, *args: Any, **kwargs: Any) -> None:
        request = escape_quoted(request.partition("?")[0])
        super().write_entry(host, date, request, *args, **kwargs)


def use_daphne_access_log() -> None:
    """Have the daphne command build `AccessLog` instead of its own: call once the application
    is loaded (the command builds its server, and its access log, after that)."""
    import daphne.cli

    daphne.cli.AccessLogGenerator = AccessLog
