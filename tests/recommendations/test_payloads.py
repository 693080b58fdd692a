"""Tests of recommendations/payloads.py: stored picks are served in one query and never outlive a change.

Every invalidation test primes the reader's stored body, checks that it is served (one query),
makes one change, then checks that the default request now answers exactly what the computed
path answers (``?limit=10&format=json`` always computes) and that the change is visible. Removing any one
invalidation makes its test fail.
"""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from recommendations import payloads, selectors, services
from recommendations.models import BuildRun, ItemRule, PayloadGeneration, UserPayload, UserRecommendation
from tests.api_lists import ListResponse
from tests.recommendations.conftest import TESTAPP_RECOMMENDATIONS
from tests.recommendations.testapp.models import Item, Like, Score

URL = "/api/recommendations/"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Selectors cache the editors' rules for a few seconds; a rolled-back test must not leak them."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def built(world):
    services.full_build_run()
    return world


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def computed(client) -> bytes:
    """The slow path: any parameter but ``limit`` skips the stored body (limit=10 is the default)."""
    response = client.get(URL + "?limit=10&format=json")
    assert response.status_code == 200
    return ListResponse(response).content


def default(client):
    response = client.get(URL)
    assert response.status_code == 200
    return ListResponse(response)


def prime(client) -> bytes:
    """Store the reader's body and check that the next request is served from it with one query."""
    body = default(client).content
    assert_stored(client, body)
    return body


def assert_stored(client, body: bytes) -> None:
    with CaptureQueriesContext(connection) as ctx:
        response = default(client)
    assert len(ctx.captured_queries) == 1, [q["sql"] for q in ctx.captured_queries]
    assert response.content == body


def assert_fresh(client, before: bytes) -> list[dict]:
    """After a change: the default request equals the computed one, differs from ``before``, and is stored again."""
    expected = computed(client)
    body = default(client).content
    assert body == expected
    assert body != before, "the change did not alter the picks: the test proves nothing"
    assert_stored(client, body)
    return default(client).json()


def ids(body: list[dict]) -> list[str]:
    return [row["item"]["id"] for row in body]


def top_item(client) -> Item:
    return Item.objects.get(pk=default(client).json()[0]["item"]["id"])


