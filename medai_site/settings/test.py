"""Tests: the real PostgreSQL and Redis the CI machine runs (see bin/test)."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/medai")
# bin/test runs pytest in parallel processes (pytest-xdist sets PYTEST_XDIST_WORKER=gw0, gw1, …
# before settings load): each gets its own broker and cache database, as it gets its own test
# database, so one process's cache.clear() or queue never reaches another's. Set into os.environ,
# so the real processes an end-to-end test starts inherit them.
_XDIST_REDIS_DBS = [(14, 13), (15, 0), (12, 11), (10, 9), (8, 7), (6, 5), (4, 3), (2, 1)]
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_broker_db, _cache_db = _XDIST_REDIS_DBS[int(_xdist_worker.removeprefix("gw") or 0) % 8]
os.environ.setdefault("CELERY_BROKER_URL", f"redis://127.0.0.1:6379/{_broker_db}")
os.environ.setdefault("CACHE_URL", f"redis://127.0.0.1:6379/{_cache_db}")
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
