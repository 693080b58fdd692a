"""The drop-in proof: a shop project installs recommendations, migrates, builds and serves correct results.

Run by tests/test_hostproject.py in its own pytest process with ``tests.hostproject.settings``:
UUID primary keys everywhere, a custom user model (``shop.Customer``, signs in by email),
no ``articles`` and no ``bre_site`` loaded.
"""
from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core import checks
from django.core.management import call_command
from django.template import Context, Template
from django.urls import reverse

from recommendations import selectors, services
from recommendations.build import load
from recommendations.models import BuildRun, ItemRule, SimilarItem, UserRecommendation
from tests.api_lists import ListResponse
from tests.hostproject.shop.models import Customer, Product, Purchase, Review

GROUPS = {
    "camping": ["Tent for two", "Sleeping bag", "Camping stove", "Head torch"],
    "baking": ["Stand mixer", "Loaf tin", "Proving basket", "Baking stone"],
}


@pytest.fixture
def shop(db):
    """Two taste groups of four customers; each buys three of the four products of their group."""
    products = {}
    for group, names in GROUPS.items():
        for name in names:
            products[name] = Product.objects.create(name=name, description=f"{group} gear: {name.lower()}")
    customers = {}
    for group, names in GROUPS.items():
        for i in range(4):
            customer = Customer.objects.create_user(f"{group}{i}@example.com", "pw")
            customers[f"{group}{i}"] = customer
            for j, name in enumerate(names):
                if j != i:
                    Purchase.objects.create(buyer=customer, product=products[name], quantity=1 + j % 2)
    Review.objects.create(author=customers["camping0"], product=products["Loaf tin"], stars=1)
    return {"products": products, "customers": customers}


def _names(items) -> list[str]:
    return [item.name for item in items]


def _render(source: str, **context) -> str:
    return Template("{% load recommendations %}" + source).render(Context(context)).strip()


class TestProject:
    def test_no_bre_code_is_loaded(self):
        assert not apps.is_installed("articles") and "articles" not in sys.modules
        assert not any(name == "bre_site" or name.startswith("bre_site.") for name in sys.modules)
        assert settings.AUTH_USER_MODEL == "shop.Customer"
        assert isinstance(Customer._meta.pk, type(Product._meta.pk)) and Product._meta.pk.get_internal_type() == "UUIDField"

    def test_system_checks_pass(self):
        assert [m for m in checks.run_checks() if m.is_serious()] == []

    def test_no_missing_migrations(self, db):
        call_command("makemigrations", "--check", "--dry-run", verbosity=0)

    def test_recommendations_migrations_do_not_depend_on_the_host(self):
        from django.db.migrations.loader import MigrationLoader

        loader = MigrationLoader(None, ignore_no_migrations=True)
        deps = [dep for (app_label, _), migration in loader.disk_migrations.items() if app_label == "recommendations"
                for dep in migration.dependencies]
        # The only link to the host is the swappable user model (as in django.contrib.admin's migrations).
        assert {dep for dep in deps if dep[0] == "shop"} == {("shop", "__first__")}
        import recommendations

        source = (Path(recommendations.__file__).parent / "migrations" / "0001_initial.py").read_text()
        assert "swappable_dependency(settings.AUTH_USER_MODEL)" in source and "shop" not in source

    def test_celery_app_imports_nothing_from_recommendations_and_finds_its_tasks(self):
        from tests.hostproject.celery import app

        source = (Path(__file__).parents[1] / "celery.py").read_text()
        assert "import recommendations" not in source and "from recommendations" not in source
        app.loader.import_default_modules()
        app.autodiscover_tasks(force=True)
        assert {"recommendations.full_build_fan_out", "recommendations.build_part", "recommendations.build_score_chunk",
                "recommendations.build_finalize", "recommendations.user_refresh", "recommendations.item_content_refresh",
                "recommendations.pending_refreshes_run"} <= set(app.tasks)
        # The old names stay registered for messages queued before an upgrade.
        assert {"recommendations.full_build", "recommendations.refresh_pending_users"} <= set(app.tasks)