class TestStoredPicks:
    def test_default_request_is_one_query_and_same_bytes_and_headers(self, built):
        client = client_for(built["users"]["space1"])
        first = default(client)
        slow = ListResponse(client.get(URL + "?limit=10&format=json"))
        assert first.content == slow.content
        assert first["Content-Type"] == slow["Content-Type"] == "application/json"
        assert first["Allow"] == slow["Allow"] and first["Vary"] == slow["Vary"]
        assert first.json()[0]["source"] == "personal"
        assert_stored(client, first.content)
        row = UserPayload.objects.get(user=built["users"]["space1"])
        assert row.build_id == selectors.active_build().pk
        assert b'{"recommendation_id":"' + first.recommendation_id.encode() + b'","results":' + bytes(row.body) + b"}" \
            == first.response.content

    def test_identical_to_the_computed_path_for_every_kind_of_reader(self, built):
        User = get_user_model()
        cold = User.objects.create_user("cold", password="x")
        Like.objects.create(user=cold, item=built["items"]["Rockets to Mars"])  # no picks yet: content fallback
        new = User.objects.create_user("new", password="x")  # nothing at all: popular items
        seen = built["users"]["cooking0"]
        Like.objects.create(user=seen, item=top_item(client_for(seen)))  # not refreshed: filtered when served
        sources = set()
        for user in [*built["users"].values(), cold, new]:
            client = client_for(user)
            body = default(client).content
            assert body == computed(client), user.username
            assert_stored(client, body)
            sources |= {row["source"] for row in default(client).json()}
        assert sources == {"personal", "content", "popular"}

    def test_readers_never_get_each_others_body(self, built):
        space, cook = built["users"]["space1"], built["users"]["cooking1"]
        prime(client_for(space))
        body = default(client_for(cook)).content
        assert body == computed(client_for(cook)) and body != default(client_for(space)).content

    def test_token_authentication_reads_the_body_in_the_same_query(self, built):
        user = built["users"]["space1"]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        default(client)
        with CaptureQueriesContext(connection) as ctx:
            default(client)
        assert len(ctx.captured_queries) == 1  # the token, its user and the stored body

    def test_anonymous_gets_a_json_error(self, built):
        response = APIClient().get(URL)
        assert response.status_code in (401, 403) and response.json()["detail"]
        assert not UserPayload.objects.filter(body__isnull=False).exists()

    def test_other_representations_are_computed(self, built):
        client = client_for(built["users"]["space1"])
        body = prime(client)
        indented = client.get(URL, HTTP_ACCEPT="application/json; indent=4")
        assert ListResponse(indented).content != body and ListResponse(indented).json() == default(client).json()
        html = client.get(URL, HTTP_ACCEPT="text/html")
        assert html["Content-Type"].startswith("text/html")

    def test_can_be_turned_off(self, built):
        client = client_for(built["users"]["space1"])
        with override_settings(RECOMMENDATIONS={**TESTAPP_RECOMMENDATIONS, "STORED_PAYLOADS": False}):
            default(client)
            with CaptureQueriesContext(connection) as ctx:
                default(client)
        assert len(ctx.captured_queries) > 1
        assert not UserPayload.objects.filter(body__isnull=False).exists()

    def test_no_active_build_is_never_stored(self, world):
        client = client_for(world["users"]["space1"])
        assert default(client).json() == []
        assert not UserPayload.objects.filter(body__isnull=False).exists()

    def test_a_limit_up_to_the_default_is_the_head_of_the_stored_body(self, built):
        client = client_for(built["users"]["space1"])
        body = prime(client)
        full = default(client).json()
        assert len(full) == 5  # the world's catalogue: a limit above it gets the whole body
        for limit in (1, 3, 5, 9, 10):
            with CaptureQueriesContext(connection) as ctx:
                head = ListResponse(client.get(URL + f"?limit={limit}"))
            assert len(ctx.captured_queries) == 1, (limit, [q["sql"] for q in ctx.captured_queries])
            assert head.json() == full[:limit]
            assert head.content == ListResponse(client.get(URL + f"?limit={limit}&format=json")).content
        assert ListResponse(client.get(URL + "?limit=10")).content == body

    @pytest.mark.parametrize("query", ["limit=11", "limit=05", "limit=3&limit=4", "limit=3&type=item", "limit=0"])
    def test_other_limits_are_computed(self, built, query):
        client = client_for(built["users"]["space1"])
        prime(client)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(f"{URL}?{query}")
        assert response.status_code in (200, 400)
        assert len(ctx.captured_queries) > 1 or response.status_code == 400

    def test_a_stored_head_records_only_the_picks_shown(self, built):
        from recommendations.impressions.recording import impressions_flush
        from recommendations.models import Impression

        client = client_for(built["users"]["space1"])
        prime(client)
        rid = ListResponse(client.get(URL + "?limit=3")).recommendation_id
        impressions_flush()
        assert len(Impression.objects.get(recommendation_id=rid).items) == 3

    def test_a_missing_generation_row_is_recreated(self, built):
        PayloadGeneration.objects.all().delete()
        client = client_for(built["users"]["space1"])
        prime(client)
        assert PayloadGeneration.objects.get().value >= 1


