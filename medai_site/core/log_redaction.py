"""Keeps secrets and patient search terms out of every log line that carries a URL.

Set-password links carry a one-time token in the path (``/portal/activate/<uidb64>/<token>/``)
and searches carry patient names in the query string (``?q=...``). Logs are read by more
people than the audit trail (operations, log shippers), so URLs are written to them with
the values of secret URL parameters and of every query parameter replaced.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlsplit

REDACTED = "[redacted]"
# URL pattern parameters that are secrets wherever a pattern uses them.
SECRET_URL_KWARGS = frozenset({"token", "uidb64", "uid", "key", "secret"})
# A path (or full URL) inside a log message: from a slash that follows a space, a quote,
# an opening bracket or the start, or from a scheme, to the next space or quote.
_URL_IN_TEXT = re.compile(r"""(?:(?<=[\s"'(\[])|^)(?:https?://[^\s/"']+)?/[^\s"'<>]*""")


def _path_redact(path: str) -> str:
    """The path with the values of secret URL parameters of the matching pattern replaced."""
    try:
        from django.urls import Resolver404, resolve

        try:
            match = resolve(path)
        except Resolver404:
            return path
    except Exception:
        # Logging must never fail (settings not ready in a process that only logs, etc.).
        return path
    secrets = {str(v) for k, v in match.kwargs.items() if k in SECRET_URL_KWARGS and v}
    if not secrets:
        return path
    return "/".join(REDACTED if segment in secrets else segment for segment in path.split("/"))


def url_redact(url: str) -> str:
    """``url`` (a path, path?query or absolute URL) safe to log: secret path parameters and
    every query value replaced; the structure (which page, which parameters) is kept."""
    if not url or url == "-":
        return url
    parts = urlsplit(url)
    path = _path_redact(parts.path) if parts.path.startswith("/") else parts.path
    prefix = f"{parts.scheme}://{parts.netloc}" if parts.scheme else ""
    query = ""
    if parts.query:
        names = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)]
        if not names:
            names = ["?"]
        query = "?" + "&".join(f"{name}={REDACTED}" for name in names)
    return f"{prefix}{path}{query}"


def text_redact(text: str) -> str:
    """Every URL or path inside a log message redacted with url_redact."""
    return _URL_IN_TEXT.sub(lambda m: url_redact(m.group(0)), text)


class RedactSecretsFilter(logging.Filter):
    """Logging filter: rewrites the record's message with text_redact (Django's request and
    runserver loggers put the path, and runserver the whole request line, into it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        redacted = text_redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


# What may stay of a DICOM library's message: its opening words, up to the first character
# that introduces a value (pydicom writes "Invalid value for VR UI: '<raw header text>'").
_DICOM_VALUE_START = re.compile(r"""[:'"=(\[{<]""")
DICOM_WITHHELD = "[DICOM header details withheld]"


def dicom_message_redact(message: str) -> str:
    """A DICOM library's log message without any value it may quote from a header (names,
    IDs, free text): its opening words up to the first value, capped at 80 characters."""
    head = _DICOM_VALUE_START.split(message, maxsplit=1)[0].strip()
    return f"{head[:80]} {DICOM_WITHHELD}".lstrip()


class DicomHeaderRedactFilter(logging.Filter):
    """Logging filter for the pydicom logger's handler (every ``pydicom.*`` record reaches
    it) and the ``py.warnings`` logger: a DICOM header value can carry patient data, so
    pydicom's messages keep only their opening words, and a warning raised inside pydicom
    the same; tracebacks (whose text may quote a value) are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        if record.name == "py.warnings":
            if "pydicom" not in message:
                return True
            # "<file>:<line>: <Category>: <message>\n  <source line>"
            location, _, rest = message.partition(": ")
            category, _, text = rest.partition(": ")
            message_out = f"{location}: {category}: {dicom_message_redact(text)}"
        else:
            message_out = dicom_message_redact(message)
        record.msg, record.args = message_out, ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True