class TestFullBuildRun:
    def test_similar_items_stay_in_their_group(self, shop):
        build = services.full_build_run()
        assert build.is_active and build.status == BuildRun.Status.SUCCEEDED
        assert build.counts["users"] == 8 and build.counts["items"] == 8
        tent = shop["products"]["Tent for two"]
        neighbours = selectors.similar_to(tent, kind="collaborative", n=3)
        assert neighbours and set(_names(neighbours)) <= set(GROUPS["camping"]) - {"Tent for two"}
        content = selectors.similar_to(shop["products"]["Loaf tin"], kind="content", n=3)
        assert content and all(isinstance(p, Product) for p in content)

    def test_each_customer_gets_the_product_they_did_not_buy(self, shop):
        services.full_build_run()
        for group, names in GROUPS.items():
            for i in range(4):
                picks = selectors.recommended_for(shop["customers"][f"{group}{i}"], n=3)
                assert picks[0].name == names[i] and picks[0].rec_source == "personal"
                assert picks[0].rec_because.startswith("Because you read ")

    def test_uuid_keys_are_stored_as_text_and_read_back(self, shop):
        services.full_build_run()
        customer = shop["customers"]["baking2"]
        row = UserRecommendation.objects.filter(build__is_active=True, user=customer).order_by("rank").first()
        assert isinstance(row.user_id, uuid.UUID)
        assert uuid.UUID(row.object_id) == shop["products"]["Proving basket"].pk
        assert str(row.object_id) == str(shop["products"]["Proving basket"].pk)

    def test_a_builds_columns_agree_with_the_rows(self, shop):
        """UUID customers and products, a weight field: the full build's reader gives what the row reader gives."""
        from recommendations.adapters import get_adapter

        adapter = get_adapter()
        cols = adapter.interaction_columns()
        rows = list(adapter.interaction_rows())
        key = repr
        got = sorted(zip(cols.user_id, cols.object_id, cols.kind.tolist(), cols.weight.tolist(),
                         [None if s != s else s for s in cols.stars.tolist()]), key=key)
        want = sorted(((r.user_id, r.item_key[1], r.kind, float(r.weight) if r.weight is not None else None,
                        float(r.stars) if r.stars is not None else None) for r in rows), key=key)
        assert len(got) == Purchase.objects.count() + Review.objects.count() == 25
        assert [g[:3] for g in got] == [w[:3] for w in want] and all(isinstance(g[0], uuid.UUID) for g in got)
        assert [g[4] for g in got] == [w[4] for w in want] and sorted(g[4] for g in got if g[4] is not None) == [1.0]
        assert [g[3] for g in got if g[2] == "weight"] == [w[3] for w in want if w[2] == "weight"]
        assert sorted(g[3] for g in got if g[2] == "weight") == sorted(float(p.quantity) for p in Purchase.objects.all())
        assert cols.timestamp.tolist() and all(t == t for t in cols.timestamp.tolist())

    def test_inactive_products_and_banned_ones_are_not_served(self, shop):
        services.full_build_run()
        customer = shop["customers"]["camping1"]
        bag = shop["products"]["Sleeping bag"]
        assert selectors.recommended_for(customer, n=1)[0] == bag
        services.item_rule_set(obj=bag, action="ban")
        assert bag not in selectors.recommended_for(customer, n=8)
        services.item_rule_clear(obj=bag)
        Product.objects.filter(pk=bag.pk).update(is_active=False)
        assert bag not in selectors.recommended_for(customer, n=8)

    def test_deleting_a_customer_deletes_their_picks(self, shop):
        services.full_build_run()
        customer = shop["customers"]["camping3"]
        assert UserRecommendation.objects.filter(user=customer).exists()
        customer.delete()
        assert not UserRecommendation.objects.filter(user_id=customer.pk).exists()


