"""A private mail spool: each message a file readable by the service account only.

For a deployment without an SMTP relay (and the embedded default), so set-password links
and alert notices are never printed to a shared console or log.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.mail.backends.filebased import EmailBackend


class PrivateSpoolEmailBackend(EmailBackend):
    """Django's file backend with a 0700 spool folder and 0600 message files."""

    def __init__(self, *args: Any, file_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, file_path=file_path, **kwargs)
        os.chmod(self.file_path, 0o700)  # type: ignore[attr-defined]  # set by the file backend, not in the stubs

    def open(self) -> bool:
        if self.stream is None:
            # Created with O_EXCL and 0600 before any content is written: never world-readable.
            fd = os.open(self._get_filename(), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self.stream = os.fdopen(fd, "ab")
            return True
        return False
