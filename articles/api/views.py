"""Provides the site's API views: items, reads (with the beacon), ratings, "not interested", ping, tokens.

Views are thin: they validate input with a serializer, call ``articles.selectors`` or
``articles.services`` and serialize the result. A reader's reads, ratings and marks are
visible and changeable only by that reader and by staff; anyone else gets 404, so ids do
not leak.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from articles import selectors, services
from articles.models import NotInterested, Rating, Read
from articles.page_cache import cached_data

from . import serializers as s
from .filters import ArticleFilter, BookFilter
from .throttling import WriteRateThrottle, WriteThrottled

HISTORY_LIMIT = 1000


def _target_user(request):
    """Return the reader whose rows are asked for: oneself, or ``?user=<id>`` for staff (404 for others)."""
    params = s.UserFilterInputSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    user_id = params.validated_data.get("user")
    if user_id is None or user_id == request.user.pk:
        return request.user
    if not request.user.is_staff:
        raise Http404("No such reader.")
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise Http404("No such reader.")
    return user


def _own_or_404(model, pk: int, user):
    """Return the row ``pk`` of ``model`` if ``user`` owns it or is staff; 404 otherwise."""
    row = model.objects.filter(pk=pk).first()
    if row is None or (row.user_id != user.pk and not user.is_staff):
        raise Http404(f"No {model._meta.verbose_name} with id {pk}.")
    return row


def _item(data):
    return services.item_get(item_type=data["item_type"], item_id=data["item_id"])


_USER_PARAM = {"parameters": [s.UserFilterInputSerializer]}


# --- items --------------------------------------------------------------------------------------------


class CachedListMixin:
    """Serve a JSON list from the page cache until the items or the active build change.

    The lists show nothing about the reader, so everyone shares them; the key holds the full
    URL (the pagination links are absolute) and the media type.
    """

    def list(self, request, *args, **kwargs):
        if request.accepted_renderer.format != "json":
            return super().list(request, *args, **kwargs)
        response = None

        def render():
            nonlocal response
            response = super(CachedListMixin, self).list(request, *args, **kwargs)
            return response.data if response.status_code == 200 else None

        data = cached_data(request, f"api:{type(self).__name__}",
                           vary=(request.build_absolute_uri(), request.accepted_media_type), render=render)
        return response if response is not None else Response(data)



class ArticleListApi(CachedListMixin, generics.ListAPIView):
    """List published articles, newest first; filter by search words, tag, author or dates."""

    permission_classes = [AllowAny]
    serializer_class = s.ArticleOutputSerializer
    filterset_class = ArticleFilter

    def get_queryset(self):
        return selectors.article_list()


class ArticleDetailApi(generics.RetrieveAPIView):
    """Return one published article with its body."""

    permission_classes = [AllowAny]
    serializer_class = s.ArticleDetailOutputSerializer

    def get_queryset(self):
        return selectors.article_list()


class BookListApi(CachedListMixin, generics.ListAPIView):
    """List published books by title; filter by search words, tag, author or year."""

    permission_classes = [AllowAny]
    serializer_class = s.BookOutputSerializer
    filterset_class = BookFilter

    def get_queryset(self):
        return selectors.book_list()


class BookDetailApi(generics.RetrieveAPIView):
    """Return one published book with its description."""

    permission_classes = [AllowAny]
    serializer_class = s.BookDetailOutputSerializer

    def get_queryset(self):
        return selectors.book_list()


# --- reads -------------------------------------------------------------------------------------------------


class ReadListCreateApi(WriteThrottled, generics.GenericAPIView):
    """A reader's reads: list your own (staff: ``?user=``), or record that you opened an item."""

    permission_classes = [IsAuthenticated]
    queryset = Read.objects.none()  # for the schema only: rows come from the selector
    serializer_class = s.ReadOutputSerializer

    @extend_schema(responses=s.ReadOutputSerializer(many=True), **_USER_PARAM)
    def get(self, request):
        rows = selectors.user_reads(user=_target_user(request), limit=HISTORY_LIMIT)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(s.ReadOutputSerializer(page, many=True).data)

    @extend_schema(request=s.ReadCreateInputSerializer, responses={201: s.ReadOutputSerializer})
    def post(self, request):
        data = s.ReadCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        read = services.read_record(
            user=request.user, item=_item(data.validated_data),
            dwell_seconds=data.validated_data["dwell_seconds"], progress=data.validated_data["progress"],
        )
        return Response(s.ReadOutputSerializer(read).data, status=status.HTTP_201_CREATED)


