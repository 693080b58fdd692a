"""Provides the API views of the recommendations app: a reader's picks, an item's neighbours, builds.

The views are thin ``APIView``s: they validate the query, call ``recommendations.selectors``
or ``recommendations.services`` and serialize items through the adapter. A reader's picks
are visible to that reader and to staff only (``?user=`` of someone else is 404 for others).
"""
from __future__ import annotations

import json
import re

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import translation
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import SAFE_METHODS, AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from recommendations import payloads, selectors, served_cache, services
from recommendations.adapters import get_adapter
from recommendations.conf import app_settings
from recommendations.experiments.assignment import experiment_for
from recommendations.experiments.serving import ServedList, picks_served
from recommendations.models import BuildRun

from . import impressions as impressions_api
from . import serializers as s
from .authentication import TokenAuthentication

# The one parameter the stored picks also answer: ``limit`` up to the stored length (a head of the default list).
STORED_LIMIT = re.compile(r"limit=([1-9][0-9]?)")


class WriteThrottleMixin:
    """Throttle unsafe methods with the "writes" scope (DRF's ScopedRateThrottle); reads stay unthrottled."""

    write_scope = "writes"

    @property
    def throttle_scope(self) -> str | None:
        request = getattr(self, "request", None)
        if request is None or request.method in SAFE_METHODS:
            return None
        return self.write_scope


def _item_model(name: str):
    """Return the item model named ``name`` (model name or ``app_label.model``), or raise 404."""
    for model in get_adapter().item_models():
        if name.lower() in (model._meta.model_name, model._meta.label_lower):
            return model
    raise Http404(f"Unknown item model {name!r}.")


class UserRecommendationsListApi(APIView):
    """Return the signed-in reader's top picks, best first, each with its explanation.

    Readers with history get their stored personal picks; new readers get content neighbours
    of what they touched, then popular items. Staff may pass ``?user=<id>``.

    The default request (no parameters, plain JSON) is served from the reader's stored response
    body (``recommendations.payloads``): with a token, one query (``perform_authentication``), and so
    is ``?limit=N`` up to the default length, as the head of that body. Any other request is
    computed; both give the same bytes, because a shorter list is always the head of the default one.
    """

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[s.RecommendationsQueryInputSerializer], responses=s.RecommendationListOutputSerializer)
    def get(self, request):
        if self._wants_stored(request):
            return self._stored(request)
        return self._computed(request)

    @staticmethod
    def _wants_stored(request) -> bool:
        """Return whether this is the default request: no parameters but ``limit`` (at most the default), plain
        JSON (not the browsable API, not ``; indent=4``), stored bodies on."""
        renderer = request.accepted_renderer
        # A live experiment on this surface serves each reader their arm's list: never a stored default body.
        return (
            _stored_limit(request) is not None and app_settings.STORED_PAYLOADS
            and renderer.format == "json" and request.accepted_media_type == renderer.media_type
            and experiment_for(impressions_api.SURFACE_RECOMMENDATIONS) is None
        )

    @staticmethod
    def _config(request) -> str:
        renderer = request.accepted_renderer
        # The body holds translated explanations: a reader who switches language gets it recomputed.
        return payloads.config_fingerprint(f"{type(renderer).__module__}.{type(renderer).__qualname__}",
                                           translation.get_language() or "")

    def perform_authentication(self, request):
        """Authenticate the default request with a token and read its stored body in one query, where possible.

        Only when the first authenticator is the app's ``TokenAuthentication``, which DRF would
        then ask first anyway; anything that lookup does not settle is authenticated as usual.
        """
        authenticator = request.authenticators[0] if request.authenticators else None
        if (request.method == "GET" and isinstance(authenticator, TokenAuthentication)
                and self._wants_stored(request)):
            found = authenticator.authenticate_with_stored_picks(request, config=self._config(request))
            if found is not None:
                request._authenticator = authenticator
                request.user, request.auth, self._stored_body = found
                return
        super().perform_authentication(request)

    def _stored(self, request) -> HttpResponse:
        """The default request: the reader's stored body, computed by the slow path when stale (see payloads)."""
        renderer = request.accepted_renderer
        content_type = f"{renderer.media_type}; charset={renderer.charset}" if renderer.charset else renderer.media_type
        limit = _stored_limit(request)
        body = getattr(self, "_stored_body", None)  # read with the token (perform_authentication)
        if body is not None:
            body = _head(body, limit, renderer, self.get_renderer_context())
            return HttpResponse(impressions_api.stored_list_wrap(request, body), content_type=content_type)
        config = self._config(request)

        def render() -> bytes:
            items = selectors.recommended_for(request.user, n=s.DEFAULT_LIMIT)
            data = s.RecommendationOutputSerializer(items, many=True).data
            body = renderer.render(data, renderer.media_type, self.get_renderer_context())
            return body.encode(renderer.charset or "utf-8") if isinstance(body, str) else body

        body = payloads.user_payload_get_or_build(user_id=request.user.pk, config=config, render=render)
        body = _head(body, limit, renderer, self.get_renderer_context())
        return HttpResponse(impressions_api.stored_list_wrap(request, body), content_type=content_type)

    def _computed(self, request) -> Response:
        params = s.RecommendationsQueryInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        user = request.user
        if data.get("user") is not None and data["user"] != user.pk:
            if not user.is_staff:
                raise Http404("No such reader.")
            user = get_object_or_404(get_user_model(), pk=data["user"])
        model = _item_model(data["type"]) if data.get("type") else None
        if user == request.user:
            # A shorter list is the head of the default one (diversity re-ranks per length), as the stored path serves it.
            n = max(data["limit"], s.DEFAULT_LIMIT) if model is None and experiment_for(
                impressions_api.SURFACE_RECOMMENDATIONS) is None else data["limit"]
            served = picks_served(user, surface=impressions_api.SURFACE_RECOMMENDATIONS, n=n, model=model)
            served.items = served.items[:data["limit"]]
        else:  # staff looking at a reader: what the reader would get without experiments
            served = ServedList(selectors.recommended_for(user, model=model, n=data["limit"]))
        rid = impressions_api.list_record(request, served.items, surface=impressions_api.SURFACE_RECOMMENDATIONS,
                                          experiment=served.experiment, arm=served.arm)
        return Response({"recommendation_id": rid,
                         "results": s.RecommendationOutputSerializer(served.items, many=True).data})


