from tests.recommendations.migration_settings.without_beat import *  # noqa: F403
from tests.recommendations.migration_settings.without_beat import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_beat"]
