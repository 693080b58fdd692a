"""Tests of recommendations/admin.py on the testapp host: dashboard, Build now, make active, preview, rules."""
from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from recommendations import admin as rec_admin
from recommendations import selectors, services, tasks
from recommendations.models import BuildLock, BuildRun, ItemRule, PopularItem, SimilarItem, UserRecommendation
from tests.recommendations.testapp.models import Item

RESULT_MODELS = (BuildRun, SimilarItem, UserRecommendation, PopularItem, ItemRule)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Selectors cache the editors' rules for a few seconds; a rolled-back test must not leak them."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:recommendations_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def built(world):
    build = services.full_build_run()
    ItemRule.objects.create(content_type=ContentType.objects.get_for_model(Item),
                            object_id=str(world["items"]["Pasta from scratch"].pk), action="boost")
    return {**world, "build": build}


@pytest.fixture
def reader_client(client, built):
    client.force_login(built["users"]["space0"])
    return client


class TestPagesLoad:
    @pytest.mark.parametrize("model", RESULT_MODELS, ids=lambda m: m.__name__)
    def test_changelist_and_change_page_load_for_a_superuser(self, admin_client, built, model):
        response = admin_client.get(_url(model, "changelist"))
        assert response.status_code == 200
        obj = model.objects.order_by("pk").first()
        assert admin_client.get(_url(model, "change", obj.pk)).status_code == 200

    @pytest.mark.parametrize("model", RESULT_MODELS, ids=lambda m: m.__name__)
    def test_non_staff_is_sent_to_login(self, reader_client, built, model):
        obj = model.objects.order_by("pk").first()
        for url in (_url(model, "changelist"), _url(model, "change", obj.pk)):
            response = reader_client.get(url)
            assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))

    @pytest.mark.parametrize("view", ["preview", "build_now"])
    def test_extra_views_are_staff_only(self, reader_client, view):
        response = reader_client.post(_url(BuildRun, view)) if view == "build_now" else reader_client.get(
            _url(BuildRun, view))
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
        assert BuildRun.objects.count() == 1

    def test_stored_rows_show_their_items_without_n_plus_one(self, admin_client, built, django_assert_max_num_queries):
        admin_client.get(_url(SimilarItem, "changelist"))
        with django_assert_max_num_queries(12):
            response = admin_client.get(_url(SimilarItem, "changelist"))
        html = response.content.decode()
        assert SimilarItem.objects.count() > 20 and "Rockets to Mars" in html
        with django_assert_max_num_queries(12):
            html = admin_client.get(_url(UserRecommendation, "changelist")).content.decode()
        assert "Because you read" in html

    def test_results_are_read_only(self, admin_client, built):
        obj = UserRecommendation.objects.first()
        assert admin_client.get(_url(UserRecommendation, "add")).status_code == 403
        response = admin_client.post(_url(UserRecommendation, "change", obj.pk), {"rank": 99})
        assert response.status_code == 403
        obj.refresh_from_db()
        assert obj.rank != 99


class TestDashboard:
    def test_shows_status_stages_counts_and_charts(self, admin_client, built):
        build = built["build"]
        build.metrics = {"protocol": "leave-one-out", "results": {"itemknn": {"ndcg@10": 0.25, "hr@10": 0.5,
                                                                              "n_users": 8, "fit_seconds": 0.1}}}
        build.save()
        second = services.full_build_run()
        second.metrics = {"results": {"itemknn": {"ndcg@10": 0.3, "hr@10": 0.6}}}
        second.save()
        html = admin_client.get(_url(BuildRun, "changelist")).content.decode()
        assert "Build now" in html and "Preview as reader" in html
        assert html.count("<polyline") == 2  # one line per metric, over the two builds
        assert "ndcg@10 (last 0.3000)" in html and "hr@10" in html and "fit_seconds" not in html.split("<svg")[1]
        assert "<rect" in html  # seconds per stage
        assert f"#{second.pk}" in html and "users 8" in html and "load " in html
        detail = admin_client.get(_url(BuildRun, "change", build.pk)).content.decode()
        assert "0.2500" in detail and "leave-one-out" in detail

    def test_without_builds_the_dashboard_explains_what_to_do(self, admin_client, db):
        html = admin_client.get(_url(BuildRun, "changelist")).content.decode()
        assert "none yet" in html and "No build has offline metrics yet" in html

    def test_metrics_chart_scales_points_into_the_box(self):
        builds = [BuildRun(pk=i, algorithm="a", metrics={"results": {"a": {"ndcg@10": v}}}) for i, v in
                  enumerate([0.1, 0.4, 0.2], 1)]
        chart = rec_admin.metrics_chart(builds, width=200, height=100)
        (line,) = chart["lines"]
        ys = [dot["y"] for dot in line["dots"]]
        assert ys[1] == 12  # the highest value touches the top margin
        assert ys[0] > ys[2] > ys[1] and all(12 <= y <= 72 for y in ys)
        assert rec_admin.metrics_chart([BuildRun(pk=1, metrics={})]) is None


