#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# What a command's exit waits for the frames of its writes to be published; what is left (Redis
# away) stays in the outbox for the servers' relays (myproject.realtime.outbox).
EXIT_FLUSH_TIMEOUT = 5.0


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    finally:
        from django.apps import apps

        if apps.ready:
            from myproject.realtime import outbox

            outbox.relay().flush_own(EXIT_FLUSH_TIMEOUT)


if __name__ == "__main__":
    main()
