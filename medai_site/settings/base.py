"""Settings shared by every deployment shape; environment variables choose the shape.

The embedded default (``local``) needs no server: SQLite, Celery over kombu's filesystem
transport, media in a local folder. ``production`` requires PostgreSQL, Redis and a secret key.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from whitenoise.compress import Compressor  # type: ignore[import-untyped]

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("MEDAI_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable ("1", "true", "yes" are true)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated environment variable."""
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "medai_site.core",
    "medai_site.audit",
    "medai_site.patients",
    "medai_site.jobs",
    "medai_site.registry",
]

MIDDLEWARE = [
    # First, so every later middleware, view and audit event sees the same client address.
    "medai_site.core.middleware.ClientAddressMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "medai_site.core.middleware.IdleTimeoutMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # After sign-in and idle checks: a session still owing its second factor reaches only
    # the enrolment, verification and sign-out pages (the admin included).
    "medai_site.core.middleware.TwoFactorMiddleware",
    "medai_site.core.middleware.PortalBoundaryMiddleware",
    # Audits every "not in your care teams" 404 a view raises (ObjectNotVisible).
    "medai_site.audit.middleware.AccessDeniedAuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Maps a full disk (ENOSPC/EDQUOT) to a 507 with a message instead of a 500.
    "medai_site.core.middleware.StorageFullMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Axes last, as its documentation requires, so it sees the final authentication outcome.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "medai_site.urls"
WSGI_APPLICATION = "medai_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "medai_site.core.context_processors.navigation",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
# DATABASE_URL (e.g. postgres://medai@db.hospital.local/medai) switches to PostgreSQL.
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'medai.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker processes share the file: WAL lets readers proceed during a write, and
    # IMMEDIATE transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
# MEDAI_DATABASE_REPLICA_URL (same form as DATABASE_URL): a streaming standby of the primary.
# Population analytics for researchers and model admins read from it (medai_site.core.replica);
# every write, and every other read, stays on the primary. Unset: everything reads "default".
DATABASE_REPLICA_URL = os.environ.get("MEDAI_DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=60)
    # Tests run the replica as a second connection to the test database.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
MEDAI_ANALYTICS_DATABASE = "replica" if DATABASE_REPLICA_URL else "default"
DATABASE_ROUTERS = ["medai_site.core.replica.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["CACHE_URL"],
        }
        if os.environ.get("CACHE_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Auth and sessions ------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Idle timeout: a shared ward computer must not stay signed in. Background polling (job
# progress, live boards) does not count as activity; see core.middleware.IdleTimeoutMiddleware.
MEDAI_IDLE_TIMEOUT = timedelta(minutes=int(os.environ.get("MEDAI_IDLE_TIMEOUT_MINUTES", "15")))
SESSION_COOKIE_AGE = 12 * 60 * 60

# Failed-login lockout (django-axes): 5 failures for one username from one address lock it
# for 30 minutes; every failure is also written to the audit log.
AXES_FAILURE_LIMIT = int(os.environ.get("MEDAI_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=30)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The lockout is keyed on the address core.client_address resolves (the same one the audit
# trail records), never on the load balancer's.
AXES_CLIENT_IP_CALLABLE = "medai_site.core.client_address.request_client_ip"
# Trusted proxies (load balancer, reverse proxy) in front of the web nodes; each appends one
# X-Forwarded-For entry. 0: the embedded default is reached directly (REMOTE_ADDR).
MEDAI_PROXY_COUNT = int(os.environ.get("DJANGO_PROXY_COUNT", "0"))

# Staff two-factor sign-in (django-otp TOTP + single-use recovery codes): superusers, staff
# and model admins always; clinicians too with MEDAI_2FA_CLINICIANS=1. Wrong codes wait
# 1, 2, 4, 8 ... seconds (doubling per failure, per user).
MEDAI_2FA_CLINICIANS = env_bool("MEDAI_2FA_CLINICIANS", False)
OTP_TOTP_ISSUER = os.environ.get("MEDAI_2FA_ISSUER", "MedAI")
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
# The admin may list and delete a user's devices (hospital IT resets a lost phone), never
# show a key or QR code: that would hand an administrator someone else's second factor.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- Static and media -------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # Plotly's JavaScript comes from the installed package: no CDN on a hospital network.
    "medai_site.core.staticfiles.PlotlyFinder",
]
# Source maps are read only by a browser's developer tools: served as they are, not compressed
# on every collectstatic (the API documentation's two bundles' maps are 5.8 MB).
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = [*Compressor.SKIP_COMPRESS_EXTENSIONS, "map"]
# Pages name static files through {% static %}, which gives the hashed (cache-busting) name:
# only those are kept, and compressed, not a second copy under the plain name.
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
FILE_UPLOAD_PERMISSIONS = 0o640
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Security headers ---------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        # Plotly.js injects its own <style> rules at run time; scripts stay strictly 'self'.
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Internationalisation -----------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("MEDAI_TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True

# --- Celery -------------------------------------------------------------------------------------
# CELERY_BROKER_URL=redis://redis.hospital.local:6379/0 in production; the embedded default
# uses kombu's filesystem transport, so nothing needs installing.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
BROKER_FOLDER = Path(os.environ.get("MEDAI_BROKER_FOLDER", VAR_DIR / "broker"))
# The hard limit for the longest task (training); the visibility timeout must exceed it or
# Redis would hand a still-running task to a second worker.
CELERY_ML_TIME_LIMIT = int(os.environ.get("MEDAI_ML_TIME_LIMIT", str(2 * 60 * 60)))
CELERY_DEFAULT_TIME_LIMIT = int(os.environ.get("MEDAI_DEFAULT_TIME_LIMIT", str(10 * 60)))
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_FOLDER / "out"),
        "data_folder_out": str(BROKER_FOLDER / "out"),
        "control_folder": str(BROKER_FOLDER / "control"),
        "store_processed": False,
        # The folder is polled; kombu's default of once a second adds up to a second to every
        # job a clinician waits for.
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_ML_TIME_LIMIT + 15 * 60}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A web request must not hang when the broker is down: the job stays queued and the sweeper
# sends it once the broker is back.
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.environ.get("MEDAI_BROKER_CONNECT_TIMEOUT", "2"))
CELERY_BEAT_SCHEDULE = {
    "jobs-sweep": {"task": "jobs.sweep", "schedule": 30.0, "options": {"queue": "default"}},
    # Deletes media files left by requests or jobs killed before their transaction committed.
    "media-sweep": {
        "task": "core.media_sweep",
        "schedule": 3600.0,
        "options": {"queue": "default", "expires": 3500},
    },
    # Scores patients whose new vital signs lack a deterioration-risk score (idempotent; an
    # expired run is simply caught up by the next).
    "risk-refresh": {
        "task": "remote_care.risk_refresh",
        "schedule": 15.0,
        "options": {"queue": "default", "expires": 14},
    },
    # Queues scans stored while no imaging model could classify them, once one can (an
    # activation also queues them at once; this catches what a crash or a race left).
    "scans-awaiting-model": {
        "task": "diagnosis.scans_awaiting_model_queue",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 55},
    },
    # Rolls up vital signs for long charts (idempotent; an expired run is caught up by the
    # next, and a chart first rolls up what this has not reached yet).
    "vitals-rollup-sweep": {
        "task": "remote_care.vitals_rollup_sweep",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 55},
    },
    # Rolls up the observation sets added since its last run for the population page
    # (idempotent; the page is at most about a minute behind the device API).
    "analytics-rollup-catch-up": {
        "task": "remote_care.analytics_rollup_catch_up",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 55},
    },
    # Creates the coming months' observation partitions on PostgreSQL well before they are
    # needed (idempotent; a missed day is caught up by the next, three months ahead).
    "observation-partitions-ensure": {
        "task": "remote_care.observation_partitions_ensure",
        "schedule": 86400.0,
        "options": {"queue": "default", "expires": 3600},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# The population page reads the roll-up tables (True) or aggregates the raw observation sets.
MEDAI_ANALYTICS_ROLLUPS = env_bool("MEDAI_ANALYTICS_ROLLUPS", True)

# Pre-trained models shipped in the repository (data/models/<slug>/, see
# medai_site/registry/shipped.py): seed_demo puts them into service at the first start.
MEDAI_SHIPPED_MODELS_DIR = Path(
    os.environ.get("MEDAI_SHIPPED_MODELS_DIR", BASE_DIR / "data" / "models")
)

# Parsed training data cached between jobs (e.g. PhysioNet 2012 as arrays).
MEDAI_CACHE_DIR = Path(os.environ.get("MEDAI_CACHE_DIR", VAR_DIR / "cache"))
# The deterioration model's training data (shipped in data/, ODC-BY; see its ATTRIBUTION.md).
MEDAI_PHYSIONET2012_DIR = Path(
    os.environ.get("MEDAI_PHYSIONET2012_DIR", BASE_DIR / "data" / "physionet2012")
)

# --- Jobs -----------------------------------------------------------------------------------------
# A running job writes a heartbeat every MEDAI_JOB_HEARTBEAT seconds; the sweeper treats one
# silent for MEDAI_JOB_STALE_AFTER as stranded (dead worker) and re-enqueues or fails it.
MEDAI_JOB_HEARTBEAT = float(os.environ.get("MEDAI_JOB_HEARTBEAT", "5"))
MEDAI_JOB_STALE_AFTER = timedelta(seconds=float(os.environ.get("MEDAI_JOB_STALE_AFTER", "60")))
MEDAI_JOB_REQUEUE_AFTER = timedelta(seconds=float(os.environ.get("MEDAI_JOB_REQUEUE_AFTER", "120")))
MEDAI_JOB_MAX_ATTEMPTS = int(os.environ.get("MEDAI_JOB_MAX_ATTEMPTS", "3"))

# --- Fleet ----------------------------------------------------------------------------------------
# Every Celery worker writes its own row (queues, pool, CPU/GPU) at start and then every
# MEDAI_WORKER_HEARTBEAT_SECONDS; one silent for MEDAI_WORKER_OFFLINE_AFTER seconds (a killed
# process, a lost machine) is shown offline and routing stops counting on it.
MEDAI_WORKER_HEARTBEAT_SECONDS = float(os.environ.get("MEDAI_WORKER_HEARTBEAT_SECONDS", "10"))
MEDAI_WORKER_OFFLINE_AFTER = float(
    os.environ.get("MEDAI_WORKER_OFFLINE_AFTER", str(3 * MEDAI_WORKER_HEARTBEAT_SECONDS))
)
# Resources a worker declares beyond what it detects, comma-separated ("gpu"): for ops (a GPU
# that the probe cannot see, e.g. behind a container runtime) and tests. Empty: detect only.
MEDAI_WORKER_RESOURCES = os.environ.get("MEDAI_WORKER_RESOURCES", "")

# --- Model governance ------------------------------------------------------------------------
# Every registered version is validated on its task's locked held-out set by a registry.validate
# job (off: versions register without one, e.g. a bulk import that validates later).
MEDAI_VALIDATE_ON_REGISTER = os.environ.get("MEDAI_VALIDATE_ON_REGISTER", "1") != "0"
# The largest held-out set a family scores (items, in its fixed order): bounded so a CPU
# validation takes seconds to a minute. A task's set, once locked, keeps the size it was locked
# with (its recorded source says), so changing this affects only tasks not yet validated.
MEDAI_HELDOUT_MAX_ITEMS = int(os.environ.get("MEDAI_HELDOUT_MAX_ITEMS", "600"))

# Torch threads per worker process: the cores divided among the concurrent processes.
MEDAI_TORCH_THREADS = int(os.environ.get("MEDAI_TORCH_THREADS", "0")) or None

# Mail carries set-password links: it goes to a relay ("smtp") or to a private spool folder
# ("spool", files readable by the service account only), never to the console, whose output
# ends up in shared logs. The production settings refuse anything else.
EMAIL_BACKEND_ALIASES = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "spool": "medai_site.core.mail_spool.PrivateSpoolEmailBackend",
}
_email_backend = os.environ.get("DJANGO_EMAIL_BACKEND") or "spool"
EMAIL_BACKEND = EMAIL_BACKEND_ALIASES.get(_email_backend, _email_backend)
EMAIL_FILE_PATH = os.environ.get("DJANGO_EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "medai@localhost")

# Every handler redacts URLs (set-password tokens, ?q= patient searches): Django's request
# logger and runserver's request lines carry them. Gunicorn's access log is redacted by
# core.access_log.RedactingAccessLogger (Procfile, README).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "medai_site.core.log_redaction.RedactSecretsFilter"},
        "dicom_header": {"()": "medai_site.core.log_redaction.DicomHeaderRedactFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact"],
        },
        # pydicom quotes header values in its messages ("Invalid value for VR UI: '...'"),
        # and a header can carry a patient's name anywhere: every pydicom.* record comes
        # through this handler (the logger does not propagate), which withholds the values.
        "pydicom": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["dicom_header"],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("MEDAI_LOG_LEVEL", "INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "pydicom": {"handlers": ["pydicom"], "level": "WARNING", "propagate": False},
        # Django routes warnings here; one raised inside pydicom may quote a header value.
        "py.warnings": {"filters": ["dicom_header"]},
    },
}

