"""Settings of the host project: a shop with customers, products, purchases and reviews.

Nothing here comes from the BRE site: no ``articles``, no ``bre_site``. ``DATABASE_URL``
is honoured (PostgreSQL on CI) with a test database name of its own.
"""
import os
import tempfile
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "hostproject-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "recommendations",
    "tests.hostproject.shop",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.hostproject.urls"
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
            ],
        },
    },
]

_url = os.environ.get("DATABASE_URL", "sqlite:///" + os.path.join(tempfile.gettempdir(), "bre-hostproject.sqlite3"))
DATABASES = {"default": dj_database_url.parse(_url)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so that worker threads (tests/test_worker.py) share it without table locks.
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"bre-hostproject-test-{os.getpid()}.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
else:
    # Never share the main suite's test database: both runs can be alive at once.
    DATABASES["default"]["TEST"] = {"NAME": f"test_bre_hostproject_{os.getpid()}"}

AUTH_USER_MODEL = "shop.Customer"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
# The shop speaks English and German (the Accept-Language header chooses): the app's explanations follow.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "German")]
STATIC_URL = "static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Celery: the project's own app (tests/hostproject/celery.py) reads these. Tests run eagerly.
CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True

RECOMMENDATIONS = {
    "ITEM_MODELS": ["shop.Product"],
    "INTERACTIONS": [
        {"model": "shop.Purchase", "user_field": "buyer", "item_field": "product", "kind": "weight",
         "weight_field": "quantity", "timestamp_field": "purchased_at"},
        {"model": "shop.Review", "user_field": "author", "item_field": "product", "kind": "rating",
         "stars_field": "stars", "timestamp_field": "created_at"},
    ],
    "TEXT_FIELDS": {"shop.Product": ["name", "description"]},
    "ITEM_FILTERS": {"shop.Product": {"is_active": True}},
    "ALGORITHM": "itemknn",
    "ALGORITHM_PARAMS": {"top_k": 10},
    "N_RECOMMENDATIONS": 6,
    "N_SIMILAR": 5,
    "BUILD_CHUNK_SIZE": 3,
    "REFRESH_DEBOUNCE_SECONDS": 0,
}
