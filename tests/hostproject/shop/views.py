"""The shop's one page: a product with its similar products and the customer's picks, from the template tags."""
from django.shortcuts import get_object_or_404, render

from .models import Product


def product_detail(request, pk):
    return render(request, "shop/product.html", {"product": get_object_or_404(Product, pk=pk, is_active=True)})
