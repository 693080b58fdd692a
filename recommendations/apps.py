"""App config of the reusable recommendations app."""
from django.apps import AppConfig
from django.core import checks


class RecommendationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recommendations"
    verbose_name = "Recommendations"

    def ready(self):
        from . import checks as recommendation_checks
        from . import signals  # noqa: F401  (connects on-save and on-commit hooks)

        checks.register(recommendation_checks.check_settings, "recommendations")
