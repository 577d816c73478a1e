"""Gunicorn's access log without tokens, search terms, cookies or credentials.

Used by the Procfile and the README's production command (``--logger-class``).
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from medai_site.core.log_redaction import REDACTED, url_redact

# Atoms holding a URL or a query string (the request line, path, query, referer and their
# raw environ/header forms).
_URL_ATOMS = ("U", "f", "{referer}i", "{raw_uri}e", "{path_info}e", "{http_referer}e")
_QUERY_ATOMS = ("q", "{query_string}e")
_SECRET_HEADERS = (
    "{authorization}i",
    "{cookie}i",
    "{x-csrftoken}i",
    "{http_authorization}e",
    "{http_cookie}e",
)


class RedactingAccessLogger(Logger):
    """Gunicorn logger whose access-log atoms are passed through log_redaction.url_redact."""

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        method, _, rest = atoms["r"].partition(" ")
        target, _, protocol = rest.rpartition(" ")
        atoms["r"] = f"{method} {url_redact(target)} {protocol}"
        for name in _URL_ATOMS:
            if isinstance(atoms.get(name), str):
                atoms[name] = url_redact(atoms[name])
        for name in _QUERY_ATOMS:
            if atoms.get(name):
                atoms[name] = url_redact("/?" + atoms[name]).removeprefix("/?")
        for name in _SECRET_HEADERS:
            if name in atoms:
                atoms[name] = REDACTED
        return atoms
