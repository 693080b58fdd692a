"""Tests of recommendations/build/tuning.py: a build of ``auto`` tunes, records it, and later builds reuse or re-tune."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from recommendations import services
from recommendations.algorithms import auto
from recommendations.build import tuning
from recommendations.models import BuildRun
from tests.recommendations.conftest import TESTAPP_RECOMMENDATIONS
from tests.recommendations.testapp.models import Item, Like

# A zero budget and no random candidates still try each member's starting parameters and the blend grid: a real,
# short tuning.
AUTO = {**TESTAPP_RECOMMENDATIONS, "ALGORITHM": "auto", "ALGORITHM_PARAMS": {"tune_iter": 0}, "TUNE_BUDGET_SECONDS": 0}


@pytest.fixture
def crowd(db):
    """Thirty readers in three taste groups over twelve items: enough users for ``auto`` to tune."""
    with override_settings(RECOMMENDATIONS=AUTO):
        items = [Item.objects.create(name=f"Item {i}", description=f"Group {i // 4} book {i}.") for i in range(12)]
        users = []
        for u in range(30):
            user = get_user_model().objects.create_user(username=f"reader{u}", password="x")
            users.append(user)
            group = u % 3
            for j in range(4):
                if j != u % 4:
                    Like.objects.create(user=user, item=items[group * 4 + j])
        yield {"items": items, "users": users}


@pytest.fixture
def tune_calls(monkeypatch):
    """Count the tunings ``auto`` runs (the real search still runs)."""
    calls = []
    real = auto.tune_auto

    def spy(*args, **kwargs):
        calls.append(kwargs.get("time_budget"))
        return real(*args, **kwargs)

    monkeypatch.setattr(auto, "tune_auto", spy)
    return calls


def _grow(crowd, share: float) -> None:
    """Add likes until the interactions grew by at least ``share``."""
    n = Like.objects.count()
    target = int(n * share) + 1
    added = 0
    for user in crowd["users"]:
        for item in crowd["items"]:
            if added >= target:
                return
            if not Like.objects.filter(user=user, item=item).exists():
                Like.objects.create(user=user, item=item)
                added += 1


class TestFirstBuild:
    def test_records_the_chosen_configuration_scores_and_time(self, crowd, tune_calls):
        build = services.full_build_run()
        assert build.status == BuildRun.Status.SUCCEEDED
        assert tune_calls == [0.0]  # TUNE_BUDGET_SECONDS reaches auto's tune_budget
        stored = BuildRun.objects.get(pk=build.pk).tuning
        assert stored["tuned"] is True and stored["retune_reason"] == "no earlier tuned configuration"
        assert set(stored["params"]["weights"]) and all(w > 0 for w in stored["params"]["weights"].values())
        assert set(stored["member_scores"]) >= {"rp3beta", "itemknn"}
        assert all(0 <= s <= 1 for s in stored["member_scores"].values()) and 0 <= stored["blend"] <= 1
        assert stored["seconds"] > 0 and stored["budget_seconds"] == 0
        assert stored["tuned_build"] == build.pk and stored["tuned_interactions"] == Like.objects.count()

    def test_an_algorithm_that_does_not_tune_records_nothing(self, crowd, tune_calls):
        with override_settings(RECOMMENDATIONS={**AUTO, "ALGORITHM": "itemknn", "ALGORITHM_PARAMS": {}}):
            build = services.full_build_run()
        assert BuildRun.objects.get(pk=build.pk).tuning == {} and tune_calls == []

    def test_given_weights_are_fitted_as_they_are(self, crowd, tune_calls):
        with override_settings(RECOMMENDATIONS={**AUTO, "ALGORITHM_PARAMS": {"weights": {"rp3beta": 1.0}}}):
            build = services.full_build_run()
        assert BuildRun.objects.get(pk=build.pk).tuning == {} and tune_calls == []


class TestLaterBuilds:
    def test_second_build_reuses_the_configuration_without_tuning(self, crowd, tune_calls):
        first = services.full_build_run()
        second = services.full_build_run()
        assert len(tune_calls) == 1
        first, second = BuildRun.objects.get(pk=first.pk), BuildRun.objects.get(pk=second.pk)
        assert second.is_active and second.tuning["reused_from"] == first.pk
        assert second.tuning["tuned"] is False and second.tuning["seconds"] == 0
        assert second.tuning["params"] == first.tuning["params"]
        assert second.tuning["member_scores"] == first.tuning["member_scores"]
        assert second.tuning["tuned_build"] == first.pk
        # The fitted model is the reused blend.
        model = services.build_state(second.pk).model
        assert dict(zip(model.components_.tolist(), model.effective_weights_.tolist())) == pytest.approx(
            first.tuning["params"]["weights"])

    def test_a_reuse_counts_growth_and_age_from_the_tuning_not_the_last_build(self, crowd, tune_calls):
        first = services.full_build_run()
        _grow(crowd, 0.12)
        services.full_build_run()  # +12%: reuses
        _grow(crowd, 0.12)
        third = services.full_build_run()  # +25% since the tuning: tunes
        assert len(tune_calls) == 2
        assert BuildRun.objects.get(pk=third.pk).tuning["tuned_build"] == third.pk != first.pk

    def test_growth_beyond_the_share_retunes(self, crowd, tune_calls):
        services.full_build_run()
        _grow(crowd, 0.2)
        build = services.full_build_run()
        assert len(tune_calls) == 2
        record = BuildRun.objects.get(pk=build.pk).tuning
        assert record["tuned"] is True and "grew" in record["retune_reason"]
        assert record["tuned_interactions"] == Like.objects.count()

    def test_growth_below_the_share_reuses(self, crowd, tune_calls):
        services.full_build_run()
        _grow(crowd, 0.05)
        build = services.full_build_run()
        assert len(tune_calls) == 1 and "reused_from" in BuildRun.objects.get(pk=build.pk).tuning

    def test_age_retunes(self, crowd, tune_calls):
        first = services.full_build_run()
        record = BuildRun.objects.get(pk=first.pk).tuning
        record["tuned_at"] = (timezone.now() - timedelta(days=7, minutes=1)).isoformat()
        BuildRun.objects.filter(pk=first.pk).update(tuning=record)
        build = services.full_build_run()
        assert len(tune_calls) == 2
        assert "older than 7 days" in BuildRun.objects.get(pk=build.pk).tuning["retune_reason"]

    def test_settings_decide_the_share_and_the_age(self, crowd, tune_calls):
        services.full_build_run()
        with override_settings(RECOMMENDATIONS={**AUTO, "RETUNE_GROWTH": 0}):
            services.full_build_run()  # any build is growth enough
        assert len(tune_calls) == 2
        with override_settings(RECOMMENDATIONS={**AUTO, "RETUNE_DAYS": 0}):
            services.full_build_run()
        assert len(tune_calls) == 3
        services.full_build_run()
        assert len(tune_calls) == 3

    def test_changed_algorithm_settings_retune(self, crowd, tune_calls):
        services.full_build_run()
        with override_settings(RECOMMENDATIONS={**AUTO, "ALGORITHM_PARAMS": {"tune_iter": 0, "content_weight": 0.1}}):
            build = services.full_build_run()
        assert len(tune_calls) == 2
        assert BuildRun.objects.get(pk=build.pk).tuning["retune_reason"] == "the algorithm's settings changed"
        # A new tuning budget alone is not a new configuration to tune for.
        with override_settings(RECOMMENDATIONS={**AUTO, "ALGORITHM_PARAMS": {"tune_iter": 0, "content_weight": 0.1},
                                                "TUNE_BUDGET_SECONDS": 5}):
            services.full_build_run()
        assert len(tune_calls) == 2

    def test_a_failed_tuning_build_is_not_reused(self, crowd, tune_calls, monkeypatch):
        services.full_build_run()
        BuildRun.objects.update(status=BuildRun.Status.FAILED, is_active=False)
        services.full_build_run()
        assert len(tune_calls) == 2


class TestShown:
    def test_admin_build_page_and_list_show_the_tuning(self, crowd, admin_client):
        first = BuildRun.objects.get(pk=services.full_build_run().pk)
        second = services.full_build_run()
        page = admin_client.get(reverse("admin:recommendations_buildrun_change", args=[first.pk])).content.decode()
        weights = ", ".join(f"{n} {w:.3g}" for n, w in first.tuning["params"]["weights"].items())
        assert "tuned in " in page and "no earlier tuned configuration" in page and weights in page
        for name, score in first.tuning["member_scores"].items():
            assert f"{name} score" in page and f"{score:.4f}" in page
        assert f"{first.tuning['blend']:.4f}" in page and "tuning seconds" in page
        listing = admin_client.get(reverse("admin:recommendations_buildrun_changelist")).content.decode()
        assert f"reused from build #{first.pk}" in listing and f"#{second.pk}" in listing
        reused = admin_client.get(reverse("admin:recommendations_buildrun_change", args=[second.pk])).content.decode()
        assert f"build #{first.pk} at" in reused and weights in reused

    def test_items_no_one_liked_are_left_out_of_tuning_and_the_page_says_so(self, crowd, admin_client):
        Item.objects.create(name="New and unread", description="Group 0 book, just added.")
        first = BuildRun.objects.get(pk=services.full_build_run().pk)
        assert first.tuning["items"] == 12 and Item.objects.count() == 13
        page = admin_client.get(reverse("admin:recommendations_buildrun_change", args=[first.pk])).content.decode()
        assert "over 12 items with interactions" in page
        assert BuildRun.objects.get(pk=services.full_build_run().pk).tuning["items"] == 12  # carried when reused

    def test_staff_builds_api_returns_the_tuning(self, crowd, django_user_model):
        first = services.full_build_run()
        second = services.full_build_run()
        client = APIClient()
        client.force_authenticate(django_user_model.objects.create_user("staffer", password="x", is_staff=True))
        detail = client.get(f"/api/builds/{first.pk}/").json()
        stored = BuildRun.objects.get(pk=first.pk).tuning
        assert detail["tuning"] == stored and detail["tuning"]["tuned"] is True
        assert set(detail["tuning"]) >= {"params", "member_scores", "blend", "seconds"}
        listed = {b["id"]: b for b in client.get("/api/builds/").json()["results"]}
        assert listed[second.pk]["tuning"]["reused_from"] == first.pk

    def test_build_command_says_whether_it_tuned(self, crowd):
        out = io.StringIO()
        call_command("recommendations", "build", "--sync", stdout=out)
        first = BuildRun.objects.get()
        assert f"(auto, tuned in {first.tuning['seconds']:.1f} s, blend {first.tuning['blend']:.4f})" in out.getvalue()
        call_command("recommendations", "build", "--sync", stdout=out)
        assert f"(auto, reused from build #{first.pk})" in out.getvalue()

    def test_schema_documents_the_tuning(self):
        from drf_spectacular.generators import SchemaGenerator

        schema = SchemaGenerator().get_schema(request=None, public=True)
        field = schema["components"]["schemas"]["BuildRunOutput"]["properties"]["tuning"]
        assert field["type"] == "object" and field["description"].startswith("How the algorithm's configuration")
        assert {"params", "member_scores", "blend", "seconds", "reused_from"} <= set(field["properties"])


class TestJsonSafe:
    def test_non_finite_scores_become_null(self):
        import numpy as np

        assert tuning.json_safe({"blend": float("-inf"), "m": {"x": np.float32(0.5)}, "l": [float("nan")]}) == {
            "blend": None, "m": {"x": 0.5}, "l": [None]}


class TestTimestamps:
    def test_a_build_gives_auto_the_interaction_times_so_it_validates_on_each_latest(self, crowd, monkeypatch):
        given = []
        real = auto.tune_auto

        def spy(*args, **kwargs):
            given.append(kwargs.get("timestamps"))
            return real(*args, **kwargs)

        monkeypatch.setattr(auto, "tune_auto", spy)
        start = timezone.now() - timedelta(days=30)
        latest = {}
        for n, like in enumerate(Like.objects.order_by("user_id", "pk")):
            like.created_at = start + timedelta(hours=n)
            like.save(update_fields=["created_at"])
            latest[like.user_id] = like.created_at.timestamp()
        build = services.full_build_run()
        stored = BuildRun.objects.get(pk=build.pk).tuning
        assert stored["validation"] == "latest interaction per user"
        (stamps,) = given
        row_latest = stamps.max(axis=1).toarray().ravel()
        assert sorted(row_latest.tolist()) == pytest.approx(sorted(latest.values()))
