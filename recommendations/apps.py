"""App config of the reusable recommendations app."""
from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate


class RecommendationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recommendations"
    verbose_name = "Recommendations"

    def ready(self):
        from . import checks as recommendation_checks
        from . import schedule
        from . import signals  # noqa: F401  (connects on-save and on-commit hooks)
        from .experiments import assignment  # noqa: F401  (forgets cached experiments on every change)
        from .experiments import checks as experiment_checks

        checks.register(recommendation_checks.check_settings, "recommendations")
        checks.register(recommendation_checks.check_database, "recommendations")
        checks.register(experiment_checks.check_experiment_settings, "recommendations")
        checks.register(experiment_checks.check_running_experiments, "recommendations", checks.Tags.database)
        post_migrate.connect(schedule.periodic_tasks_install, sender=self, dispatch_uid="recommendations.schedule")