class TestEagerCelery:
    def test_build_through_the_tasks_gives_the_same_results(self, shop, django_capture_on_commit_callbacks,
                                                             monkeypatch):
        # A running clock from half past the hour: the builds' decay clock (the next whole hour) is then one.
        offset = time.time() // 3600 * 3600 + 1800 - time.time()
        monkeypatch.setattr(load, "time", SimpleNamespace(time=lambda: time.time() + offset))
        direct = services.full_build_run()
        expected = {name: _names(selectors.recommended_for(c, n=4)) for name, c in shop["customers"].items()}
        with django_capture_on_commit_callbacks(execute=True):
            queued = services.full_build_start(triggered_by="host")
        queued.refresh_from_db()
        assert queued.pk != direct.pk and queued.is_active and queued.status == BuildRun.Status.SUCCEEDED
        got = {name: _names(selectors.recommended_for(c, n=4)) for name, c in shop["customers"].items()}
        assert got == expected

    def test_a_new_purchase_refreshes_the_customers_picks(self, shop, django_capture_on_commit_callbacks):
        services.full_build_run()
        customer = shop["customers"]["camping0"]
        before = _names(selectors.recommended_for(customer, n=3))
        assert before[0] == "Tent for two" and not UserRecommendation.objects.filter(source="refresh").exists()
        with django_capture_on_commit_callbacks(execute=True):
            Purchase.objects.create(buyer=customer, product=shop["products"]["Tent for two"])
            Purchase.objects.create(buyer=customer, product=shop["products"]["Stand mixer"])
        rows = UserRecommendation.objects.filter(build__is_active=True, user=customer)
        assert rows.exists() and set(rows.values_list("source", flat=True)) == {"refresh"}
        picks = selectors.recommended_for(customer, n=3)
        # Everything camping is bought now; the mixer's baking neighbours lead, explained by the mixer.
        assert picks[0].name in {"Proving basket", "Baking stone"} and picks[0].rec_source == "personal"
        assert "Stand mixer" in picks[0].rec_because
        assert not {"Tent for two", "Stand mixer"} & set(_names(picks))

    def test_a_new_product_gets_content_neighbours_on_save(self, shop, django_capture_on_commit_callbacks):
        services.full_build_run()
        with django_capture_on_commit_callbacks(execute=True):
            lantern = Product.objects.create(name="Camping lantern", description="camping gear: a lantern")
        assert SimilarItem.objects.filter(build__is_active=True, kind="content", object_id=str(lantern.pk)).exists()
        assert "Camping stove" in _names(selectors.similar_to(lantern, kind="content", n=5))


class TestTemplateTags:
    def test_recommended_for_tag(self, shop):
        services.full_build_run()
        customer = shop["customers"]["baking1"]
        out = _render("{% recommended_for user limit=5 as recs %}{% for r in recs %}{{ r.name }}|{% endfor %}",
                      user=customer)
        names = out.rstrip("|").split("|")
        assert names[0] == "Loaf tin" and len(names) == 5
        assert names == _names(selectors.recommended_for(customer, n=5))

    def test_similar_items_tag(self, shop):
        services.full_build_run()
        stove = shop["products"]["Camping stove"]
        out = _render('{% similar_items obj kind="collaborative" limit=3 as items %}'
                      "{% for i in items %}{{ i.name }}|{% endfor %}", obj=stove)
        assert out and set(out.rstrip("|").split("|")) <= set(GROUPS["camping"]) - {"Camping stove"}
        out = _render("{% similar_items obj as items %}{{ items|length }}", obj=stove)
        assert int(out) > 0

    def test_popular_items_tag_for_anonymous(self, shop):
        from django.contrib.auth.models import AnonymousUser

        services.full_build_run()
        out = _render('{% recommended_for user limit=3 as recs %}{% for r in recs %}{{ r.rec_source }} {% endfor %}'
                      '{% popular_items model="shop.product" limit=2 as top %}{{ top|length }}', user=AnonymousUser())
        assert out == "popular popular popular 2"

    def test_product_page_renders_with_the_tags(self, shop, client):
        services.full_build_run()
        customer = shop["customers"]["camping2"]
        client.force_login(customer)
        html = client.get(shop["products"]["Tent for two"].get_absolute_url()).content.decode()
        picks = html[html.index('id="picks"'):]
        assert "Camping stove" in picks and "Because you read" in picks
        assert "Sleeping bag" in html[html.index('id="also-bought"'):html.index('id="picks"')]


