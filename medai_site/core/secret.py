"""A per-installation Django secret key for the embedded default."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_or_create_secret_key(path: Path) -> str:
    """Return the key stored at ``path``, creating it (mode 600) on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # O_EXCL: when web and worker start together only one of them writes the key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(64))
    for _ in range(50):
        key = path.read_text().strip()
        if key:
            return key
        import time

        time.sleep(0.05)
    raise RuntimeError(f"Secret key file {path} is empty.")
