"""Production: PostgreSQL, Redis, HTTPS behind a proxy; every secret from the environment."""

import os

from django.core.exceptions import ImproperlyConfigured

from medai_site.settings.base import *  # noqa: F403
from medai_site.settings.base import (
    CELERY_BROKER_URL,
    DATABASES,
    EMAIL_BACKEND,
    EMAIL_BACKEND_ALIASES,
    env_bool,
)

if not os.environ.get("DJANGO_SECRET_KEY"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production.")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production.")
if not CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured("CELERY_BROKER_URL must point at Redis in production.")
# The device-API throttle, the lockout's cache and 2FA rate limits count across every web
# process only in a shared cache; a per-process memory cache would multiply each limit.
if not os.environ.get("CACHE_URL", "").startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured("CACHE_URL must point at a shared Redis cache in production.")
# Replaced DICOM UIDs must stay stable across a secret-key rotation and must not be derivable
# from the key that signs sessions.
if len(os.environ.get("MEDAI_DEID_UID_KEY", "")) < 32:
    raise ImproperlyConfigured(
        "MEDAI_DEID_UID_KEY must be set in production (at least 32 random characters, kept "
        "stable for the deployment)."
    )
if (
    not os.environ.get("DJANGO_EMAIL_BACKEND")
    or EMAIL_BACKEND not in EMAIL_BACKEND_ALIASES.values()
):
    raise ImproperlyConfigured(
        "DJANGO_EMAIL_BACKEND must be 'smtp' (with DJANGO_EMAIL_HOST) or 'spool' (with "
        "DJANGO_EMAIL_FILE_PATH, a private folder) in production; the console backend would "
        "write set-password links and alert notices to the log."
    )
if EMAIL_BACKEND == EMAIL_BACKEND_ALIASES["smtp"] and not os.environ.get("DJANGO_EMAIL_HOST"):
    raise ImproperlyConfigured("DJANGO_EMAIL_HOST must name the mail relay in production.")
if EMAIL_BACKEND == EMAIL_BACKEND_ALIASES["spool"] and not os.environ.get("DJANGO_EMAIL_FILE_PATH"):
    raise ImproperlyConfigured("DJANGO_EMAIL_FILE_PATH must name the private mail spool folder.")

DEBUG = False
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 60 * 60)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]
# Web nodes sit behind one HTTPS load balancer unless DJANGO_PROXY_COUNT says otherwise; the
# client is the entry that balancer appended to X-Forwarded-For (core.client_address).
MEDAI_PROXY_COUNT = int(os.environ.get("DJANGO_PROXY_COUNT", "1"))
