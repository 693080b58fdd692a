"""The shop in two languages: the app's explanations, API and admin follow the request's language."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from recommendations import selectors, services
from tests.api_lists import results
from tests.hostproject.shop.models import Customer, Product, Purchase

from .test_host import shop  # noqa: F401 - the shared fixture


@pytest.fixture
def built(shop):  # noqa: F811
    services.full_build_run()
    return shop


def _german(text: str) -> bool:
    return text.startswith("Weil Sie ") and text.endswith(" gelesen haben")


class TestExplanations:
    def test_selectors_speak_the_active_language(self, built):
        customer = built["customers"]["camping1"]
        with translation.override("de"):
            (pick,) = selectors.recommended_for(customer, n=1)
        assert _german(pick.rec_because), pick.rec_because
        (pick,) = selectors.recommended_for(customer, n=1)
        assert pick.rec_because.startswith("Because you read ")

    def test_product_page_in_german(self, built, client):
        client.force_login(built["customers"]["camping2"])
        url = built["products"]["Tent for two"].get_absolute_url()
        html = client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode()
        assert "Weil Sie " in html[html.index('id="picks"'):] and "Because you read" not in html
        assert "Because you read" in client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()


class TestApi:
    def test_because_text_and_cited_items(self, built, client):
        customer = built["customers"]["camping3"]
        client.force_login(customer)
        row = results(client.get("/api/recommendations/", HTTP_ACCEPT_LANGUAGE="de"))[0]
        assert _german(row["because"]), row["because"]
        bought = {str(p.pk): p.name for p in Product.objects.filter(purchases__buyer=customer)}
        assert row["because_items"] and all(
            cited["type"] == "shop.product" and bought[cited["id"]] == cited["title"] for cited in row["because_items"])
        assert [c["title"] for c in row["because_items"]] == [e["title"] for e in row["explanation"]]
        for cited in row["because_items"]:
            assert cited["title"] in row["because"]

    def test_stored_bodies_follow_the_language(self, built, client):
        customer = built["customers"]["baking1"]
        client.force_login(customer)
        for language, check in (("de", _german), ("en", lambda t: t.startswith("Because you read ")),
                                ("de", _german)):
            for _ in range(2):  # the second request is served from the stored body
                stored = results(client.get("/api/recommendations/", HTTP_ACCEPT_LANGUAGE=language))
                assert check(stored[0]["because"]), (language, stored[0]["because"])
            computed = results(client.get("/api/recommendations/", {"limit": 10}, HTTP_ACCEPT_LANGUAGE=language))
            assert computed == stored


class TestAdmin:
    def test_preview_in_german(self, built, client):
        client.force_login(Customer.objects.create_superuser("chefin@example.com", "pw"))
        customer = built["customers"]["camping0"]
        html = client.get(reverse("admin:recommendations_buildrun_preview"), {"user": str(customer.pk)},
                          HTTP_ACCEPT_LANGUAGE="de").content.decode()
        assert "Vorschau als Leser" in html and "Top-Empfehlungen für" in html and "Weil Sie " in html
        html = client.get(reverse("admin:recommendations_buildrun_changelist"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
        assert "Jetzt berechnen" in html and "Aktive Berechnung" in html
