"""Provides the serializers of the recommendations API: query parameters and output of picks, neighbours, builds."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from recommendations.adapters import get_adapter
from recommendations.models import BuildRun, SimilarItem

MAX_LIMIT = 100
DEFAULT_LIMIT = 10


def item_type_choices() -> list[str]:
    """Return the accepted ``type`` values: each item model's name and its ``app_label.model`` label."""
    choices: list[str] = []
    for model in get_adapter().item_models():
        choices += [model._meta.model_name, model._meta.label_lower]
    return list(dict.fromkeys(choices))


class StrictIntegerField(serializers.IntegerField):
    """An integer that refuses booleans."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class RecommendationsQueryInputSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=[], required=False, help_text="Only items of this model.")
    limit = StrictIntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    user = serializers.CharField(
        max_length=64, required=False, help_text="Staff only: another reader's picks (their id: integer or UUID)."
    )

    def validate_user(self, value):
        """Convert to the user model's primary key type (integer or UUID)."""
        try:
            pk = get_user_model()._meta.pk.to_python(value)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise serializers.ValidationError(f"{value!r} is not a valid user id.") from None
        if isinstance(pk, int) and not 1 <= pk <= 2**63 - 1:
            raise serializers.ValidationError(f"{value!r} is not a valid user id.")
        return pk

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Choices come from RECOMMENDATIONS["ITEM_MODELS"], read when the request (or the schema) is made.
        self.fields["type"].choices = item_type_choices()


class SimilarQueryInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=SimilarItem.Kind.values, default=SimilarItem.Kind.CONTENT)
    limit = StrictIntegerField(min_value=1, max_value=MAX_LIMIT, default=10)


class ItemPayloadSerializer(serializers.Serializer):
    """An item as the adapter describes it (``adapter.item_payload(obj)``); adapters may add fields."""

    type = serializers.CharField()
    id = serializers.CharField()
    title = serializers.CharField()
    url = serializers.CharField(allow_null=True)


@extend_schema_field(ItemPayloadSerializer)
class ItemPayloadField(serializers.Field):
    """Serialize the item itself through the adapter, so the app never guesses what a title is."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, obj) -> dict[str, Any]:
        return get_adapter().item_payload(obj)


class ExplanationOutputSerializer(serializers.Serializer):
    content_type = serializers.IntegerField()
    object_id = serializers.CharField()
    title = serializers.CharField(allow_blank=True)


class CitedItemOutputSerializer(serializers.Serializer):
    """An item the explanation cites, named as ``item`` names items (``type`` and ``id``)."""

    type = serializers.CharField(help_text='The item model\'s "app_label.modelname".')
    id = serializers.CharField()
    title = serializers.CharField(allow_blank=True)


def _cited_items(explanation: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Return the explanation's items as ``{"type", "id", "title"}`` (content types are cached by Django)."""
    cited = []
    for e in explanation:
        try:
            ct = ContentType.objects.get_for_id(int(e["content_type"]))
        except ContentType.DoesNotExist:  # a model removed since the build
            continue
        cited.append({"type": f"{ct.app_label}.{ct.model}", "id": str(e["object_id"]), "title": e.get("title") or ""})
    return cited


class RecommendationOutputSerializer(serializers.Serializer):
    rank = serializers.IntegerField(source="rec_rank")
    score = serializers.FloatField(source="rec_score")
    source = serializers.ChoiceField(choices=["personal", "popular", "content"], source="rec_source")
    because = serializers.CharField(
        source="rec_because", allow_blank=True,
        help_text='Ready to show, in the request\'s language: e.g. "Because you read X". Empty when nothing is cited.')
    because_items = CitedItemOutputSerializer(
        source="rec_explanation", many=True,
        help_text="The items the explanation cites, best first: to word or link the explanation yourself.")
    explanation = ExplanationOutputSerializer(source="rec_explanation", many=True)
    new = serializers.BooleanField(source="rec_new", help_text="A new item, placed by its content.")
    exploration = serializers.BooleanField(
        source="rec_explore", help_text="In an exploration slot (EXPLORATION_SHARE): for impression records.")
    item = ItemPayloadField()

    def to_representation(self, obj) -> dict[str, Any]:
        # The hot path of GET /api/recommendations/: build the dict directly, without DRF's generic field
        # walk; the fields above document the schema.
        explanation = obj.rec_explanation or []
        return {
            "rank": int(obj.rec_rank),
            "score": float(obj.rec_score),
            "source": obj.rec_source,
            "because": obj.rec_because or "",
            "because_items": _cited_items(explanation),
            "explanation": [
                {"content_type": int(e["content_type"]), "object_id": str(e["object_id"]),
                 "title": e.get("title") or ""}
                for e in explanation
            ],
            "new": bool(getattr(obj, "rec_new", False)),
            "exploration": bool(getattr(obj, "rec_explore", False)),
            "item": get_adapter().item_payload(obj),
        }


