"""The app's model hooks listen only to the models they concern, so every other model keeps Django's fast delete."""
from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.sessions.models import Session
from django.db.models.deletion import Collector

from recommendations.models import BuildArtifact, PopularItem, SimilarItem, UserRecommendation
from tests.recommendations.testapp.models import Item, Like


@pytest.mark.parametrize("model", [UserRecommendation, SimilarItem, PopularItem, BuildArtifact, Session])
def test_bulk_tables_and_the_hosts_other_models_keep_the_fast_delete(db, model):
    """One DELETE, not a fetch and a signal per row: pruning a build's picks, or any bulk delete of the host."""
    assert Collector(using="default").can_fast_delete(model.objects.filter(pk__in=[]))


def test_pruning_an_old_build_deletes_its_picks_with_one_query(world, django_assert_max_num_queries):
    from recommendations import services

    build = services.full_build_run()
    assert UserRecommendation.objects.filter(build=build).count() >= 8
    with django_assert_max_num_queries(1):
        UserRecommendation.objects.filter(build=build).delete()


def test_the_configured_models_are_hooked_after_the_settings_change(world, django_capture_on_commit_callbacks):
    """``override_settings(RECOMMENDATIONS=...)`` (the ``world`` fixture's testapp) moves the hooks to its models."""
    assert not Collector(using="default").can_fast_delete(Like.objects.filter(pk__in=[]))
    assert not Collector(using="default").can_fast_delete(Item.objects.filter(pk__in=[]))
    like = Like.objects.select_related("user").first()
    with mock.patch("recommendations.tasks.user_refresh_request") as request, \
            django_capture_on_commit_callbacks(execute=True):
        like.delete()
    request.assert_called_once_with(user_id=like.user_id)


def test_the_sites_models_are_hooked_again_when_the_override_ends(db):
    from articles.models import Rating

    assert not Collector(using="default").can_fast_delete(Rating.objects.filter(pk__in=[]))
    assert Collector(using="default").can_fast_delete(Like.objects.filter(pk__in=[]))


def test_the_save_hook_listens_to_the_configured_models_only(world, django_capture_on_commit_callbacks):
    """Saving a model the app does not know runs none of its code; saving an item does."""
    from django.contrib.auth.models import Group

    from recommendations import signals

    with mock.patch.object(signals, "_item_changed") as item_changed, \
            mock.patch.object(signals, "_interaction_changed") as interaction_changed:
        Group.objects.create(name="editors")
        Session.objects.create(session_key="k" * 32, session_data="", expire_date="2030-01-01T00:00:00Z")
        assert not item_changed.called and not interaction_changed.called
        Item.objects.create(name="A new item")
        assert item_changed.call_count == 1


def test_a_rule_saved_or_deleted_clears_the_rules_cache(world):
    from recommendations import rules, services

    item = Item.objects.first()
    assert rules.rules_by_key() == {}
    services.item_rule_set(obj=item, action="ban")
    assert [rule.action for rule in rules.rules_by_key().values()] == ["ban"]
    services.item_rule_clear(obj=item)
    assert rules.rules_by_key() == {}
