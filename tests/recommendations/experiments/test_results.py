"""Tests of an experiment's results from stored impressions: metrics per arm, SRM, interleaving credit, guardrails."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from recommendations.algorithms import experiments_stats as es
from recommendations.experiments.models import Experiment
from recommendations.experiments.promote import experiment_create
from recommendations.experiments.results import experiment_results
from recommendations.experiments.serving import teams_label
from recommendations.experiments.validation import ArmSpec
from recommendations.impressions.models import Attribution, DailyMetric, Impression
from recommendations.impressions.rollup import daily_metrics_rollup
from tests.recommendations.testapp.models import Item


def _experiment(kind=Experiment.Kind.AB, days=3):
    now = timezone.now()
    return experiment_create(name="e", slug="e", kind=kind, start=now - timedelta(days=days),
                             stop=now + timedelta(days=7),
                             arms=[ArmSpec("control", 0.5, True), ArmSpec("treatment", 0.5)])


def _show(user, arm: str, *, clicks=(), day=0, n=4, kind="click", value=None, experiment="e"):
    """Store one impression of ``n`` items for ``user`` under ``arm``, and an attribution per clicked position."""
    ct = ContentType.objects.get_for_model(Item)
    items = list(Item.objects.order_by("pk")[:n])
    impression = Impression.objects.create(
        recommendation_id=uuid.uuid4(), user=user, surface="home", experiment=experiment, arm=arm,
        items=[f"{ct.pk}:{i.pk}" for i in items], created_at=timezone.now() - timedelta(days=day))
    for position in clicks:
        Attribution.objects.create(impression=impression, content_type=ct, object_id=str(items[position - 1].pk),
                                   position=position, kind=kind, value=value)
    return impression


def _users(n, prefix="r"):
    User = get_user_model()
    return [User.objects.create_user(username=f"{prefix}{i}", password="x") for i in range(n)]


@pytest.mark.django_db
class ABResultsTests:
    def test_ctr_is_a_ratio_over_readers_with_an_interval(self, world):
        _experiment()
        readers = _users(40)
        for i, user in enumerate(readers):
            arm = "control" if i % 2 else "treatment"
            for day in range(3):
                _show(user, arm, clicks=(1,) if arm == "treatment" or i % 4 == 1 else (), day=day)
        results = experiment_results(Experiment.objects.get(slug="e"))
        control, treatment = results.arms
        assert (control.name, control.units, control.impressions) == ("control", 20, 60)
        # Clicks per list shown: every treatment list got a click, half the control readers clicked every list.
        ctr = treatment.metrics["ctr"]
        assert ctr.estimate.value == pytest.approx(1.0)
        assert control.metrics["ctr"].estimate.value == pytest.approx(30 / 60)
        assert ctr.difference.diff == pytest.approx(0.5)
        assert ctr.difference.ci_low < ctr.difference.diff < ctr.difference.ci_high
        assert 0 < ctr.sequential_p_value <= 1 and ctr.sequential_p_value >= ctr.difference.p_value
        assert results.days == 4 and not results.srm.flagged

    def test_a_55_45_split_declared_50_50_is_flagged(self, world):
        _experiment()
        User = get_user_model()
        for i in range(2000):
            user = User(pk=100000 + i, username=f"x{i}")
            Impression.objects.create(recommendation_id=uuid.uuid4(), user=None, session_hash=f"h{i}", surface="home",
                                      experiment="e", arm="control" if i < 1100 else "treatment", items=[])
            del user
        results = experiment_results(Experiment.objects.get(slug="e"))
        assert [a.units for a in results.arms] == [1100, 900]
        assert results.srm.flagged and results.srm.p_value < 0.001

    def test_guardrail_breach_is_reported(self, world, settings):
        # A mixture as wide as the control's rate: a few hundred readers then detect a tripled rate.
        settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "EXPERIMENT_MIXTURE_TAU": 1.0}
        _experiment(days=1)
        for i, user in enumerate(_users(200)):
            arm = "control" if i % 2 else "treatment"
            marks = i % 10 < 6 if arm == "treatment" else i % 10 == 1
            _show(user, arm, clicks=(1,) if marks else (), kind="not_interested")
        results = experiment_results(Experiment.objects.get(slug="e"))
        assert results.arms[1].metrics["not_interested_rate"].guardrail_breached
        assert not results.arms[1].metrics["ctr"].guardrail_breached

    def test_mean_rating_is_stars_per_rating(self, world):
        _experiment(days=0)
        user = _users(1)[0]
        _show(user, "control", clicks=(1, 2), kind="rating", value=4.0)
        _show(user, "control", clicks=(1,), kind="rating", value=1.0)
        results = experiment_results(Experiment.objects.get(slug="e"))
        assert results.arms[0].metrics["mean_rating"].estimate.value == pytest.approx(3.0)

    def test_results_serialise_without_nan(self, world):
        _experiment()
        data = experiment_results(Experiment.objects.get(slug="e")).as_dict()
        assert data["arms"][0]["metrics"]["ctr"]["estimate"]["value"] is None


@pytest.mark.django_db
class InterleavingResultsTests:
    def test_each_click_is_credited_to_the_team_that_contributed_the_item(self, world):
        _experiment(kind=Experiment.Kind.INTERLEAVING)
        readers = _users(30)
        for user in readers:
            # Positions 1 and 3 came from the first arm (A), 2 and 4 from the second (B); readers click B's.
            _show(user, teams_label([0, 1, 0, 1]), clicks=(2, 4))
        _show(readers[0], teams_label([0, 1, 0, 1]), clicks=(1, 3))  # one reader clicks A twice too: a tie
        result = experiment_results(Experiment.objects.get(slug="e")).interleaving
        assert (result.wins_a, result.wins_b, result.ties) == (0, 29, 1)
        assert result.p_value < 1e-6 and result.delta > 0
        # Per list: 31 lists; 29 readers +2 per list, one reader (+2 - 2) / 2 lists = 0.
        assert result.lists == 31 and result.credit_diff == pytest.approx(58 / 30)
        assert result.sign_p_value < 1e-6

    def test_a_click_on_a_neutral_item_credits_neither_arm(self, world):
        _experiment(kind=Experiment.Kind.INTERLEAVING)
        for user in _users(30):
            # Position 1 holds an item both arms proposed in the same round: the click says nothing.
            _show(user, teams_label([None, 1, 0, 1]), clicks=(1,))
        result = experiment_results(Experiment.objects.get(slug="e")).interleaving
        assert (result.wins_a, result.wins_b, result.ties) == (0, 0, 30)
        assert result.credit_diff == 0 and result.p_value == 1.0

    def test_one_readers_many_lists_do_not_decide_alone(self, world):
        _experiment(kind=Experiment.Kind.INTERLEAVING)
        keen, *others = _users(10)
        for _ in range(20):
            _show(keen, teams_label([0, 1, 0, 1]), clicks=(2, 4))
        for user in others:
            _show(user, teams_label([0, 1, 0, 1]))
        result = experiment_results(Experiment.objects.get(slug="e")).interleaving
        # 40 of 40 clicks went to B, but from one reader: readers are the unit, so it is not significant.
        assert result.credit_diff == pytest.approx(0.2) and result.p_value > 0.05
        lists_as_units = es.credit_difference([0] * 29, [2] * 20 + [0] * 9, [1] * 29)
        assert lists_as_units.p_value < 1e-4

    def test_readers_without_clicks_are_ties(self, world):
        _experiment(kind=Experiment.Kind.INTERLEAVING)
        for user in _users(5):
            _show(user, teams_label([0, 1]), n=2)
        result = experiment_results(Experiment.objects.get(slug="e")).interleaving
        assert (result.wins_a, result.wins_b, result.ties, result.p_value) == (0, 0, 5, 1.0)


@pytest.mark.django_db
def test_the_daily_rollup_counts_interleaved_lists_as_one_arm(world):
    _experiment(kind=Experiment.Kind.INTERLEAVING)
    for user in _users(3):
        _show(user, teams_label([0, 1, 0, 1]), day=1)
        _show(user, teams_label([1, 0, 1, 0]), day=1)
    daily_metrics_rollup(day=(timezone.now() - timedelta(days=1)).date())
    assert list(DailyMetric.objects.filter(experiment="e").values_list("arm", "impressions")) == [("interleaved", 6)]
