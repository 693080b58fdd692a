"""Settings of the test suite: the site's settings plus the reusable app's test models."""
from bre_site.settings import *  # noqa: F401,F403
from bre_site.settings import INSTALLED_APPS, REST_FRAMEWORK

INSTALLED_APPS = [*INSTALLED_APPS, "tests.recommendations.testapp"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"writes": "10000/minute", "beacon": "10000/minute"},
}