# --- Diagnosis ------------------------------------------------------------------------------------
INSTALLED_APPS += ["diagnosis"]
DIAGNOSIS_MAX_FILE_BYTES = int(os.environ.get("MEDAI_SCAN_MAX_MB", "200")) * 1024 * 1024
# Rows x columns x frames x samples, checked from the header before any pixel is decoded.
DIAGNOSIS_MAX_PIXELS = int(os.environ.get("MEDAI_SCAN_MAX_PIXELS", str(400_000_000)))
# Keyed replacement of DICOM UIDs: stable for a deployment so a series stays linked.
# Decoded values (rows x columns x frames x samples) one upload request may decode in all;
# beyond it the request is refused with a 413 (the per-file cap above still applies).
DIAGNOSIS_MAX_REQUEST_PIXELS = int(
    os.environ.get("MEDAI_SCAN_MAX_REQUEST_PIXELS", str(1_000_000_000))
)
# "Score anyway" on a series of more frames than this runs as a job (progress page) rather
# than in the web request.
DIAGNOSIS_OVERRIDE_SYNC_FRAMES = int(os.environ.get("MEDAI_OVERRIDE_SYNC_FRAMES", "16"))
# Media files no row references are deleted by the hourly sweep once older than this; it must
# exceed the longest request or job that could still be about to commit them.
MEDAI_ORPHAN_MEDIA_GRACE = timedelta(
    hours=float(os.environ.get("MEDAI_ORPHAN_MEDIA_GRACE_HOURS", "6"))
)
MEDAI_DEID_UID_KEY = os.environ.get("MEDAI_DEID_UID_KEY", "")
# The DICOM C-STORE receiver (`manage.py dicom_listen`, started by bin/run from the Procfile):
# its AE title, port, the calling AE titles it accepts (empty: any), the model task studies
# are classified with when no header routes them elsewhere ("" = the first imaging model in
# service), and the issuer of MedAI's MRNs: a Patient ID issued by another authority
# (IssuerOfPatientID) never matches an MRN.
MEDAI_DICOM_AE_TITLE = os.environ.get("MEDAI_DICOM_AE_TITLE", "MEDAI")
MEDAI_DICOM_PORT = int(os.environ.get("MEDAI_DICOM_PORT", "11112"))
MEDAI_DICOM_ALLOW = env_list("MEDAI_DICOM_ALLOW", [])
# DICOM over TLS (PEM files): with a certificate and key the receiver speaks TLS only; with a CA
# it also requires client certificates that CA signed. Empty: plain TCP.
MEDAI_DICOM_TLS_CERT = os.environ.get("MEDAI_DICOM_TLS_CERT", "")
MEDAI_DICOM_TLS_KEY = os.environ.get("MEDAI_DICOM_TLS_KEY", "")
MEDAI_DICOM_TLS_CA = os.environ.get("MEDAI_DICOM_TLS_CA", "")
MEDAI_DICOM_TASK = os.environ.get("MEDAI_DICOM_TASK", "")
MEDAI_DICOM_MRN_ISSUER = os.environ.get("MEDAI_DICOM_MRN_ISSUER", "")
# A study is filed once no instance of it has arrived from its sender for this long (a PACS
# may send one study over several associations).
MEDAI_DICOM_STUDY_SETTLE_SECONDS = float(os.environ.get("MEDAI_DICOM_STUDY_SETTLE_SECONDS", "5"))
# DICOMweb STOW-RS (/dicomweb/studies): the most one request may carry (MB; each instance is
# also held to MEDAI_SCAN_MAX_MB) and the requests per sender token ("off" turns it off),
# counted in the default cache like the device API's.
MEDAI_DICOMWEB_MAX_REQUEST_BYTES = int(os.environ.get("MEDAI_DICOMWEB_MAX_MB", "1024")) << 20
_dicomweb_rate = os.environ.get("MEDAI_DICOMWEB_RATE_LIMIT", "120/min")
MEDAI_DICOMWEB_RATE_LIMIT: str | None = _dicomweb_rate
if _dicomweb_rate.strip().lower() in {"", "off", "none", "0"}:
    MEDAI_DICOMWEB_RATE_LIMIT = None
