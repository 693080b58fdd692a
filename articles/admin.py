"""Provides the admin of the site: content (tags, articles, books) and what readers did, with recommendation controls."""
from __future__ import annotations

from django.contrib import admin
from django.db import models

from recommendations.admin import ItemRecommendationsAdminMixin, item_link

from .models import Article, Book, NotInterested, Rating, Read, Tag


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


class ItemAdmin(ItemRecommendationsAdminMixin, admin.ModelAdmin):
    """Shared by articles and books: the item's rule and stored neighbours, and pin/boost/ban actions."""

    list_filter = ("is_published", "tags")
    list_editable = ("is_published",)
    autocomplete_fields = ("tags",)
    readonly_fields = ("created_at", "recommendation_rule", "recommendation_neighbours", "recommendation_cold")
    recommendation_fieldset = ("Recommendations", {
        "fields": ("recommendation_rule", "recommendation_neighbours", "recommendation_cold"),
        "description": "Neighbours stored by the active build; the rule applies to every recommendation list.",
    })


@admin.register(Article)
class ArticleAdmin(ItemAdmin):
    list_display = ("title", "author", "published_at", "is_published", "recommendation_rule_display")
    search_fields = ("title", "author", "summary", "external_id")
    date_hierarchy = "published_at"
    prepopulated_fields = {"slug": ("title",)}
    fieldsets = (
        (None, {"fields": ("title", "slug", "author", "published_at", "is_published", "tags")}),
        ("Text", {"fields": ("summary", "body")}),
        ("Import", {"fields": ("external_id", "created_at"), "classes": ("collapse",)}),
        ItemAdmin.recommendation_fieldset,
    )


@admin.register(Book)
class BookAdmin(ItemAdmin):
    list_display = ("title", "authors", "year", "is_published", "recommendation_rule_display")
    search_fields = ("title", "authors", "isbn", "external_id")
    list_filter = ("is_published", "year", "tags")
    date_hierarchy = "created_at"
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = (
        (None, {"fields": ("title", "authors", "year", "isbn", "is_published", "tags")}),
        ("Text and cover", {"fields": ("description", "cover_url")}),
        ("Import", {"fields": ("external_id", "created_at"), "classes": ("collapse",)}),
        ItemAdmin.recommendation_fieldset,
    )


class InteractionAdmin(admin.ModelAdmin):
    """Reader activity: the item is a generic relation, prefetched per page (one query per item model)."""

    list_select_related = ("user", "content_type")
    list_filter = (("created_at", admin.DateFieldListFilter), "content_type")
    autocomplete_fields = ("user",)
    # No date_hierarchy: its distinct-years query scans the whole table, while the date filter
    # (today, past 7 days, this month, this year) uses the index.
    # Exact username only: an OR with another column would stop the database using the user index.
    search_fields = ("=user__username",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("item")

    @admin.display(description="item")
    def item_display(self, obj):
        return item_link(obj.item) if obj.item is not None else f"{obj.content_type.model} {obj.object_id} (deleted)"


@admin.register(Read)
class ReadAdmin(InteractionAdmin):
    list_display = ("user", "item_display", "dwell_seconds", "progress", "created_at")
    readonly_fields = ("updated_at",)


@admin.register(Rating)
class RatingAdmin(InteractionAdmin):
    list_display = ("user", "item_display", "stars", "updated_at")
    list_filter = (("updated_at", admin.DateFieldListFilter), "stars", "content_type")


@admin.register(NotInterested)
class NotInterestedAdmin(InteractionAdmin):
    list_display = ("user", "item_display", "created_at")
    date_hierarchy = "created_at"  # a small table