class ReadDetailApi(WriteThrottled, APIView):
    """One read: show it, report its dwell time and progress (values only grow), or remove it."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=s.ReadOutputSerializer)
    def get(self, request, pk: int):
        return Response(s.ReadOutputSerializer(_own_or_404(Read, pk, request.user)).data)

    @extend_schema(request=s.ReadUpdateInputSerializer, responses=s.ReadOutputSerializer)
    def patch(self, request, pk: int):
        read = _own_or_404(Read, pk, request.user)
        data = s.ReadUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        read = services.read_update(read=read, **data.validated_data)
        return Response(s.ReadOutputSerializer(read).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        read = _own_or_404(Read, pk, request.user)
        services.read_delete(user=read.user, read_id=read.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReadBeaconApi(WriteThrottled, APIView):
    """The page's leave beacon (``navigator.sendBeacon``): report dwell time and progress of a read.

    Accepts JSON or form data (a beacon sends ``FormData`` with the CSRF token when the
    reader is signed in with a session).
    """

    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    throttle_scope = "beacon"

    @extend_schema(request=s.ReadUpdateInputSerializer, responses={204: None})
    def post(self, request, pk: int):
        read = _own_or_404(Read, pk, request.user)
        data = s.ReadUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.read_update(read=read, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- ratings -------------------------------------------------------------------------------------------------


_RATING_SET_RESPONSES = {
    200: OpenApiResponse(s.RatingOutputSerializer, description="An existing rating was updated."),
    201: OpenApiResponse(s.RatingOutputSerializer, description="The item was rated for the first time."),
}


class RatingListSetApi(WriteThrottled, generics.GenericAPIView):
    """A reader's ratings: list your own (staff: ``?user=``), or rate an item (rating again updates it)."""

    permission_classes = [IsAuthenticated]
    queryset = Rating.objects.none()  # for the schema only: rows come from the selector
    serializer_class = s.RatingOutputSerializer

    @extend_schema(responses=s.RatingOutputSerializer(many=True), **_USER_PARAM)
    def get(self, request):
        rows = selectors.user_ratings(user=_target_user(request), limit=HISTORY_LIMIT)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(s.RatingOutputSerializer(page, many=True).data)

    @extend_schema(request=s.RatingSetInputSerializer, responses=_RATING_SET_RESPONSES)
    def post(self, request):
        data = s.RatingSetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = _item(data.validated_data)
        existed = selectors.user_rating_get(user=request.user, item=item) is not None
        rating = services.rating_set(user=request.user, item=item, stars=data.validated_data["stars"])
        code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        return Response(s.RatingOutputSerializer(rating).data, status=code)

    @extend_schema(request=s.RatingSetInputSerializer, responses=_RATING_SET_RESPONSES)
    def put(self, request):
        return self.post(request)


class RatingDetailApi(WriteThrottled, APIView):
    """One rating: show it or remove it."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=s.RatingOutputSerializer)
    def get(self, request, pk: int):
        return Response(s.RatingOutputSerializer(_own_or_404(Rating, pk, request.user)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        rating = _own_or_404(Rating, pk, request.user)
        services.rating_delete(user=rating.user, item=rating.item)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- not interested ---------------------------------------------------------------------------------------------


class NotInterestedListApi(WriteThrottled, generics.GenericAPIView):
    """A reader's "not interested" marks: list, mark an item, or take a mark back by item."""

    permission_classes = [IsAuthenticated]
    queryset = NotInterested.objects.none()  # for the schema only: rows come from the selector
    serializer_class = s.NotInterestedOutputSerializer

    @extend_schema(responses=s.NotInterestedOutputSerializer(many=True), **_USER_PARAM)
    def get(self, request):
        rows = selectors.user_not_interested_list(user=_target_user(request))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(s.NotInterestedOutputSerializer(page, many=True).data)

    @extend_schema(request=s.ItemRefInputSerializer, responses={201: s.NotInterestedOutputSerializer})
    def post(self, request):
        data = s.ItemRefInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        mark = services.not_interested_set(user=request.user, item=_item(data.validated_data))
        return Response(s.NotInterestedOutputSerializer(mark).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="not_interested_destroy_by_item", parameters=[s.ItemRefInputSerializer], responses={204: None}
    )
    def delete(self, request):
        data = s.ItemRefInputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        services.not_interested_delete(user=request.user, item=_item(data.validated_data))
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotInterestedDetailApi(WriteThrottled, APIView):
    """One "not interested" mark: show it or take it back."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=s.NotInterestedOutputSerializer)
    def get(self, request, pk: int):
        return Response(s.NotInterestedOutputSerializer(_own_or_404(NotInterested, pk, request.user)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        mark = _own_or_404(NotInterested, pk, request.user)
        services.not_interested_delete(user=mark.user, item=mark.item)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- utilities ---------------------------------------------------------------------------------------------------


class PingApi(APIView):
    """A trivial endpoint (the serving benchmark's baseline): authenticates like any view, then says ok."""

    permission_classes = [AllowAny]

    @extend_schema(responses=inline_serializer("Ping", {"status": serializers.CharField()}))
    def get(self, request):
        return Response({"status": "ok"})


class AuthTokenObtainApi(WriteThrottled, ObtainAuthToken):
    """Exchange a username and password for an API token (send it as ``Authorization: Token <key>``)."""

    # DRF's ObtainAuthToken turns throttling off; password guessing is exactly what it should slow down.
    throttle_classes = [WriteRateThrottle]

    @extend_schema(
        request=inline_serializer(
            "AuthTokenRequest",
            {"username": serializers.CharField(max_length=150), "password": serializers.CharField(max_length=128)},
        ),
        responses=inline_serializer("AuthToken", {"token": serializers.CharField()}),
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)

