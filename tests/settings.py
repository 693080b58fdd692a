"""Settings of the test suite: the site's settings plus the reusable app's test models."""
from bre_site.settings import *  # noqa: F401,F403
from bre_site.settings import INSTALLED_APPS, RECOMMENDATIONS, REST_FRAMEWORK

INSTALLED_APPS = [*INSTALLED_APPS, "tests.recommendations.testapp"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"writes": "10000/minute", "beacon": "10000/minute"},
}

# The cold-item blend and exploration have tests of their own, which turn it on; the others pin the warm picks.
RECOMMENDATIONS = {**RECOMMENDATIONS, "COLD_START": False}

# Tasks run inline unless a test starts a real worker (tests/recommendations/test_worker.py).
CELERY_TASK_ALWAYS_EAGER = True

# One SQLite test database per pytest process, so that parallel runs never share a file.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    import os as _os

    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{_os.getpid()}.sqlite3")}  # noqa: F405
