"""Provides the API of impressions: ids on served lists, clicks reported by clients, a reader's own lists, daily metrics.

Every list endpoint answers ``{"recommendation_id": "<uuid>", "results": [...]}``. A client
reports a click with ``POST /api/impressions/<recommendation_id>/clicks/`` and the position
clicked (or the item); the reads, ratings and "Not interested" marks it then sends through the
host's own endpoints are attributed to the list by the app's hooks (within
``ATTRIBUTION_WINDOW_SECONDS``), with nothing more to send.
"""
from __future__ import annotations

import json
import re
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from recommendations.adapters import get_adapter
from recommendations.impressions.attribution import impression_owned, position_parse, recommendation_id_parse
from recommendations.impressions.models import Attribution, DailyMetric, Impression
from recommendations.impressions.recording import (
    attribution_record_for_request,
    impression_pending_get,
    impression_record_for_request,
    item_propensities,
    session_hash,
)

SURFACE_RECOMMENDATIONS = "api:recommendations"
SURFACE_SIMILAR = "api:similar"
# The items of a stored picks body, read without parsing it (JSON parsing cost more than the rest of the request).
STORED_ITEM = re.compile(rb'"item":\{"type":"([^"\\]+)","id":"([^"\\]*)"')
STORED_SOURCE = re.compile(rb'"source":"([a-z_]+)"')


def _content_types() -> dict[str, int]:
    """Return the content type id of each item ``type`` the API shows (model name and ``app_label.model``)."""
    mapping = {}
    for model in get_adapter().item_models():
        ct = ContentType.objects.get_for_model(model).pk
        mapping[model._meta.model_name] = mapping[model._meta.label_lower] = ct
    return mapping


def list_record(request, items: list[Any], *, surface: str, experiment: str = "", arm: str = "") -> str | None:
    """Record ``items`` as shown on ``surface`` to the request's reader, under ``experiment`` and ``arm`` when
    they came from an experiment arm; return the list's id (None: no items)."""
    if not items:
        return None
    sources = "+".join(dict.fromkeys(str(getattr(item, "rec_source", "") or "") for item in items)).strip("+")
    return str(impression_record_for_request(request, surface=surface, items=items, algorithm=sources,
                                             experiment=experiment, arm=arm, propensities=item_propensities(items)))


def pairs_record(request, pairs: list[tuple[int, str]], *, surface: str, algorithm: str) -> str | None:
    """Record the items ``pairs`` ((content type id, object id), in order) as shown on ``surface``; return the
    list's id (None: no items). For lists served from a cache, which keeps the pairs, not the items."""
    if not pairs:
        return None
    return str(impression_record_for_request(request, surface=surface, items=pairs, algorithm=algorithm))


def stored_list_wrap(request, body: bytes) -> bytes:
    """Return a stored body of picks (a JSON list) as ``{"recommendation_id", "results"}``, recorded as shown.

    The stored body is the list alone, shared by every response until it changes; the id is
    made for this response only, so it goes around the stored bytes.
    """
    found = STORED_ITEM.findall(body)
    if found:
        pairs = [(t.decode(), i.decode()) for t, i in found]
        sources = [m.decode() for m in STORED_SOURCE.findall(body)]
    else:  # an adapter whose item payload does not start with "type" and "id": parse the body
        results = json.loads(body)
        pairs = [(r["item"]["type"], r["item"]["id"]) for r in results]
        sources = [r.get("source", "") for r in results]
    rid = b"null"
    if pairs:
        types = _content_types()
        rid = b'"%s"' % str(impression_record_for_request(
            request, surface=SURFACE_RECOMMENDATIONS, algorithm="+".join(dict.fromkeys(sources)).strip("+"),
            items=[(types[t], i) for t, i in pairs if t in types])).encode()
    return b'{"recommendation_id":' + rid + b',"results":' + body + b"}"


def _impression_find(rid) -> Impression | None:
    """Return the stored impression ``rid``, or the one still in this process's buffer (served a moment ago)."""
    return Impression.objects.filter(recommendation_id=rid).first() or impression_pending_get(rid)


def _impression_or_404(request, recommendation_id: str) -> Impression:
    try:
        rid = recommendation_id_parse(recommendation_id)
    except DjangoValidationError as error:
        raise ValidationError({"recommendation_id": error.messages}) from None
    impression = _impression_find(rid)
    if impression is None:
        raise Http404("No such list.")
    user = request.user
    if not user.is_staff and not impression_owned(
            impression, user_id=user.pk if user.is_authenticated else None,
            session_hash=session_hash(getattr(getattr(request, "session", None), "session_key", None))):
        raise Http404("No such list.")  # another reader's list: the same answer as none, so ids reveal nothing
    return impression


