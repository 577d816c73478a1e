"""The client's address behind a known number of trusted proxies, resolved once per request.

Each trusted proxy appends the address it received the connection from to X-Forwarded-For
and connects to the next hop, so with N proxies in front of the web node the client is the
N-th entry from the right of the header (the right-most N-1 entries and REMOTE_ADDR are the
proxies themselves). Everything to the left of it was written by the client and is ignored:
a forged header can add entries, never replace the ones the proxies appended.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

# Set by ClientAddressMiddleware; read by the audit trail and django-axes.
REQUEST_ATTRIBUTE = "client_ip"


def _normalise(entry: str) -> str | None:
    """One X-Forwarded-For entry as a canonical IP address, or None when it is not one.

    Some proxies append the port ("203.0.113.7:4711", "[2001:db8::1]:4711"); it is dropped.
    """
    entry = entry.strip()
    if entry.startswith("[") and "]" in entry:
        entry = entry[1 : entry.index("]")]
    elif entry.count(":") == 1:
        entry = entry.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        return None


def client_ip_resolve(
    *, remote_addr: str | None, forwarded_for: str | None, proxy_count: int
) -> str | None:
    """The client address: REMOTE_ADDR with no proxies, else the proxy_count-th X-Forwarded-For
    entry from the right; a header too short or malformed there falls back to REMOTE_ADDR (the
    peer that really connected), so a client can never choose the address it is known by."""
    peer = _normalise(remote_addr or "")
    if proxy_count <= 0:
        return peer
    hops = (forwarded_for or "").split(",")
    if not forwarded_for or len(hops) < proxy_count:
        # Fewer hops than trusted proxies: the request did not come through all of them (or a
        # proxy is misconfigured); whatever the header says may be the client's own invention.
        return peer
    return _normalise(hops[-proxy_count]) or peer


def request_client_ip(request: HttpRequest) -> str | None:
    """The request's client address (resolved once by the middleware; resolved here for
    requests that did not pass through it, e.g. an authentication backend called directly)."""
    resolved = getattr(request, REQUEST_ATTRIBUTE, None)
    if resolved is None:
        resolved = client_ip_resolve(
            remote_addr=request.META.get("REMOTE_ADDR"),
            forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR"),
            proxy_count=settings.MEDAI_PROXY_COUNT,
        )
        setattr(request, REQUEST_ATTRIBUTE, resolved)
    return resolved
