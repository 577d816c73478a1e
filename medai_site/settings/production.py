"""Production: PostgreSQL, Redis, HTTPS behind a proxy; every secret from the environment."""

import os

from django.core.exceptions import ImproperlyConfigured

from medai_site.settings.base import *  # noqa: F403
from medai_site.settings.base import CELERY_BROKER_URL, DATABASES, env_bool

if not os.environ.get("DJANGO_SECRET_KEY"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production.")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production.")
if not CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured("CELERY_BROKER_URL must point at Redis in production.")

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