elif not re.fullmatch(r"[1-9][0-9]*/[smhd][a-z]*", _dicomweb_rate.strip()):
    raise ImproperlyConfigured(
        f"MEDAI_DICOMWEB_RATE_LIMIT must look like '120/min' or 'off'; got {_dicomweb_rate!r}"
    )
# Results sent to PACS destinations (C-STORE or STOW-RS): tries per send job on a network
# failure, the first wait between them (then x4 each time), and each network step's timeout.
MEDAI_DICOM_SEND_ATTEMPTS = int(os.environ.get("MEDAI_DICOM_SEND_ATTEMPTS", "3"))
MEDAI_DICOM_SEND_BACKOFF_SECONDS = float(os.environ.get("MEDAI_DICOM_SEND_BACKOFF_SECONDS", "2"))
MEDAI_DICOM_SEND_TIMEOUT = float(os.environ.get("MEDAI_DICOM_SEND_TIMEOUT", "30"))
# A send to a destination another send failed to reach within this many seconds (none reaching
# it since) is tried once, without the waits: a PACS that is down does not hold the default
# queue's workers for the backoff of every result queued for it. 0 turns this off.
MEDAI_DICOM_SEND_FAIL_FAST_SECONDS = float(
    os.environ.get("MEDAI_DICOM_SEND_FAIL_FAST_SECONDS", "60")
)
# Server folders a model admin may register data sets from (os.pathsep-separated). A path is
# accepted only if it resolves inside one of them, and never inside MEDIA_ROOT, where patient
# scans live in exactly the "folder of labelled images" shape.
MEDAI_DATASET_ROOTS = [
    Path(p)
    for p in os.environ.get("MEDAI_DATASET_ROOTS", str(BASE_DIR / "data")).split(os.pathsep)
    if p.strip()
]
# Data sets uploaded from the browser: the upload itself, what its archive may expand to, how
# many entries it may have and how far one entry may expand (zip bombs).
MEDAI_DATASET_UPLOAD_MAX_BYTES = int(os.environ.get("MEDAI_DATASET_UPLOAD_MAX_MB", "500")) << 20
MEDAI_DATASET_MAX_UNCOMPRESSED_BYTES = (
    int(os.environ.get("MEDAI_DATASET_MAX_UNCOMPRESSED_MB", "4096")) << 20
)
MEDAI_DATASET_MAX_ENTRIES = int(os.environ.get("MEDAI_DATASET_MAX_ENTRIES", "200000"))
MEDAI_DATASET_MAX_RATIO = float(os.environ.get("MEDAI_DATASET_MAX_RATIO", "100"))
DATA_UPLOAD_MAX_NUMBER_FILES = 510

