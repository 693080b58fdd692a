"""URLs of the host project: the admin, the recommendations API and one product page."""
from django.contrib import admin
from django.urls import include, path

from .shop import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("recommendations.api.urls")),
    path("products/<uuid:pk>/", views.product_detail, name="product-detail"),
]
