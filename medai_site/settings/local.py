"""The embedded default: one machine, no database or broker server to install."""

from medai_site.settings.base import *  # noqa: F403
from medai_site.settings.base import SECRET_KEY, VAR_DIR

if not SECRET_KEY:
    # A per-installation key kept beside the SQLite database, generated on first start, so a
    # laptop install never runs with a key that is published in the repository.
    from medai_site.core.secret import read_or_create_secret_key

    SECRET_KEY = read_or_create_secret_key(VAR_DIR / "secret_key")
