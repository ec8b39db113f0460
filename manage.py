#!/usr/bin/env python
"""Django's command-line utility; a bad chat configuration prints its message and exits 1."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    from django.core.management import execute_from_command_line

    from chatui.apps import AppConfigError

    try:
        execute_from_command_line(sys.argv)
    except AppConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
