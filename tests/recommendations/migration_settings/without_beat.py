import os

from tests.hostproject.settings import *  # noqa: F403

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["BRE_MIGRATE_DB"],
                         "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"}}}