def _stored_limit(request) -> int | None:
    """Return the number of picks a request the stored body answers asks for, or None for any other request."""
    query = request.META.get("QUERY_STRING", "")
    if not query:
        return s.DEFAULT_LIMIT
    match = STORED_LIMIT.fullmatch(query)
    return int(match.group(1)) if match and int(match.group(1)) <= s.DEFAULT_LIMIT else None


def _head(body: bytes, limit: int | None, renderer, context) -> bytes:
    """Return the stored body (a JSON list) cut to its first ``limit`` picks, rendered as the computed path would."""
    if limit is None or limit >= s.DEFAULT_LIMIT:
        return body
    head = renderer.render(json.loads(body)[:limit], renderer.media_type, context)
    return head.encode(renderer.charset or "utf-8") if isinstance(head, str) else head


class SimilarItemsListApi(APIView):
    """Return an item's stored neighbours, best first: ``kind=content`` (similar text) or ``collaborative``
    (readers also read). An item the collaborative model has not seen yet gets its content neighbours.

    Route it per model with ``SimilarItemsListApi.as_view(item_model="shop.Product")`` and a ``pk``
    in the URL, or generically with ``label`` and ``pk`` in the URL.
    """

    permission_classes = [AllowAny]
    item_model: str | None = None

    @extend_schema(parameters=[s.SimilarQueryInputSerializer], responses=s.SimilarItemListOutputSerializer)
    def get(self, request, pk, label: str | None = None):
        params = s.SimilarQueryInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        model = _item_model(label or self.item_model or "")
        limit, kind = params.validated_data["limit"], params.validated_data["kind"]
        key = served_cache.served_cache_key("similar", model._meta.label_lower, str(pk), kind, limit,
                                         translation.get_language() or "")
        found = served_cache.served_cache_get(key)
        if found is None:
            found = self._compute(model, pk, limit=limit, kind=kind)
            served_cache.served_cache_set(key, found)
        results, pairs, sources = found
        rid = impressions_api.pairs_record(request, pairs, surface=impressions_api.SURFACE_SIMILAR, algorithm=sources)
        return Response({"recommendation_id": rid, "results": results})

    @staticmethod
    def _compute(model, pk, *, limit: int, kind: str) -> tuple[list, list, str]:
        """Return the serialized neighbours, their (content type, id) pairs and their sources; 404 for no item."""
        try:
            obj = selectors.item_queryset(model).filter(pk=pk).first()
        except (ValueError, TypeError, OverflowError, DjangoValidationError):
            obj = None  # a malformed id (e.g. text for an integer key) names no item
        if obj is None:
            raise Http404(f"No {model._meta.verbose_name} with id {pk}.")
        items = selectors.similar_to(obj, n=limit, kind=kind)
        results = s.SimilarItemOutputSerializer(items, many=True).data
        pairs = [(ContentType.objects.get_for_model(item).pk, str(item.pk)) for item in items]
        sources = "+".join(dict.fromkeys(str(getattr(item, "rec_source", "") or "") for item in items)).strip("+")
        return [dict(row) for row in results], pairs, sources


class BuildRunPagination(PageNumberPagination):
    page_size = 20


class BuildRunListStartApi(WriteThrottleMixin, generics.GenericAPIView):
    """Staff: list full builds, newest first, or queue a new one (202 with its id)."""

    permission_classes = [IsAdminUser]
    serializer_class = s.BuildRunOutputSerializer
    # Its own pagination: a host project may have no DEFAULT_PAGINATION_CLASS.
    pagination_class = BuildRunPagination

    def get_queryset(self):
        return BuildRun.objects.order_by("-created_at", "-id")

    @extend_schema(responses=s.BuildRunOutputSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.BuildRunOutputSerializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(s.BuildRunStartOutputSerializer, description="The build is queued."),
            409: OpenApiResponse(description="Another build is running."),
            503: OpenApiResponse(description="The build could not be queued: the broker is unreachable."),
        },
    )
    def post(self, request):
        try:
            build = services.full_build_start(triggered_by="api")
        except services.BuildAlreadyRunning as exc:
            return Response({"detail": str(exc), "code": "build_already_running"}, status=status.HTTP_409_CONFLICT)
        if build.status == build.Status.FAILED:
            return Response({"detail": build.error, "code": "broker_unreachable"},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE)
        headers = {"Location": request.build_absolute_uri(f"{request.path.rstrip('/')}/{build.pk}/")}
        return Response(s.BuildRunStartOutputSerializer(build).data, status=status.HTTP_202_ACCEPTED, headers=headers)


class BuildRunDetailApi(APIView):
    """Staff: one build's status, per-stage timings, counts and offline metrics."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        responses=s.BuildRunOutputSerializer,
        parameters=[OpenApiParameter("pk", int, OpenApiParameter.PATH)],
    )
    def get(self, request, pk: int):
        return Response(s.BuildRunOutputSerializer(get_object_or_404(BuildRun, pk=pk)).data)