class TestBuildNow:
    def test_queues_the_full_build_task_on_commit(self, admin_client, world, django_capture_on_commit_callbacks):
        with mock.patch.object(tasks.full_build_fan_out, "delay") as delay, \
                django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(_url(BuildRun, "build_now"), follow=True)
        build = BuildRun.objects.get()
        assert build.status == BuildRun.Status.QUEUED and build.triggered_by == "admin"
        delay.assert_called_once_with(build.pk)
        assert f"Build #{build.pk} is queued" in response.content.decode()

    def test_eager_mode_runs_it_to_an_active_build(self, admin_client, world, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            admin_client.post(_url(BuildRun, "build_now"))
        build = BuildRun.objects.get()
        assert build.is_active and build.status == BuildRun.Status.SUCCEEDED
        assert selectors.recommended_for(world["users"]["space0"], n=1)[0].name == "Rockets to Mars"

    def test_says_which_build_holds_the_lock(self, admin_client, world):
        running = BuildRun.objects.create(status=BuildRun.Status.RUNNING)
        BuildLock.objects.create(name=services.FULL_BUILD_LOCK, owner=f"build:{running.pk}@host:1",
                                 expires_at=timezone.now() + timedelta(minutes=5))
        with mock.patch.object(tasks.full_build_fan_out, "delay") as delay:
            response = admin_client.post(_url(BuildRun, "build_now"), follow=True)
        delay.assert_not_called()
        assert BuildRun.objects.count() == 1
        messages = [(m.level_tag, m.message) for m in response.context["messages"]]
        assert messages and messages[0][0] == "error" and f"build:{running.pk}" in messages[0][1]

    def test_get_is_refused(self, admin_client, db):
        assert admin_client.get(_url(BuildRun, "build_now")).status_code == 405
        assert not BuildRun.objects.exists()


class TestMakeActive:
    def test_switches_back_to_an_older_build(self, admin_client, built):
        first = built["build"]
        second = services.full_build_run()
        assert second.is_active
        response = admin_client.post(_url(BuildRun, "changelist"),
                                     {"action": "make_active", "_selected_action": [first.pk]}, follow=True)
        assert "is now active" in response.content.decode()
        first.refresh_from_db(), second.refresh_from_db()
        assert first.is_active and not second.is_active
        assert selectors.active_build() == first

    def test_refuses_a_failed_build(self, admin_client, built):
        failed = BuildRun.objects.create(status=BuildRun.Status.FAILED)
        response = admin_client.post(_url(BuildRun, "changelist"),
                                     {"action": "make_active", "_selected_action": [failed.pk]}, follow=True)
        assert "only a succeeded build" in response.content.decode()
        assert selectors.active_build() == built["build"]

    def test_refuses_several_builds(self, admin_client, built):
        other = services.full_build_run()
        response = admin_client.post(_url(BuildRun, "changelist"),
                                     {"action": "make_active", "_selected_action": [built["build"].pk, other.pk]},
                                     follow=True)
        assert "exactly one" in response.content.decode()
        assert selectors.active_build() == other

    def test_active_build_cannot_be_deleted(self, admin_client, built):
        assert admin_client.get(_url(BuildRun, "delete", built["build"].pk)).status_code == 403


class TestPreviewAsReader:
    def test_shows_the_readers_stored_picks_with_explanations(self, admin_client, built):
        reader = built["users"]["space0"]
        response = admin_client.get(_url(BuildRun, "preview"), {"user": "space0"})
        assert response.status_code == 200
        html = response.content.decode()
        picks = selectors.recommended_for(reader, n=20)
        assert [p.pk for p in response.context["picks"]] == [p.pk for p in picks]
        table = html[html.index('id="rec-picks"'):html.index('id="rec-popular"')]
        assert table.index("Rockets to Mars") < table.index("source-content")
        assert "source-personal" in table and picks[0].rec_because in table
        assert "Because you read" in table
        stored = UserRecommendation.objects.filter(build__is_active=True, user=reader).count()
        assert f"{stored} stored personal pick" in html
        assert 'id="rec-popular"' in html

    def test_accepts_an_id_and_a_new_reader_gets_popular(self, admin_client, built, django_user_model):
        newcomer = django_user_model.objects.create_user(username="newcomer", password="x")
        html = admin_client.get(_url(BuildRun, "preview"), {"user": str(newcomer.pk)}).content.decode()
        assert "No personal picks stored" in html and "source-popular" in html

    def test_unknown_user_is_a_form_error(self, admin_client, built):
        response = admin_client.get(_url(BuildRun, "preview"), {"user": "nobody"})
        assert response.status_code == 200 and "No user with the username" in response.content.decode()

    def test_empty_form(self, admin_client, db):
        html = admin_client.get(_url(BuildRun, "preview")).content.decode()
        assert "Show what this reader sees" in html and "no active build yet" in html


class TestItemRules:
    def test_add_a_ban_and_it_hides_the_item(self, admin_client, built):
        reader, rockets = built["users"]["space0"], built["items"]["Rockets to Mars"]
        assert selectors.recommended_for(reader, n=1)[0] == rockets
        ct = ContentType.objects.get_for_model(Item)
        response = admin_client.post(_url(ItemRule, "add"), {"content_type": ct.pk, "object_id": str(rockets.pk),
                                                             "action": "ban", "factor": "1.5", "note": "spam"})
        assert response.status_code == 302
        assert ItemRule.objects.filter(object_id=str(rockets.pk), action="ban").exists()
        assert rockets not in selectors.recommended_for(reader, n=8)

    def test_unknown_item_id_is_refused(self, admin_client, built):
        ct = ContentType.objects.get_for_model(Item)
        response = admin_client.post(_url(ItemRule, "add"), {"content_type": ct.pk, "object_id": "not-a-uuid",
                                                             "action": "pin", "factor": "1.5"})
        assert response.status_code == 200 and "There is no item with the id" in response.content.decode()
        assert ItemRule.objects.count() == 1

    def test_only_item_models_are_offered(self, admin_client, built):
        form = admin_client.get(_url(ItemRule, "add")).context["adminform"].form
        assert list(form.fields["content_type"].queryset) == [ContentType.objects.get_for_model(Item)]

    def test_prefilled_from_an_item_link(self, admin_client, built):
        ct, item = ContentType.objects.get_for_model(Item), built["items"]["Pasta from scratch"]
        form = admin_client.get(_url(ItemRule, "add"), {"content_type": ct.pk, "object_id": item.pk}).context[
            "adminform"].form
        assert str(form.initial["object_id"]) == str(item.pk)


def _get(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


class TestItemMixin:
    """The mixin a host adds to its item admin, here on testapp.Item in a private admin site."""

    @pytest.fixture
    def item_admin(self):
        class ItemAdmin(rec_admin.ItemRecommendationsAdminMixin, admin.ModelAdmin):
            list_display = ("name", "recommendation_rule_display")

        return ItemAdmin(Item, admin.AdminSite(name="test"))

    def test_actions_set_rules_and_annotate_the_list(self, item_admin, built, admin_user):
        request = RequestFactory().post("/")
        request.user = admin_user
        request._messages = mock.MagicMock()
        actions = item_admin.get_actions(request)
        assert {"recommendation_pin", "recommendation_boost", "recommendation_ban", "recommendation_clear"} <= set(actions)
        rockets = built["items"]["Rockets to Mars"]
        func = actions["recommendation_ban"][0]
        func(item_admin, request, Item.objects.filter(pk=rockets.pk))
        changelist = item_admin.get_changelist_instance(_get(admin_user))
        (row,) = [r for r in changelist.result_list if r.pk == rockets.pk]
        assert row.rec_rule_action == "ban" and item_admin.recommendation_rule_display(row) == "Ban"
        assert rockets not in selectors.recommended_for(built["users"]["space0"], n=8)
        actions["recommendation_clear"][0](item_admin, request, Item.objects.filter(pk=rockets.pk))
        assert selectors.recommended_for(built["users"]["space0"], n=1)[0] == rockets

    def test_neighbours_render_both_kinds(self, item_admin, built):
        html = item_admin.recommendation_neighbours(built["items"]["Rockets to Mars"])
        assert "Collaborative" in html and "Content" in html and "Orbital mechanics" in html


class TestStaffPermissions:
    """A staff member who may only view builds sees the dashboard but cannot start or switch builds."""

    @pytest.fixture
    def viewer_client(self, client, django_user_model, built):
        from django.contrib.auth.models import Permission

        viewer = django_user_model.objects.create_user(username="viewer", password="x", is_staff=True)
        viewer.user_permissions.add(Permission.objects.get(codename="view_buildrun"))
        client.force_login(viewer)
        return client

    def test_viewer_sees_the_dashboard_and_preview_without_build_controls(self, viewer_client, built):
        response = viewer_client.get(_url(BuildRun, "changelist"))
        html = response.content.decode()
        assert response.status_code == 200 and "Build now" not in html and "Preview as reader" in html
        assert "make_active" not in html
        assert viewer_client.get(_url(BuildRun, "preview"), {"user": "space0"}).status_code == 200

    def test_viewer_cannot_start_or_activate_a_build(self, viewer_client, built):
        with mock.patch.object(tasks.full_build_fan_out, "delay") as delay:
            assert viewer_client.post(_url(BuildRun, "build_now")).status_code == 403
        delay.assert_not_called()
        older = services.full_build_run()
        services.build_activate(build_id=built["build"].pk)
        viewer_client.post(_url(BuildRun, "changelist"), {"action": "make_active", "_selected_action": [older.pk]})
        assert selectors.active_build() == built["build"]

    def test_staff_without_view_permission_cannot_preview(self, client, django_user_model, built):
        client.force_login(django_user_model.objects.create_user(username="clerk", password="x", is_staff=True))
        assert client.get(_url(BuildRun, "preview"), {"user": "space0"}).status_code == 403


class TestDeletingAUserWithPicks:
    """The admin asks for the delete permission of every row a delete cascades to, stored picks included."""

    def test_superuser_deletes_a_reader_with_picks(self, admin_client, built, django_capture_on_commit_callbacks):
        from django.contrib.auth import get_user_model

        from recommendations.models import UserRefresh

        reader = built["users"]["space0"]
        assert UserRecommendation.objects.filter(user=reader).exists()
        url = reverse("admin:auth_user_delete", args=[reader.pk])
        assert admin_client.get(url).status_code == 200
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(url, {"post": "yes"})
        assert response.status_code == 302
        assert not get_user_model().objects.filter(pk=reader.pk).exists()
        assert not UserRecommendation.objects.filter(user_id=reader.pk).exists()
        assert not UserRefresh.objects.filter(user_id=reader.pk).exists()
        connection.check_constraints()  # deferred foreign keys: no row points at the deleted reader

    def test_staff_needs_the_picks_delete_permission_too(self, client, django_user_model, built):
        from django.contrib.auth.models import Permission

        clerk = django_user_model.objects.create_user(username="clerk", password="x", is_staff=True)
        clerk.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "delete_user"]))
        client.force_login(clerk)
        url = reverse("admin:auth_user_delete", args=[built["users"]["space0"].pk])
        assert client.post(url, {"post": "yes"}).status_code == 403
        clerk.user_permissions.add(Permission.objects.get(codename="delete_userrecommendation"))
        assert client.post(url, {"post": "yes"}).status_code == 302

    def test_results_still_cannot_be_added_or_changed(self, admin_client, built):
        model_admin = admin.site._registry[UserRecommendation]
        request = RequestFactory().get("/")
        request.user = built["users"]["space0"]
        request.user.is_superuser = True
        assert not model_admin.has_add_permission(request) and not model_admin.has_change_permission(request)
        assert model_admin.has_delete_permission(request)
        request.user.is_superuser = False
        assert not model_admin.has_delete_permission(request)

    @pytest.mark.parametrize("how", ["delete view", "delete selected"])
    def test_deleting_picks_in_the_admin_forgets_stored_bodies(self, admin_client, built, how):
        from recommendations.models import PayloadGeneration

        row = UserRecommendation.objects.order_by("pk").first()
        before = PayloadGeneration.objects.values_list("value", flat=True).first() or 0
        if how == "delete view":
            response = admin_client.post(_url(UserRecommendation, "delete", row.pk), {"post": "yes"})
        else:
            response = admin_client.post(_url(UserRecommendation, "changelist"),
                                         {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"})
        assert response.status_code == 302 and not UserRecommendation.objects.filter(pk=row.pk).exists()
        assert PayloadGeneration.objects.values_list("value", flat=True).first() > before
