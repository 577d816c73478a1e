"""Tests: the real PostgreSQL and Redis the CI machine runs (see bin/test)."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/medai")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("CACHE_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-any-deployment-0123456789")

from medai_site.settings.base import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# Test-only job kinds (a slow, countable job for the fault tests) live in tests/support.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.support"]  # noqa: F405

# One test database per checkout, so two checkouts on one machine never drop each other's.
_checkout = __import__("hashlib").sha256(str(BASE_DIR).encode()).hexdigest()[:8]  # noqa: F405
DATABASES["default"]["TEST"] = {  # noqa: F405
    "NAME": os.environ.get("MEDAI_TEST_DB") or f"test_medai_{_checkout}"
}
# A second alias on the same test database (Django's test mirror), so the replica routing is
# tested on every run; analytics use it only where MEDAI_ANALYTICS_DATABASE says "replica"
# (MEDAI_DATABASE_REPLICA_URL, or a test's settings override).
DATABASES.setdefault(  # noqa: F405
    "replica",
    {**DATABASES["default"], "TEST": {"MIRROR": "default"}},  # noqa: F405
)