class SimilarItemOutputSerializer(serializers.Serializer):
    rank = serializers.IntegerField(source="rec_rank")
    score = serializers.FloatField(source="rec_score")
    item = ItemPayloadField()

    def to_representation(self, obj) -> dict[str, Any]:
        return {"rank": int(obj.rec_rank), "score": float(obj.rec_score), "item": get_adapter().item_payload(obj)}


class RecommendationListOutputSerializer(serializers.Serializer):
    """A reader's picks with the id of the list, to report clicks with (``POST /api/impressions/<id>/clicks/``)."""

    recommendation_id = serializers.UUIDField(
        allow_null=True, help_text="The id of this list: send it back with clicks (null when the list is empty).")
    results = RecommendationOutputSerializer(many=True)


class SimilarItemListOutputSerializer(serializers.Serializer):
    """An item's neighbours with the id of the list."""

    recommendation_id = serializers.UUIDField(
        allow_null=True, help_text="The id of this list: send it back with clicks (null when the list is empty).")
    results = SimilarItemOutputSerializer(many=True)


def _prop(type_: str | list[str], description: str) -> dict[str, Any]:
    return {"type": type_, "description": description}


TUNING_SCHEMA = {
    "type": "object",
    "description": "How the algorithm's configuration was chosen; empty for an algorithm that does not tune itself.",
    "properties": {
        "tuned": _prop("boolean", "Whether this build tuned (false when it reused a configuration or could not tune)."),
        "reused_from": _prop("integer", "The build whose configuration this build reused."),
        "retune_reason": _prop("string", "Why this build tuned instead of reusing a configuration."),
        "reason": _prop("string", "Why the algorithm could not tune (e.g. too few users)."),
        "params": _prop("object", "The chosen configuration: blend weights and each member's parameters."),
        "member_scores": _prop("object", "Validation score of each member with its best parameters."),
        "blend": _prop("number", "Validation score of the chosen blend."),
        "metric": _prop("string", "The validation objective, e.g. NDCG@10."),
        "validation": _prop("string", "How validation was carved out of the training data."),
        "items": _prop("integer", "Items tuning saw: those with an interaction (cold items cannot change the choice)."),
        "candidates": _prop("object", "Parameter sets tried per member."),
        "seconds": _prop("number", "Seconds this build spent tuning (0 when it reused a configuration)."),
        "budget_seconds": _prop("number", "The member search's time budget."),
        "tuned_build": _prop("integer", "The build that tuned the configuration in use."),
        "tuned_at": _prop("string", "When it tuned (ISO 8601)."),
        "tuned_interactions": _prop("integer", "Interactions it tuned on."),
    },
    "additionalProperties": True,
}


@extend_schema_field(TUNING_SCHEMA)
class TuningField(serializers.JSONField):
    """``BuildRun.tuning``, documented key by key in the schema."""


class BuildRunOutputSerializer(serializers.ModelSerializer):
    duration = serializers.FloatField(allow_null=True, read_only=True, help_text="Seconds from start to finish.")
    tuning = TuningField(read_only=True)

    class Meta:
        model = BuildRun
        fields = [
            "id", "status", "is_active", "algorithm", "params", "counts", "timings", "metrics", "tuning", "error",
            "triggered_by", "data_until", "created_at", "started_at", "finished_at", "activated_at", "duration",
        ]


class BuildRunStartOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = BuildRun
        fields = ["id", "status"]