class TestAdminAndApi:
    @pytest.fixture
    def staff_client(self, client, shop):
        admin = Customer.objects.create_superuser("boss@example.com", "pw")
        client.force_login(admin)
        return client

    def test_admin_pages_and_preview(self, staff_client, shop):
        build = services.full_build_run()
        for name in ("buildrun", "similaritem", "userrecommendation", "popularitem", "itemrule"):
            assert staff_client.get(reverse(f"admin:recommendations_{name}_changelist")).status_code == 200
        assert staff_client.get(reverse("admin:recommendations_buildrun_change", args=[build.pk])).status_code == 200
        tent = shop["products"]["Tent for two"]
        html = staff_client.get(reverse("admin:shop_product_change", args=[tent.pk])).content.decode()
        assert "Stored neighbours" in html and "Sleeping bag" in html
        response = staff_client.get(reverse("admin:recommendations_buildrun_preview"),
                                    {"user": "camping0@example.com"})
        assert [p.name for p in response.context["picks"]][0] == "Tent for two"
        customer = shop["customers"]["baking0"]
        response = staff_client.get(reverse("admin:recommendations_buildrun_preview"), {"user": str(customer.pk)})
        assert response.context["reader"] == customer

    def test_admin_ban_action_on_products(self, staff_client, shop):
        services.full_build_run()
        tent = shop["products"]["Tent for two"]
        staff_client.post(reverse("admin:shop_product_changelist"),
                          {"action": "recommendation_ban", "_selected_action": [str(tent.pk)]})
        rule = ItemRule.objects.get()
        assert rule.content_type == ContentType.objects.get_for_model(Product) and rule.object_id == str(tent.pk)
        assert tent not in selectors.recommended_for(shop["customers"]["camping0"], n=8)

    def test_api_serves_a_customers_picks_and_neighbours(self, client, shop):
        services.full_build_run()
        client.force_login(shop["customers"]["camping3"])
        response = client.get("/api/recommendations/")
        assert response.status_code == 200, response.content
        body = response.json()
        rows = body["results"] if isinstance(body, dict) else body
        assert rows and "Head torch" in str(rows[0])
        stove = shop["products"]["Camping stove"]
        response = client.get(f"/api/items/shop.product/{stove.pk}/similar/", {"kind": "collaborative"})
        assert response.status_code == 200, response.content
        assert "Tent for two" in response.content.decode() or "Sleeping bag" in response.content.decode()

    def test_api_stored_picks_of_a_uuid_customer(self, client, shop, django_assert_max_num_queries):
        services.full_build_run()
        customer = shop["customers"]["camping3"]
        client.force_login(customer)
        first = client.get("/api/recommendations/")
        assert first.status_code == 200 and "Head torch" in first.content.decode()
        with django_assert_max_num_queries(3):  # the session, the customer, the stored body
            again = client.get("/api/recommendations/")
        computed = client.get("/api/recommendations/", {"limit": 10})
        assert ListResponse(again).content == ListResponse(first).content == ListResponse(computed).content
        Purchase.objects.create(buyer=customer, product=shop["products"]["Head torch"], quantity=1)
        after = client.get("/api/recommendations/")
        assert "Head torch" not in after.content.decode()
        assert ListResponse(after).content == ListResponse(client.get("/api/recommendations/", {"limit": 10})).content

    # Known gaps of recommendations/api in a host without BRE's REST_FRAMEWORK settings (reported to the
    # API engineer); non-strict so that the fix simply turns them into passes.
    def test_api_staff_may_ask_for_a_uuid_users_picks(self, staff_client, shop):
        services.full_build_run()
        customer = shop["customers"]["camping3"]
        response = staff_client.get("/api/recommendations/", {"user": str(customer.pk)})
        assert response.status_code == 200 and "Head torch" in response.content.decode()

    def test_api_builds_list_without_global_pagination(self, staff_client, shop):
        build = services.full_build_run()
        response = staff_client.get("/api/builds/")
        assert response.status_code == 200 and str(build.pk) in response.content.decode()