class TestInvalidation:
    def test_new_build(self, built):
        reader = built["users"]["space1"]
        client = client_for(reader)
        before = prime(client)
        first = selectors.active_build()
        other = BuildRun.objects.create(status=BuildRun.Status.SUCCEEDED, algorithm="other")
        pick = built["items"]["Pasta from scratch"]
        UserRecommendation.objects.create(build=other, user=reader, content_type=ContentType.objects.get_for_model(Item),
                                          object_id=str(pick.pk), rank=1, score=5.0)
        services.build_activate(build_id=other.pk)
        assert ids(assert_fresh(client, before))[0] == str(pick.pk)
        # Switching back (the admin's "make active") serves the first build's picks again.
        services.build_activate(build_id=first.pk)
        assert default(client).content == before == computed(client)

    def test_admin_make_active(self, built, admin_client):
        reader = built["users"]["space1"]
        client = client_for(reader)
        before = prime(client)
        other = BuildRun.objects.create(status=BuildRun.Status.SUCCEEDED, algorithm="other")
        UserRecommendation.objects.create(build=other, user=reader, content_type=ContentType.objects.get_for_model(Item),
                                          object_id=str(built["items"]["Pasta from scratch"].pk), rank=1, score=5.0)
        admin_client.post(reverse("admin:recommendations_buildrun_changelist"),
                          {"action": "make_active", "_selected_action": [other.pk]})
        assert selectors.active_build() == other
        assert_fresh(client, before)

    def test_full_build(self, built):
        reader = built["users"]["space1"]
        client = client_for(reader)
        before = prime(client)
        Like.objects.bulk_create([Like(user=reader, item=built["items"]["Bread baking at home"])])  # no signal
        services.full_build_run()
        assert_fresh(client, before)

    @pytest.mark.parametrize("model", [Like, Score])
    def test_interaction_hides_the_item(self, built, model):
        reader = built["users"]["space1"]
        client = client_for(reader)
        before = prime(client)
        top = top_item(client)
        extra = {"stars": 2} if model is Score else {}
        model.objects.create(user=reader, item=top, **extra)
        assert str(top.pk) not in ids(assert_fresh(client, before))

    def test_interaction_deleted(self, built):
        reader = built["users"]["cooking0"]
        client = client_for(reader)
        top = top_item(client)
        like = Like.objects.create(user=reader, item=top)
        before = prime(client)
        assert str(top.pk) not in ids(default(client).json())
        like.delete()
        assert ids(assert_fresh(client, before))[0] == str(top.pk)

    def test_user_refresh(self, built):
        reader = built["users"]["space1"]
        client = client_for(reader)
        Like.objects.create(user=reader, item=built["items"]["Bread baking at home"])  # a new taste, not refreshed
        before = prime(client)
        assert services.user_refresh(user_id=reader.pk)
        assert_fresh(client, before)

    @pytest.mark.parametrize("action", ["pin", "boost", "ban"])
    def test_item_rule(self, built, action):
        client = client_for(built["users"]["space1"])
        before = prime(client)
        rows = ids(default(client).json())
        target = Item.objects.get(pk=rows[-1] if action != "ban" else rows[0])
        services.item_rule_set(obj=target, action=action, factor=50.0)
        after = ids(assert_fresh(client, before))
        if action == "ban":
            assert str(target.pk) not in after
        else:  # first among the picks of its kind (personal, content, popular)
            assert after.index(str(target.pk)) < rows.index(str(target.pk))
        services.item_rule_clear(obj=target)
        assert default(client).content == computed(client) == before

    def test_item_rule_changed_in_the_admin(self, built, admin_client):
        client = client_for(built["users"]["space1"])
        before = prime(client)
        target = top_item(client)
        rule = ItemRule.objects.create(content_type=ContentType.objects.get_for_model(Item), object_id=str(target.pk),
                                       action="ban")
        assert_fresh(client, before)
        admin_client.post(reverse("admin:recommendations_itemrule_delete", args=[rule.pk]), {"post": "yes"})
        assert not ItemRule.objects.exists()
        assert default(client).content == computed(client) == before

    def test_item_unpublished(self, built):
        client = client_for(built["users"]["space1"])
        before = prime(client)
        top = top_item(client)
        top.is_active = False
        top.save()
        assert str(top.pk) not in ids(assert_fresh(client, before))

    def test_item_renamed(self, built):
        client = client_for(built["users"]["space1"])
        before = prime(client)
        top = top_item(client)
        top.name = "A new title"
        top.save()
        assert assert_fresh(client, before)[0]["item"]["title"] == "A new title"

    def test_item_deleted(self, built):
        client = client_for(built["users"]["space1"])
        before = prime(client)
        top = top_item(client)
        top.delete()
        assert str(top.pk) not in ids(assert_fresh(client, before))

    def test_content_neighbours_recomputed(self, built):
        cold = get_user_model().objects.create_user("cold", password="x")
        Like.objects.create(user=cold, item=built["items"]["Rockets to Mars"])
        client = client_for(cold)
        before = prime(client)
        assert {row["source"] for row in default(client).json()} >= {"content"}
        # A text change that bypasses signals, then the recomputation of the item's content neighbours.
        Item.objects.filter(pk=built["items"]["Rockets to Mars"].pk).update(
            description="Bread, pasta and slow cooking stews from an Italian kitchen at home.")
        services.item_content_refresh(content_type_id=ContentType.objects.get_for_model(Item).pk,
                                      object_id=str(built["items"]["Rockets to Mars"].pk))
        assert_fresh(client, before)

    def test_explicit_invalidation_after_a_bulk_update(self, built):
        client = client_for(built["users"]["space1"])
        before = prime(client)
        Item.objects.filter(pk=top_item(client).pk).update(name="Renamed in bulk")
        assert default(client).content == before  # QuerySet.update() sends no signal: documented
        payloads.user_payloads_invalidate()
        assert assert_fresh(client, before)[0]["item"]["title"] == "Renamed in bulk"

    def test_settings_change(self, built):
        client = client_for(built["users"]["space1"])
        before = prime(client)
        Item.objects.filter(pk=top_item(client).pk).update(is_active=False)  # served by the old filter only
        with override_settings(RECOMMENDATIONS={**TESTAPP_RECOMMENDATIONS, "ITEM_FILTERS": {}}):
            assert default(client).content == computed(client)
        with override_settings(RECOMMENDATIONS={**TESTAPP_RECOMMENDATIONS, "MMR_LAMBDA": 0.9}):
            assert default(client).content == computed(client)

    def test_user_deleted(self, built):
        reader = built["users"]["space1"]
        prime(client_for(reader))
        assert UserPayload.objects.filter(user=reader).exists()
        reader.delete()  # their likes go too: must not recreate the row
        assert not UserPayload.objects.filter(user_id=reader.pk).exists()
        connection.check_constraints()  # deferred foreign keys: no row points at the deleted reader

    def test_a_change_during_the_computation_is_not_hidden(self, built, monkeypatch):
        """The body is stored with a compare-and-set on the version read before the computation."""
        reader = built["users"]["space1"]
        client = client_for(reader)
        prime(client)
        Like.objects.create(user=reader, item=built["items"]["Stars and galaxies"])  # invalidate
        real = selectors.recommended_for

        def racing(user, **kwargs):
            items = real(user, **kwargs)  # computed before the like below commits
            Like.objects.create(user=reader, item=items[0])
            return items

        monkeypatch.setattr(selectors, "recommended_for", racing)
        stale = default(client).content
        monkeypatch.setattr(selectors, "recommended_for", real)
        body = default(client).content
        assert body != stale and body == computed(client)

    def test_a_switch_and_back_during_the_computation_is_not_hidden(self, built, monkeypatch):
        reader = built["users"]["space1"]
        client = client_for(reader)
        first = selectors.active_build()
        other = BuildRun.objects.create(status=BuildRun.Status.SUCCEEDED, algorithm="other")
        UserRecommendation.objects.create(build=other, user=reader, content_type=ContentType.objects.get_for_model(Item),
                                          object_id=str(built["items"]["Pasta from scratch"].pk), rank=1, score=5.0)
        real = selectors.recommended_for

        def racing(user, **kwargs):
            services.build_activate(build_id=other.pk)
            items = real(user, **kwargs)  # the other build's picks
            services.build_activate(build_id=first.pk)
            return items

        monkeypatch.setattr(selectors, "recommended_for", racing)
        mixed = default(client).content
        monkeypatch.setattr(selectors, "recommended_for", real)
        assert default(client).content == computed(client) != mixed

    def test_placeholder_for_a_reader_without_a_row(self, built):
        reader = built["users"]["space1"]
        UserPayload.objects.all().delete()
        services.user_refresh(user_id=reader.pk)  # an invalidation creates the row (upsert)
        version = UserPayload.objects.get(user=reader).version
        services.user_refresh(user_id=reader.pk)
        assert UserPayload.objects.get(user=reader).version != version


def test_payloads_clear_command_makes_every_body_stale(built):
    from django.core.management import call_command

    client = client_for(built["users"]["space1"])
    prime(client)
    call_command("recommendations", "payloads-clear")
    with CaptureQueriesContext(connection) as ctx:
        body = default(client).content
    assert len(ctx.captured_queries) > 1  # computed again
    assert body == computed(client)
