"""Tests of promotion, the experiments' admin (validation, results page, promote button), the staff API and checks."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import reverse
from django.utils import timezone

from recommendations import services
from recommendations.build.config import algorithm_settings
from recommendations.experiments.checks import check_experiment_settings, check_running_experiments
from recommendations.experiments.models import Arm, DefaultConfiguration, Experiment
from recommendations.experiments.promote import experiment_create, experiment_promote
from recommendations.experiments.serving import picks_served
from recommendations.experiments.validation import ArmSpec
from recommendations.impressions.models import Impression
from recommendations.models import BuildRun


@pytest.mark.django_db
class PromoteTests:
    def test_promoting_an_algorithm_arm_makes_it_the_default_of_the_next_builds(self, experiment, world):
        services.full_build_run()
        treatment = experiment.arms.get(name="treatment")
        outcome = experiment_promote(experiment=experiment, arm=treatment, rebuild=False)
        assert "toppop" in outcome
        assert algorithm_settings() == ("toppop", {})
        experiment.refresh_from_db()
        assert experiment.state == Experiment.State.STOPPED and experiment.winner == treatment
        assert services.full_build_run().algorithm == "toppop"
        assert picks_served(world["users"]["space0"], surface="home").experiment == ""

    def test_promoting_a_build_arm_activates_that_build(self, world):
        old = services.full_build_run()
        services.full_build_run()
        now = timezone.now()
        experiment = experiment_create(name="b", slug="b", start=now, stop=now + timedelta(days=1), arms=[
            ArmSpec("new", 0.5, True), ArmSpec("old", 0.5, build_id=old.pk)])
        experiment_promote(experiment=experiment, arm=experiment.arms.get(name="old"))
        assert BuildRun.objects.get(is_active=True) == old

    def test_promoting_the_default_arm_changes_no_configuration(self, experiment):
        experiment_promote(experiment=experiment, arm=experiment.arms.get(name="control"))
        assert not DefaultConfiguration.objects.exists()
        assert Experiment.objects.get(pk=experiment.pk).state == Experiment.State.STOPPED

    def test_an_invalid_experiment_is_refused(self, db):
        now = timezone.now()
        with pytest.raises(Exception, match="sum to 0.9"):
            experiment_create(name="x", slug="x", start=now, stop=now + timedelta(days=1),
                              arms=[ArmSpec("a", 0.5), ArmSpec("b", 0.4)])


def _inline_data(kind="ab", shares=(0.5, 0.5), start="2030-01-01 00:00:00", stop="2030-01-08 00:00:00"):
    data = {"name": "New", "slug": "new", "kind": kind, "surfaces": "[]", "start_0": start[:10],
            "start_1": start[11:], "stop_0": stop[:10], "stop_1": stop[11:], "state": "draft", "salt": "s",
            "arms-TOTAL_FORMS": str(len(shares)), "arms-INITIAL_FORMS": "0", "arms-MIN_NUM_FORMS": "0",
            "arms-MAX_NUM_FORMS": "1000"}
    for i, share in enumerate(shares):
        data.update({f"arms-{i}-name": f"arm{i}", f"arms-{i}-share": str(share), f"arms-{i}-algorithm": "",
                     f"arms-{i}-params": "{}", f"arms-{i}-is_control": "on" if i == 0 else ""})
    return data


@pytest.mark.django_db
class ExperimentAdminTests:
    url = staticmethod(lambda: reverse("admin:recommendations_experiment_add"))

    def test_a_valid_experiment_is_saved(self, admin_client, testapp_settings):
        response = admin_client.post(self.url(), _inline_data())
        assert response.status_code == 302, response.content.decode()[:2000]
        assert Experiment.objects.get(slug="new").arms.count() == 2

    @pytest.mark.parametrize("data, message", [
        (_inline_data(shares=(0.5, 0.6)), "sum to 1.1"),
        (_inline_data(kind="interleaving", shares=(0.4, 0.3, 0.3)), "exactly 2 arms"),
        (_inline_data(stop="2029-01-01 00:00:00"), "start must come before the stop"),
    ])
    def test_invalid_experiments_are_refused(self, admin_client, testapp_settings, data, message):
        response = admin_client.post(self.url(), data)
        assert response.status_code == 200 and message in response.content.decode()
        assert not Experiment.objects.exists()

    def test_results_page_shows_metrics_and_the_srm_warning(self, admin_client, experiment):
        for i in range(2000):
            Impression.objects.create(recommendation_id=uuid.uuid4(), session_hash=f"h{i}", surface="home",
                                      experiment=experiment.slug, arm="control" if i < 1100 else "treatment", items=[])
        response = admin_client.get(reverse("admin:recommendations_experiment_results", args=[experiment.pk]))
        body = response.content.decode()
        assert response.status_code == 200
        assert 'data-srm="flagged"' in body and 'data-metric="ctr"' in body and "not_interested_rate" in body

    def test_the_promote_button_promotes(self, admin_client, experiment):
        treatment = experiment.arms.get(name="treatment")
        response = admin_client.post(reverse("admin:recommendations_experiment_promote",
                                             args=[experiment.pk, treatment.pk]))
        assert response.status_code == 302
        assert DefaultConfiguration.objects.get().algorithm == "toppop"
        assert admin_client.get(reverse("admin:recommendations_experiment_promote",
                                        args=[experiment.pk, treatment.pk])).status_code == 405


@pytest.mark.django_db
class ExperimentApiTests:
    def test_staff_read_results(self, admin_client, experiment):
        response = admin_client.get(reverse("recommendations_api:experiment-results", args=[experiment.slug]))
        assert response.status_code == 200
        assert [a["name"] for a in response.json()["arms"]] == ["control", "treatment"]
        assert "srm" in response.json()
        listed = admin_client.get(reverse("recommendations_api:experiments")).json()
        assert listed[0]["slug"] == experiment.slug and len(listed[0]["arms"]) == 2

    def test_readers_cannot(self, client, experiment, world):
        client.force_login(world["users"]["space0"])
        assert client.get(reverse("recommendations_api:experiment-results", args=[experiment.slug])).status_code == 403
        assert client.get(reverse("recommendations_api:experiments")).status_code == 403


class CheckTests:
    @pytest.mark.parametrize("key, value, check_id", [
        ("EXPERIMENT_ALPHA", 1.5, "recommendations.E023"),
        ("EXPERIMENT_SRM_ALPHA", "0.001", "recommendations.E023"),
        ("EXPERIMENT_MIXTURE_TAU", 0, "recommendations.E024"),
    ])
    def test_bad_settings(self, settings, key, value, check_id):
        settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, key: value}
        assert [e.id for e in check_experiment_settings()] == [check_id]

    def test_good_settings(self):
        assert check_experiment_settings() == []

    @pytest.mark.django_db
    def test_a_broken_running_experiment_is_reported_with_database_checks(self, experiment):
        Arm.objects.filter(experiment=experiment, name="treatment").update(share=0.7)
        errors = check_running_experiments(databases=["default"])
        assert [e.id for e in errors] == ["recommendations.E025"] and "sum to 1.2" in errors[0].msg
        assert check_running_experiments(databases=None) == []
        with pytest.raises(SystemCheckError, match="E025"):
            call_command("check", "--database", "default")


@pytest.mark.django_db
class StartActionTests:
    def test_start_runs_the_experiment_and_queues_a_build(self, admin_client, experiment):
        Experiment.objects.filter(pk=experiment.pk).update(state=Experiment.State.DRAFT)
        response = admin_client.post(reverse("admin:recommendations_experiment_changelist"),
                                     {"action": "start_experiments", "_selected_action": [experiment.pk]})
        assert response.status_code == 302
        assert Experiment.objects.get(pk=experiment.pk).state == Experiment.State.RUNNING
        assert BuildRun.objects.filter(triggered_by="experiment").exists()
