"""Settings of the BRE site, read from the environment with safe defaults.

Environment variables:

* ``DJANGO_ENV``: ``development`` (default) or ``production``. Production turns
  ``DEBUG`` off, requires ``SECRET_KEY`` and ``ALLOWED_HOSTS`` and enables secure
  cookies and HSTS.
* ``SECRET_KEY``, ``DEBUG``, ``ALLOWED_HOSTS`` (comma separated).
* ``DATABASE_URL``: default ``sqlite:///var/db.sqlite3``.
* ``CELERY_BROKER_URL``: default Kombu's ``filesystem://`` transport under ``var/``,
  which needs no server. ``CELERY_RESULT_BACKEND`` defaults to the broker when it
  is Redis and to ``file://var/celery-results`` otherwise.
"""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BRE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DJANGO_ENV = os.environ.get("DJANGO_ENV", "development")
PRODUCTION = DJANGO_ENV == "production"

if PRODUCTION:
    SECRET_KEY = os.environ.get("SECRET_KEY", "")
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment when DJANGO_ENV=production.")
    DEBUG = _env_bool("DEBUG", False)
    ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h]
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set (comma separated) when DJANGO_ENV=production.")
else:
    # A development-only key; production refuses to start without its own.
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-insecure-key-not-for-production")
    DEBUG = _env_bool("DEBUG", True)
    ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "recommendations",
    "articles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A fresh recommendation_id per response for each list of a (cached) page; outside the ETag, so a 304 records nothing.
    "recommendations.impressions.pages.ImpressionMiddleware",
    # An ETag from each page's bytes: a reader's browser revalidates an unchanged page with a 304.
    "django.middleware.http.ConditionalGetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "bre_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "bre_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "bre_site.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a worker writes; the timeout rides out short write locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE",
         "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend, with a per-request health check that costs no round trip while the
    # connection is idle and healthy (see bre_site/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "bre_site.postgresql"
    # Server-side parameters let psycopg prepare a statement a connection runs often (from its
    # DB_PREPARE_THRESHOLD-th run), so PostgreSQL stops planning the hot queries (token lookup,
    # stored picks) on every request. Turn off with DB_SERVER_SIDE_BINDING=0 behind PgBouncer in
    # transaction pooling mode, which cannot keep prepared statements.
    if os.environ.get("DB_SERVER_SIDE_BINDING", "1") == "1":
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": int(os.environ.get("DB_PREPARE_THRESHOLD", "5"))}
        )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Django's database sessions and ModelBackend, each with its per-request lookup compiled once per
# process (bre_site/sessions.py, bre_site/auth.py): every request still reads both from the database.
SESSION_ENGINE = "bre_site.sessions"
AUTHENTICATION_BACKENDS = ["bre_site.auth.ModelBackend"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# ``pages`` holds rendered pages, fragments and API lists (articles/page_cache.py). Their keys carry the active build, the
# generation of served results and the reader's version, so an entry is never stale, only unused: the
# embedded default, a memory cache per process, needs no server and no cross-process invalidation.
# CACHE_URL (redis://host:port/db) shares one Redis cache between the web processes instead.
CACHE_URL = os.environ.get("CACHE_URL", "")
PAGE_CACHE_TIMEOUT = int(os.environ.get("PAGE_CACHE_TIMEOUT", "600"))
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "pages": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bre-pages",
              "TIMEOUT": PAGE_CACHE_TIMEOUT, "OPTIONS": {"MAX_ENTRIES": 1000}},
}
if CACHE_URL:
    # Short socket timeouts: a cache that is down costs a render, never a hung request.
    CACHES["pages"] = {"BACKEND": "bre_site.redis_cache.RedisCache", "LOCATION": CACHE_URL,
                       "KEY_PREFIX": "bre-pages", "TIMEOUT": PAGE_CACHE_TIMEOUT,
                       "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous API request then gets 401 with "WWW-Authenticate: Token" (403 with session first).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "recommendations.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "articles.api.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "writes": os.environ.get("BRE_WRITE_THROTTLE", "600/minute"),
        "beacon": os.environ.get("BRE_BEACON_THROTTLE", "600/minute"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "BRE API",
    "DESCRIPTION": "Articles, books, reads, ratings and recommendations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page is served from the drf-spectacular-sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every operation documents its JSON error responses (400/401/403/404/429...).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "articles.api.schema.error_responses_hook",
    ],
}

# --- Celery ---------------------------------------------------------------------------------
_CELERY_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "results", "control"):
        (_CELERY_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_CELERY_DIR / "queue"),
        "data_folder_out": str(_CELERY_DIR / "queue"),
        "processed_folder": str(_CELERY_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(_CELERY_DIR / "control"),
        # Kombu's default poll interval is what a saved item's task would wait before its worker saw it.
        "polling_interval": 0.2,
    }
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", f"file://{_CELERY_DIR / 'results'}")
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    _default_backend = CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "rpc://"
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", _default_backend)
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# A request that queues a task must not hang while the broker is down: publishing gives up soon
# and the refresh stays pending in the database (UserRefresh) until pending_refreshes_run runs.
# Which of the app's tasks ignore their results is the app's own business (recommendations/tasks.py).
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.environ.get("CELERY_BROKER_CONNECTION_TIMEOUT", "2"))
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}

# Opening an item the reader opened less than this ago continues that read instead of recording another.
READ_REOPEN_SECONDS = int(os.environ.get("READ_REOPEN_SECONDS", "1800"))

# Worker processes (builds, refreshes) yield the CPU to the web processes and stay within bounds
# (bre_site/worker_limits.py, applied when a Celery worker and each of its pool processes start).
WORKER_NICE = int(os.environ.get("WORKER_NICE", "10"))
WORKER_BLAS_THREADS = int(os.environ.get("WORKER_BLAS_THREADS", "1"))
WORKER_MEMORY_LIMIT_MB = int(os.environ.get("WORKER_MEMORY_LIMIT_MB", "0"))

# --- Recommendations --------------------------------------------------------------------------
RECOMMENDATIONS = {
    "ITEM_MODELS": ["articles.Article", "articles.Book"],
    "INTERACTIONS": [
        {"model": "articles.Read", "user_field": "user", "item_field": "item", "kind": "read",
         "timestamp_field": "created_at", "dwell_field": "dwell_seconds", "progress_field": "progress"},
        {"model": "articles.Rating", "user_field": "user", "item_field": "item", "kind": "rating",
         "timestamp_field": "updated_at", "stars_field": "stars"},
        {"model": "articles.NotInterested", "user_field": "user", "item_field": "item",
         "kind": "not_interested", "timestamp_field": "created_at"},
    ],
    "TEXT_FIELDS": {
        "articles.Article": ["title", "summary", "body", "tags"],
        "articles.Book": ["title", "authors", "description", "tags"],
    },
    "ADAPTER": "articles.recommendation_adapter.ArticlesAdapter",
    # The API's neighbour lists share the pages' cache (Redis when CACHE_URL is set).
    "CACHE": "pages",
    # Off only to measure what recording costs (benchmarks/serving.py --impressions both).
    "IMPRESSIONS": _env_bool("RECOMMENDATIONS_IMPRESSIONS", True),
}

# --- Production hardening -----------------------------------------------------------------------
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {"recommendations": {"level": os.environ.get("BRE_LOG_LEVEL", "INFO")}},
}
