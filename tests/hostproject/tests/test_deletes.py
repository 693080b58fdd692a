"""Deleting customers (shell, bulk, admin) and products with real commits: the hooks raise nothing, no row is left."""
from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.urls import reverse

from recommendations import services
from recommendations.models import UserPayload, UserRecommendation, UserRefresh
from tests.hostproject.shop.models import Customer, Product, Review
from tests.hostproject.tests.shopdata import shop_create

pytestmark = pytest.mark.django_db(transaction=True)

@pytest.fixture
def shop():
    products, customers = shop_create()
    Review.objects.create(author=customers["camping0"], product=products["Loaf tin"], stars=1)
    services.full_build_run()
    return {"products": products, "customers": customers}


@pytest.fixture
def problems(caplog):
    """Every warning, error or traceback logged while the test runs."""
    caplog.set_level(logging.INFO)
    yield lambda: [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def _gone(pk) -> None:
    for model in (UserRecommendation, UserRefresh, UserPayload):
        assert not model.objects.filter(user_id=pk).exists(), model
    connection.check_constraints()


def test_deleting_a_customer_with_purchases_and_reviews(shop, problems):
    customer = shop["customers"]["camping0"]
    pk = customer.pk
    services.user_refresh_request(user_id=pk)  # a pending refresh row too
    assert UserRecommendation.objects.filter(user_id=pk).exists() and UserRefresh.objects.filter(user_id=pk).exists()
    customer.delete()
    _gone(pk)
    assert problems() == []


def test_deleting_customers_in_bulk(shop, problems):
    pks = [shop["customers"]["camping1"].pk, shop["customers"]["baking1"].pk]
    Customer.objects.filter(pk__in=pks).delete()
    for pk in pks:
        _gone(pk)
    assert problems() == []


def test_the_admin_deletes_a_customer_with_picks(shop, client, problems):
    client.force_login(Customer.objects.create_superuser("boss@example.com", "pw"))
    customer = shop["customers"]["baking2"]
    url = reverse("admin:shop_customer_delete", args=[customer.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Customer.objects.filter(pk=customer.pk).exists()
    _gone(customer.pk)
    assert problems() == []


def test_deleting_a_product_drops_the_rows_pointing_at_it(shop, problems):
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import Q

    from recommendations import selectors
    from recommendations.models import PopularItem, SimilarItem

    tent = shop["products"]["Tent for two"]  # camping0's pick, bought by the three other camping customers
    ct, oid = ContentType.objects.get_for_model(Product), str(tent.pk)
    item, target = Q(content_type=ct, object_id=oid), Q(target_content_type=ct, target_object_id=oid)

    def pointing():
        return [SimilarItem.objects.filter(item | target).count(), UserRecommendation.objects.filter(item).count(),
                PopularItem.objects.filter(item).count()]

    assert all(pointing())
    tent.delete()
    assert pointing() == [0, 0, 0]
    for customer in shop["customers"].values():
        services.user_refresh(user_id=customer.pk)
    assert pointing() == [0, 0, 0]
    assert "Tent for two" not in [p.name for p in selectors.recommended_for(shop["customers"]["camping0"], n=6)]
    assert problems() == []
