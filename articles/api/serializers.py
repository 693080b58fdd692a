"""Provides the serializers of the site's API: validated input for writes, output for items and interactions."""
from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from articles.models import Article, Book, NotInterested, Rating, Read, Tag
from articles.recommendation_adapter import ArticlesAdapter

ITEM_TYPE_CHOICES = ["article", "book"]
MAX_ID = 2**63 - 1
MAX_DWELL_SECONDS = 7 * 24 * 3600


class StrictFloatField(serializers.FloatField):
    """A float that refuses booleans, NaN and infinities (``float("nan")`` passes DRF's min/max checks)."""

    default_error_messages = {"invalid": "A finite number is required."}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if value != value or value in (float("inf"), float("-inf")):
            self.fail("invalid")
        return value


class StrictIntegerField(serializers.IntegerField):
    """An integer that refuses booleans (``True`` would otherwise be read as 1)."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


# --- items ---------------------------------------------------------------------------------------


class TagOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["name", "slug"]


class ArticleOutputSerializer(serializers.ModelSerializer):
    type = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    tags = TagOutputSerializer(many=True, read_only=True)
    reading_minutes = serializers.IntegerField(read_only=True)

    class Meta:
        model = Article
        fields = ["id", "type", "title", "slug", "summary", "author", "tags", "published_at", "reading_minutes", "url"]

    def get_type(self, obj: Article) -> str:
        return "article"

    def get_url(self, obj: Article) -> str:
        return obj.get_absolute_url()


class ArticleDetailOutputSerializer(ArticleOutputSerializer):
    class Meta(ArticleOutputSerializer.Meta):
        fields = [*ArticleOutputSerializer.Meta.fields, "body"]


class BookOutputSerializer(serializers.ModelSerializer):
    type = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    tags = TagOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Book
        fields = ["id", "type", "title", "authors", "year", "isbn", "cover_url", "tags", "url"]

    def get_type(self, obj: Book) -> str:
        return "book"

    def get_url(self, obj: Book) -> str:
        return obj.get_absolute_url()


class BookDetailOutputSerializer(BookOutputSerializer):
    class Meta(BookOutputSerializer.Meta):
        fields = [*BookOutputSerializer.Meta.fields, "description"]


# --- interactions -----------------------------------------------------------------------------------


class ItemRefInputSerializer(serializers.Serializer):
    """Names one article or book."""

    item_type = serializers.ChoiceField(choices=ITEM_TYPE_CHOICES, help_text="article or book")
    item_id = StrictIntegerField(min_value=1, max_value=MAX_ID)


class InteractionItemSerializer(serializers.Serializer):
    """The item an interaction is about, as the recommendation adapter describes it."""

    type = serializers.CharField()
    id = serializers.CharField()
    title = serializers.CharField()
    url = serializers.CharField(allow_null=True)


_adapter = ArticlesAdapter()


@extend_schema_field(InteractionItemSerializer(allow_null=True))
class _ItemField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, row) -> dict[str, Any] | None:
        obj = getattr(row, "item_obj", None)
        if obj is None:
            obj = row.item
        return _adapter.item_payload(obj) if obj is not None else None


class _InteractionOutputSerializer(serializers.ModelSerializer):
    item_type = serializers.SerializerMethodField()
    item_id = serializers.IntegerField(source="object_id", read_only=True)
    item = _ItemField()
    user = serializers.IntegerField(source="user_id", read_only=True)

    def get_item_type(self, row) -> str:
        # ContentType.objects caches by id, so this costs no query after the first.
        return ContentType.objects.get_for_id(row.content_type_id).model




_DWELL_MESSAGES = {
    "min_value": "dwell_seconds cannot be negative.",
    "max_value": f"dwell_seconds must be at most {MAX_DWELL_SECONDS} (a week).",
}
_PROGRESS_MESSAGES = {
    "min_value": "progress must be between 0 and 1.",
    "max_value": "progress must be between 0 and 1.",
}


class ReadCreateInputSerializer(ItemRefInputSerializer):
    dwell_seconds = StrictFloatField(min_value=0, max_value=MAX_DWELL_SECONDS, default=0.0,
                                     error_messages=_DWELL_MESSAGES, help_text="Seconds the page was visible.")
    progress = StrictFloatField(min_value=0, max_value=1, default=0.0, error_messages=_PROGRESS_MESSAGES,
                                help_text="How far the reader got, 0 to 1.")


class ReadUpdateInputSerializer(serializers.Serializer):
    """Dwell time and progress of a read; values only grow (a beacon may arrive twice)."""

    dwell_seconds = StrictFloatField(min_value=0, max_value=MAX_DWELL_SECONDS, required=False,
                                     error_messages=_DWELL_MESSAGES)
    progress = StrictFloatField(min_value=0, max_value=1, required=False, error_messages=_PROGRESS_MESSAGES)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Send dwell_seconds, progress or both.")
        return attrs


class ReadOutputSerializer(_InteractionOutputSerializer):
    class Meta:
        model = Read
        fields = ["id", "user", "item_type", "item_id", "item", "dwell_seconds", "progress", "created_at", "updated_at"]


_STARS_MESSAGE = "stars must be a whole number from 1 to 5."


class RatingSetInputSerializer(ItemRefInputSerializer):
    stars = StrictIntegerField(
        min_value=1, max_value=5, help_text="1 to 5",
        error_messages={"invalid": _STARS_MESSAGE, "min_value": _STARS_MESSAGE, "max_value": _STARS_MESSAGE,
                        "max_string_length": _STARS_MESSAGE},
    )


class RatingOutputSerializer(_InteractionOutputSerializer):
    class Meta:
        model = Rating
        fields = ["id", "user", "item_type", "item_id", "item", "stars", "created_at", "updated_at"]


class NotInterestedOutputSerializer(_InteractionOutputSerializer):
    class Meta:
        model = NotInterested
        fields = ["id", "user", "item_type", "item_id", "item", "created_at"]


class UserFilterInputSerializer(serializers.Serializer):
    """``?user=<id>``: staff may look at another reader's rows."""

    user = StrictIntegerField(min_value=1, max_value=MAX_ID, required=False)
