"""bench/load.py's settings: the production settings, unchanged, plus the mail spool folder.

Django's file-based mail backend needs EMAIL_FILE_PATH; the production settings read it from
DJANGO_EMAIL_FILE_PATH once the mail hardening of issue #12 lands. Until then this fills it
from the same variable, so the load run sends its alert e-mails to a real (file) backend.
"""

import os

from medai_site.settings.production import *  # noqa: F403

if not globals().get("EMAIL_FILE_PATH"):
    EMAIL_FILE_PATH = os.environ["DJANGO_EMAIL_FILE_PATH"]
