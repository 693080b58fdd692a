"""The shop's admin: the product admin gets the recommendation controls from the reusable mixin."""
from django.contrib import admin

from recommendations.admin import ItemRecommendationsAdminMixin

from .models import Customer, Product


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("email", "is_staff")
    search_fields = ("email",)


@admin.register(Product)
class ProductAdmin(ItemRecommendationsAdminMixin, admin.ModelAdmin):
    list_display = ("name", "is_active", "recommendation_rule_display")
    search_fields = ("name",)
    readonly_fields = ("recommendation_rule", "recommendation_neighbours")
