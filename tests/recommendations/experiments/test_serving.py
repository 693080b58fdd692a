"""Tests of serving under experiments: each arm's stored lists, interleaving, and stopped experiments."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from recommendations import services
from recommendations.experiments.assignment import arm_index, live_cache_clear, live_experiments, reader_unit
from recommendations.experiments.models import ArmPicks, Experiment
from recommendations.experiments.promote import experiment_create, experiment_stop
from recommendations.experiments.serving import picks_served, teams_from_label
from recommendations.experiments.validation import ArmSpec
from recommendations.selectors import recommended_for

from .conftest import ab_experiment


def _keys(items):
    return [(type(i).__name__, i.pk) for i in items]


@pytest.mark.django_db
class ArmListsTests:
    def test_a_build_stores_the_lists_of_each_algorithm_arm(self, experiment):
        build = services.full_build_run()
        treatment = experiment.arms.get(name="treatment")
        assert build.counts["arms"] == {str(treatment.pk): ArmPicks.objects.filter(build=build).count()}
        assert ArmPicks.objects.filter(build=build, arm=treatment).count() == 8

    def test_each_reader_gets_their_arms_list(self, experiment):
        services.full_build_run()
        live = next(e for e in live_experiments() if e.slug == experiment.slug)
        seen_arms = set()
        for user in get_user_model().objects.all():
            served = picks_served(user, surface="home", n=3)
            arm = live.arms[arm_index(live, reader_unit(user))]
            assert (served.experiment, served.arm) == (experiment.slug, arm.name)
            if arm.name == "treatment":
                stored = json.loads(ArmPicks.objects.get(arm_id=arm.pk, user=user).items)
                assert [str(i.pk) for i in served.items] == [oid for _, oid, _ in stored][: len(served.items)]
            else:
                assert _keys(served.items) == _keys(recommended_for(user, n=3))
            seen_arms.add(arm.name)
        assert seen_arms == {"control", "treatment"}

    def test_a_stopped_experiment_serves_the_default(self, experiment, world):
        services.full_build_run()
        experiment_stop(experiment=experiment)
        for user in world["users"].values():
            served = picks_served(user, surface="home", n=3)
            assert served.experiment == "" and served.arm == ""
            assert _keys(served.items) == _keys(recommended_for(user, n=3))

    @pytest.mark.parametrize("state", [Experiment.State.STOPPED, Experiment.State.DRAFT])
    def test_an_experiment_not_running_serves_the_default_before_its_stop(self, experiment, world, state):
        services.full_build_run()
        Experiment.objects.filter(pk=experiment.pk).update(state=state)
        live_cache_clear()
        assert all(picks_served(u, surface="home").experiment == "" for u in world["users"].values())

    def test_an_experiment_past_its_stop_serves_the_default(self, experiment, world):
        services.full_build_run()
        Experiment.objects.filter(pk=experiment.pk).update(stop=timezone.now() - timedelta(seconds=1))
        live_cache_clear()
        assert picks_served(world["users"]["space0"], surface="home").experiment == ""

    def test_readers_outside_the_surfaces_get_the_default(self, world):
        ab_experiment(surfaces=["home"])
        services.full_build_run()
        assert picks_served(world["users"]["space0"], surface="api:recommendations").experiment == ""


@pytest.mark.django_db
class InterleavingServingTests:
    def test_the_list_merges_both_arms_with_team_labels(self, world):
        now = timezone.now()
        experiment_create(name="i", slug="inter", kind=Experiment.Kind.INTERLEAVING, start=now - timedelta(hours=1),
                          stop=now + timedelta(days=7),
                          arms=[ArmSpec("default", 0.5, True), ArmSpec("popular", 0.5, False, "toppop")])
        services.full_build_run()
        user = world["users"]["space0"]
        served = picks_served(user, surface="home", n=4)
        assert served.experiment == "inter"
        assert teams_from_label(served.arm) == served.teams and len(served.teams) == len(served.items)
        default = {i.pk for i in recommended_for(user, n=4)}
        for item, team in zip(served.items, served.teams):
            if team == 0:
                assert item.pk in default
        # The same reader sees the same merge on the next request.
        assert _keys(picks_served(user, surface="home", n=4).items) == _keys(served.items)


@pytest.mark.django_db
class ApiServingTests:
    def test_the_api_serves_each_reader_their_arms_list_not_the_stored_body(self, world):
        from rest_framework.test import APIClient

        for user in world["users"].values():  # store everyone's default body first
            client = APIClient()
            client.force_authenticate(user)
            client.get("/api/recommendations/")
        experiment = ab_experiment(surfaces=["api:recommendations"])
        services.full_build_run()
        live = next(e for e in live_experiments() if e.slug == experiment.slug)
        treated = [u for u in world["users"].values() if live.arms[arm_index(live, reader_unit(u))].name == "treatment"]
        assert treated
        from recommendations.impressions.models import Impression
        from recommendations.impressions.recording import impressions_flush

        for user in treated:
            client = APIClient()
            client.force_authenticate(user)
            body = client.get("/api/recommendations/").json()
            stored = json.loads(ArmPicks.objects.get(arm__name="treatment", user=user).items)
            ids = [row["item"]["id"] for row in body["results"]]
            assert ids[: len(stored)] == [oid for _, oid, _ in stored][: len(ids)]
            impressions_flush()
            impression = Impression.objects.get(recommendation_id=body["recommendation_id"])
            assert (impression.experiment, impression.arm) == (experiment.slug, "treatment")


@pytest.mark.django_db
class TemplateTagServingTests:
    def test_the_tag_serves_the_arm_and_records_the_impression_with_it(self, world, rf):
        from django.template import Context, Template

        from recommendations.impressions.models import Impression
        from recommendations.impressions.recording import impressions_flush

        experiment = ab_experiment(surfaces=["home"])
        services.full_build_run()
        live = next(e for e in live_experiments() if e.slug == experiment.slug)
        template = Template('{% load recommendations %}{% recommended_for user limit=3 surface="home" as recs %}'
                            '{% for item in recs %}{{ item.pk }},{% endfor %}')
        for user in world["users"].values():
            request = rf.get("/")
            request.user = user
            shown = template.render(Context({"request": request, "user": user})).strip(",").split(",")
            arm = live.arms[arm_index(live, reader_unit(user))]
            assert shown == [str(i.pk) for i in picks_served(user, surface="home", n=3).items]
            impressions_flush()
            impression = Impression.objects.filter(user=user).latest("created_at")
            assert (impression.surface, impression.experiment, impression.arm) == ("home", experiment.slug, arm.name)