INSTALLED_APPS += ["treatment"]

# --- Drug design ----------------------------------------------------------------------------------
INSTALLED_APPS += ["drugs"]
DRUGS_MAX_UPLOAD_BYTES = int(os.environ.get("MEDAI_MOLECULE_UPLOAD_MAX_MB", "200")) * 1024 * 1024
# MOSES test molecules the metrics (frag, scaff, SNN, FCD) compare with: the shipped 10k subsets.
DRUGS_METRICS_TEST_SIZE = int(os.environ.get("MEDAI_DRUGS_METRICS_TEST_SIZE", "10000"))
# The goal-directed comparison's training-set baseline: a seeded sample of the MOSES training
# set scored with each run's objective (cached per objective under MEDAI_CACHE_DIR/drugs-goal).
# QED + SA cost about 5 ms of CPU a molecule: 100,000 take some 8 minutes once per objective;
# all 1.58M would take over 2 hours.
DRUGS_GOAL_BASELINE_SAMPLE = int(os.environ.get("MEDAI_DRUGS_GOAL_BASELINE_SAMPLE", "100000"))
DRUGS_GOAL_BASELINE_SEED = 0

# --- Remote care ----------------------------------------------------------------------------------
INSTALLED_APPS += ["remote_care"]
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
# Requests per device ("120/min", "10/s", ...); "off" turns the limit off. Counted in the
# default cache, so set CACHE_URL for several web processes to share the count.
_device_rate = os.environ.get("MEDAI_DEVICE_RATE_LIMIT", "120/min")
MEDAI_DEVICE_RATE_LIMIT: str | None = _device_rate
if _device_rate.strip().lower() in {"", "off", "none", "0"}:
    MEDAI_DEVICE_RATE_LIMIT = None
elif not re.fullmatch(r"[1-9][0-9]*/[smhd][a-z]*", _device_rate.strip()):
    raise ImproperlyConfigured(
        "MEDAI_DEVICE_RATE_LIMIT must look like '120/min' or 'off'; "
        f"got {MEDAI_DEVICE_RATE_LIMIT!r}"
    )

# --- Remote-care API schema (drf-spectacular; Swagger UI from the sidecar package, no CDN) -----
INSTALLED_APPS += ["drf_spectacular", "drf_spectacular_sidecar"]
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"
SPECTACULAR_SETTINGS = {
    "TITLE": "MedAI remote-care API",
    "DESCRIPTION": "Devices post vital signs (JSON or FHIR R4) and ECG/PPG recordings.",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/remote-care/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": ["rest_framework.authentication.SessionAuthentication"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "remote_care.devices.api.schema_close_fhir_shapes",
    ],
}