class ImpressionOutputSerializer(serializers.ModelSerializer):
    items = serializers.SerializerMethodField(help_text='The items in position order: {"position", "type", "id"}.')

    class Meta:
        model = Impression
        fields = ["recommendation_id", "surface", "algorithm", "build_id", "experiment", "arm", "items", "propensities",
                  "created_at"]

    def get_items(self, obj) -> list[dict[str, Any]]:
        out = []
        for position, key in enumerate(obj.items, 1):
            ct, oid = key.split(":", 1)
            model = ContentType.objects.get_for_id(int(ct))
            out.append({"position": position, "type": f"{model.app_label}.{model.model}", "id": oid})
        return out


class ClickInputSerializer(serializers.Serializer):
    position = serializers.CharField(required=False, help_text="The 1-based position clicked in the list.")
    item_type = serializers.CharField(required=False, help_text='Or the item clicked: its "type" as the list shows it…')
    item_id = serializers.CharField(required=False, help_text="…and its id.")

    def validate(self, data):
        if data.get("position") is not None:
            try:
                data["position"] = position_parse(data["position"])
            except DjangoValidationError as error:
                raise ValidationError({"position": error.messages}) from None
        elif data.get("item_type") and data.get("item_id"):
            ct = _content_types().get(str(data["item_type"]).lower())
            if ct is None:
                raise ValidationError({"item_type": [f"Unknown item type {data['item_type']!r}."]})
            data["item"] = f"{ct}:{data['item_id']}"
        else:
            raise ValidationError("Send the position clicked, or item_type and item_id.")
        return data


class ImpressionDetailApi(APIView):
    """One list the reader was shown (staff: anyone's): where, from what, its items in order. 404 for others' lists."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: ImpressionOutputSerializer, 400: OpenApiResponse(description="Not a valid id."),
                              404: OpenApiResponse(description="No such list of this reader.")})
    def get(self, request, recommendation_id: str):
        return Response(ImpressionOutputSerializer(_impression_or_404(request, recommendation_id)).data)


class ImpressionClickApi(APIView):
    """Report a click on an item of a list the reader was shown: ``{"position": 3}`` or ``{"item_type", "item_id"}``.

    202: recorded (written with the next batch). A list served a moment ago by another process
    may not be stored yet: its click is accepted and tied to it once it is (or dropped if it
    never belonged to this reader).
    """

    permission_classes = [AllowAny]
    throttle_scope = "writes"

    @extend_schema(request=ClickInputSerializer,
                   responses={202: OpenApiResponse(description="Recorded."),
                              400: OpenApiResponse(description="Not a valid id, position or item."),
                              404: OpenApiResponse(description="Another reader's list.")})
    def post(self, request, recommendation_id: str):
        try:
            rid = recommendation_id_parse(recommendation_id)
        except DjangoValidationError as error:
            raise ValidationError({"recommendation_id": error.messages}) from None
        data = ClickInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        position, item = data.validated_data.get("position"), data.validated_data.get("item")
        if _impression_find(rid) is not None:
            impression = _impression_or_404(request, recommendation_id)
            if position is not None and position > len(impression.items):
                raise ValidationError({"position": [f"The list has {len(impression.items)} items."]})
            if item is not None and impression.position_of(item) is None:
                raise ValidationError({"item_id": ["This item is not in the list."]})
        attribution_record_for_request(request, kind=Attribution.Kind.CLICK, recommendation_id=rid,
                                       position=position, item=item)
        return Response({"recommendation_id": str(rid), "status": "recorded"}, status=status.HTTP_202_ACCEPTED)


class DailyMetricOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = DailyMetric
        exclude = ["id"]


class DailyMetricQueryInputSerializer(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="First day (YYYY-MM-DD).")
    until = serializers.DateField(required=False, help_text="Last day (YYYY-MM-DD).")
    surface = serializers.CharField(required=False, allow_blank=True)
    experiment = serializers.CharField(required=False, allow_blank=True, help_text="Blank: lists of no experiment.")

    def validate(self, attrs):
        # DRF reads a blank query value of an optional field as absent; a blank date is a mistake, not "no filter".
        blank = {name: ["Give a date as YYYY-MM-DD, or leave the parameter out."] for name in ("since", "until")
                 if name in self.initial_data and not str(self.initial_data[name]).strip()}
        if blank:
            raise serializers.ValidationError(blank)
        return attrs


class DailyMetricListApi(APIView):
    """Staff: the daily online metrics per surface and experiment arm (rolled up nightly), newest first."""

    permission_classes = [IsAdminUser]

    @extend_schema(parameters=[DailyMetricQueryInputSerializer], responses=DailyMetricOutputSerializer(many=True))
    def get(self, request):
        params = DailyMetricQueryInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        rows = DailyMetric.objects.all()
        if "since" in query:
            rows = rows.filter(day__gte=query["since"])
        if "until" in query:
            rows = rows.filter(day__lte=query["until"])
        for field in ("surface", "experiment"):
            if field in query:
                rows = rows.filter(**{field: query[field]})
        return Response(DailyMetricOutputSerializer(rows[:1000], many=True).data)
