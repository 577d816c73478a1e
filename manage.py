#!/usr/bin/env python
"""Django's command-line utility for MedAI."""

import os
import sys


def main() -> None:
    # The embedded default (SQLite, filesystem broker) unless the environment says otherwise.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medai_site.settings.local")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
