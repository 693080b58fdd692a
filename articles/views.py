"""Provides the site's pages (home, lists, details, my reading, sign-up) and their small JSON endpoints.

Recommendations reach the templates through the ``{% load recommendations %}`` tags, which read
stored rows only; these views never compute recommendations. The JSON endpoints (rate, not
interested, read beacon) are CSRF protected and also work as plain form posts without JavaScript.
"""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from recommendations import services as rec_services

from . import selectors, services
from .forms import ItemSearchForm, RatingForm, ReadBeaconForm, SignupForm
from .models import Article, Book, Read, Tag
from .page_cache import page_render

PAGE_SIZE = 24
ONBOARDING_RATINGS = 5
N_TAG_FILTERS = 24


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _error_message(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return " ".join(msg for msgs in error.message_dict.values() for msg in msgs)
    return " ".join(error.messages)


def _json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _next_url(request: HttpRequest, default: str) -> str:
    """Return the safe ``next`` target of a form post, or ``default``."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default


def _item_or_404(item_type: str, item_id) -> Article | Book:
    try:
        return services.item_get(item_type=item_type, item_id=item_id)
    except ValidationError:
        raise Http404(f"There is no {item_type} with id {item_id}.") from None


def _signed_in_or_error(request: HttpRequest, action: str) -> HttpResponse | None:
    """Refuse anonymous posts: 401 JSON for scripts, the login page for plain forms."""
    if request.user.is_authenticated:
        return None
    if _wants_json(request):
        return _json_error(f"Sign in to {action}.", 401)
    return redirect(f"{reverse('login')}?{urlencode({'next': _next_url(request, reverse('home'))})}")


# --- Pages ------------------------------------------------------------------------------------

@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Top picks (signed in), popular this week and new items; onboarding for a new reader.

    The content is a cached fragment of the reader's own (``{% pagefragment %}``): the context is
    lazy, so a cached page reads none of it; the whole page is cached too (``page_render``).
    """
    context = {"new_articles": SimpleLazyObject(lambda: selectors.new_items(model=Article, limit=6)),
               "onboarding": False}
    user = request.user
    if user.is_authenticated:
        rating_count = SimpleLazyObject(lambda: selectors.user_rating_count(user=user))
        context["rating_count"] = rating_count
        context["ratings_needed"] = ONBOARDING_RATINGS
        # A reader with almost no history gets the quick-rate grid (MovieLens-style onboarding).
        context["onboarding"] = SimpleLazyObject(
            lambda: rating_count < ONBOARDING_RATINGS and not Read.objects.filter(user=user).exists())
    return page_render(request, "articles/home.html", context)


def _tag_filters(model) -> list[Tag]:
    related = model._meta.model_name
    return list(
        Tag.objects.filter(**{f"{related}__is_published": True})
        .annotate(n_items=Count(related))
        .order_by("-n_items", "name")[:N_TAG_FILTERS]
    )


def _item_list(request: HttpRequest, *, model, queryset_for, template: str) -> HttpResponse:
    form = ItemSearchForm(request.GET or None)
    search = tag = ""
    if form.is_valid():
        search, tag = form.cleaned_data["q"].strip(), form.cleaned_data["tag"]
    # Lazy: the list is a cached fragment, and a cached page runs none of these queries.
    paginator = Paginator(queryset_for(search=search, tag=tag), PAGE_SIZE)
    page = SimpleLazyObject(lambda: paginator.get_page(request.GET.get("page")))
    filters = {k: v for k, v in (("q", search), ("tag", tag)) if v}
    context = {
        "form": form,
        "page": page,
        "items": SimpleLazyObject(lambda: page.object_list),
        "search": search,
        "active_tag": tag,
        "tags": SimpleLazyObject(lambda: _tag_filters(model)),
        "filter_query": urlencode(filters),
        "search_query": urlencode({"q": search}) if search else "",
    }
    return page_render(request, template, context)


@require_GET
def article_list(request: HttpRequest) -> HttpResponse:
    """Articles, newest first, with search, tag filters and pagination."""
    return _item_list(request, model=Article, queryset_for=selectors.article_list, template="articles/article_list.html")


@require_GET
def book_list(request: HttpRequest) -> HttpResponse:
    """Books by title, with search, tag filters and pagination."""
    # A book's card shows no tags: no need to fetch them.
    return _item_list(request, model=Book, queryset_for=lambda **kw: selectors.book_list(**kw).prefetch_related(None),
                      template="articles/book_list.html")


def _click_record(request: HttpRequest, item) -> HttpResponse | None:
    """Attribute the opening of ``item`` from a list (``?rid=<recommendation_id>&pos=<n>``); a broken id is a 400."""
    rid = request.GET.get("rid")
    if rid is None:
        return None
    try:
        recommendation_id = rec_services.recommendation_id_parse(rid)
        position = rec_services.position_parse(request.GET["pos"]) if request.GET.get("pos") else None
    except ValidationError as error:
        return HttpResponseBadRequest(_error_message(error), content_type="text/plain; charset=utf-8")
    rec_services.attribution_record_for_request(request, kind="click", item=item,
                                                recommendation_id=recommendation_id, position=position)
    return None


def _item_detail(request: HttpRequest, *, model, template: str, **lookup) -> HttpResponse:
    user = request.user
    # Reopening an item within READ_REOPEN_SECONDS continues the same read: a reload is not a second read.
    reopen_within = timedelta(seconds=settings.READ_REOPEN_SECONDS)
    item = selectors.item_page_get(model=model, user=user, reopen_within=reopen_within, **lookup)
    if item is None:
        raise Http404(f"No published {model._meta.verbose_name} matches the given query.")
    refused = _click_record(request, item)
    if refused:
        return refused
    context = {"item": item, "rating": None, "not_interested": False, "read_id": None}
    if user.is_authenticated:
        # Opening the page is a read (reopening it soon after continues the same one); the page script
        # reports dwell time and progress later.
        context["read_id"] = item.viewer_read_id or services.read_record(user=user, item=item).pk
        context["rating"] = {"stars": item.viewer_stars} if item.viewer_stars is not None else None
        context["not_interested"] = item.viewer_not_interested
    context["rating_form"] = SimpleLazyObject(
        lambda: RatingForm(initial={"stars": context["rating"]["stars"] if context["rating"] else None}))
    # The read (new or continued) is in the page: its id is part of the key.
    response = page_render(request, template, context, vary=(context["read_id"],))
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """One article with its rating control, "Readers also read" and "Similar articles"."""
    return _item_detail(request, model=Article, template="articles/article_detail.html", slug=slug)


@require_GET
def book_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One book with its rating control, "Readers also read" and "Similar books"."""
    return _item_detail(request, model=Book, template="articles/book_detail.html", pk=pk)


@login_required
@never_cache
def my_reading(request: HttpRequest) -> HttpResponse:
    """The reader's history, ratings and "not interested" marks, each removable."""
    user = request.user
    # Lazy: the lists are a cached fragment of the reader's own.
    context = {
        "reads": SimpleLazyObject(lambda: selectors.user_reads(user=user, limit=100)),
        "ratings": SimpleLazyObject(lambda: selectors.user_ratings(user=user)),
        "not_interested": SimpleLazyObject(lambda: selectors.user_not_interested_list(user=user)),
    }
    return page_render(request, "articles/my_reading.html", context)


def signup(request: HttpRequest) -> HttpResponse:
    """Create an account and sign in."""
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
        messages.success(request, f"Welcome, {user.username}! Rate a few books to get your picks.")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


# --- Small JSON endpoints (also plain form posts) ---------------------------------------------

@require_POST
def item_rate(request: HttpRequest, item_type: str, item_id: int) -> HttpResponse:
    """Save the reader's 1-5 stars for an item; a bad value gets 400 and stores nothing."""
    refused = _signed_in_or_error(request, "rate")
    if refused:
        return refused
    item = _item_or_404(item_type, item_id)
    form = RatingForm(request.POST)
    back = _next_url(request, item.get_absolute_url())
    if not form.is_valid():
        message = " ".join(form.errors["stars"])
        if _wants_json(request):
            return _json_error(message, 400)
        messages.error(request, message)
        return redirect(back)
    try:
        rating = services.rating_set(user=request.user, item=item, stars=form.cleaned_data["stars"])
    except ValidationError as error:
        if _wants_json(request):
            return _json_error(_error_message(error), 400)
        messages.error(request, _error_message(error))
        return redirect(back)
    message = f"Saved: you gave “{item.title}” {rating.stars} star{'s' if rating.stars > 1 else ''}."
    if _wants_json(request):
        return JsonResponse({"stars": rating.stars, "message": message,
                             "rating_count": selectors.user_rating_count(user=request.user)})
    messages.success(request, message)
    return redirect(back)


@require_POST
def item_rating_delete(request: HttpRequest, item_type: str, item_id: int) -> HttpResponse:
    """Remove the reader's rating of an item."""
    refused = _signed_in_or_error(request, "change your ratings")
    if refused:
        return refused
    item = _item_or_404(item_type, item_id)
    try:
        services.rating_delete(user=request.user, item=item)
        message, status = f"Removed your rating of “{item.title}”.", 200
    except ValidationError as error:
        message, status = _error_message(error), 404
    if _wants_json(request):
        return JsonResponse({"message": message}, status=status) if status == 200 else _json_error(message, status)
    (messages.success if status == 200 else messages.error)(request, message)
    return redirect(_next_url(request, reverse("my-reading")))


@require_POST
def item_not_interested(request: HttpRequest, item_type: str, item_id: int) -> HttpResponse:
    """Mark an item "not interested" (or take the mark back with ``undo=1``)."""
    refused = _signed_in_or_error(request, "hide items")
    if refused:
        return refused
    item = _item_or_404(item_type, item_id)
    undo = request.POST.get("undo") in {"1", "true", "on"}
    if undo:
        services.not_interested_delete(user=request.user, item=item)
        message = f"“{item.title}” can appear in your picks again."
    else:
        services.not_interested_set(user=request.user, item=item)
        message = f"Got it: we won't suggest “{item.title}” again."
    if _wants_json(request):
        return JsonResponse({"not_interested": not undo, "message": message})
    messages.success(request, message)
    return redirect(_next_url(request, item.get_absolute_url()))


@require_POST
def read_beacon(request: HttpRequest, read_id: int) -> HttpResponse:
    """Receive the page script's dwell seconds and scroll progress for the reader's own read.

    ``navigator.sendBeacon`` cannot set headers, so the script sends the CSRF token as the
    ``csrfmiddlewaretoken`` form field, which ``CsrfViewMiddleware`` accepts.
    """
    if not request.user.is_authenticated:
        return _json_error("Sign in to report reading.", 401)
    read = get_object_or_404(Read, pk=read_id, user=request.user)
    form = ReadBeaconForm(request.POST)
    if not form.is_valid():
        message = " ".join(f"{field}: {' '.join(errs)}" for field, errs in form.errors.items())
        return _json_error(message, 400)
    try:
        services.read_update(read=read, dwell_seconds=form.cleaned_data["dwell_seconds"],
                             progress=form.cleaned_data["progress"])
    except ValidationError as error:
        return _json_error(_error_message(error), 400)
    return HttpResponse(status=204)


@require_POST
@login_required
def read_delete(request: HttpRequest, read_id: int) -> HttpResponse:
    """Remove one read from the reader's history."""
    try:
        services.read_delete(user=request.user, read_id=read_id)
        messages.success(request, "Removed from your history.")
    except ValidationError as error:
        raise Http404(_error_message(error)) from None
    return redirect(_next_url(request, reverse("my-reading")))
