"""An A/B test through the real API: readers get their arm's lists, click, and the results count it per arm."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from recommendations import services
from recommendations.experiments.models import Experiment
from recommendations.experiments.results import experiment_results
from recommendations.impressions.models import Impression
from recommendations.impressions.recording import impressions_flush

from .conftest import ab_experiment


@pytest.mark.django_db
def test_clicks_through_the_api_are_counted_per_arm(world):
    experiment = ab_experiment(surfaces=["api:recommendations"])
    services.full_build_run()
    arms = {}
    for user in world["users"].values():
        client = APIClient()
        client.force_authenticate(user)
        for _ in range(2):
            body = client.get("/api/recommendations/?limit=3").json()
            impressions_flush()
            arm = Impression.objects.get(recommendation_id=body["recommendation_id"]).arm
            arms[user.username] = arm
            if arm == "treatment":  # only the treatment's readers click
                response = client.post(f"/api/impressions/{body['recommendation_id']}/clicks/", {"position": 1},
                                       format="json")
                assert response.status_code == 202
                impressions_flush()
    results = experiment_results(Experiment.objects.get(pk=experiment.pk))
    by_name = {a.name: a for a in results.arms}
    counts = {name: list(arms.values()).count(name) for name in ("control", "treatment")}
    assert {n: by_name[n].units for n in counts} == counts
    assert by_name["treatment"].impressions == 2 * counts["treatment"]
    assert by_name["treatment"].metrics["ctr"].estimate.value == pytest.approx(1.0)
    assert by_name["control"].metrics["ctr"].estimate.value == 0.0
