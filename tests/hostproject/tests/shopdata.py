"""Provides the shop the host project's tests share: two groups of products, four customers each."""
from __future__ import annotations

from tests.hostproject.shop.models import Customer, Product, Purchase

GROUPS = {
    "camping": ["Tent for two", "Sleeping bag", "Camping stove", "Head torch"],
    "baking": ["Stand mixer", "Loaf tin", "Proving basket", "Baking stone"],
}


def shop_create() -> tuple[dict[str, Product], dict[str, Customer]]:
    """Create the products and customers; customer ``<group><i>`` bought every product of the group but the i-th."""
    products = {name: Product.objects.create(name=name, description=f"{group} gear: {name.lower()}")
                for group, names in GROUPS.items() for name in names}
    customers = {}
    for group, names in GROUPS.items():
        for i in range(4):
            customers[f"{group}{i}"] = customer = Customer.objects.create_user(f"{group}{i}@example.com", "pw")
            for j, name in enumerate(names):
                if j != i:
                    Purchase.objects.create(buyer=customer, product=products[name])
    return products, customers
