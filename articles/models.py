"""Provides the content of the site (articles, books, tags) and what readers do with it."""
from __future__ import annotations

import math

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

WORDS_PER_MINUTE = 230
ITEM_MODELS = Q(app_label="articles", model__in=("article", "book"))


class Tag(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=120, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    """Fields and behaviour shared by articles and books."""

    title = models.CharField(max_length=300)
    tags = models.ManyToManyField(Tag, blank=True)
    external_id = models.CharField(
        max_length=64, blank=True, default="", help_text="Id in the data set the item was imported from."
    )
    is_published = models.BooleanField(default=True, help_text="Unpublished items are hidden everywhere.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    reads = GenericRelation("articles.Read")
    ratings = GenericRelation("articles.Rating")
    not_interested_marks = GenericRelation("articles.NotInterested")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.title

    @property
    def content_type(self) -> ContentType:
        return ContentType.objects.get_for_model(self)

    @property
    def kind(self) -> str:
        return self._meta.model_name

    @property
    def word_count(self) -> int:
        return len(self.text_for_length().split())

    @property
    def reading_minutes(self) -> int:
        return max(1, math.ceil(self.word_count / WORDS_PER_MINUTE))

    def text_for_length(self) -> str:
        raise NotImplementedError(".text_for_length() must be overridden")


class Article(Item):
    slug = models.SlugField(max_length=320, unique=True)
    summary = models.TextField(blank=True)
    body = models.TextField(blank=True)
    author = models.CharField(max_length=200, blank=True)
    published_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-published_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="article_unique_external_id"
            )
        ]

    def get_absolute_url(self) -> str:
        return reverse("article-detail", kwargs={"slug": self.slug})

    def text_for_length(self) -> str:
        return self.body or self.summary


class Book(Item):
    authors = models.CharField(max_length=500, blank=True)
    year = models.IntegerField(null=True, blank=True)
    isbn = models.CharField(max_length=20, blank=True)
    description = models.TextField(blank=True)
    cover_url = models.URLField(max_length=500, blank=True)

    class Meta:
        ordering = ["title", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="book_unique_external_id"
            )
        ]

    def get_absolute_url(self) -> str:
        return reverse("book-detail", kwargs={"pk": self.pk})

    def text_for_length(self) -> str:
        return self.description

    @property
    def published_at(self):
        return self.created_at


class Interaction(models.Model):
    """Something one user did with one article or book."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, limit_choices_to=ITEM_MODELS, related_name="+"
    )
    object_id = models.PositiveBigIntegerField()
    item = GenericForeignKey("content_type", "object_id")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        abstract = True


class Read(Interaction):
    """One visit of an item's page, with how long and how far the reader read."""

    dwell_seconds = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0)], help_text="Seconds the page was visible."
    )
    progress = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="How far the reader scrolled, 0 to 1.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["content_type", "object_id"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(dwell_seconds__gte=0), name="read_dwell_non_negative"),
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="read_progress_0_1"),
        ]

    def __str__(self) -> str:
        return f"{self.user} read {self.content_type.model} {self.object_id}"


class Rating(Interaction):
    """A reader's 1-5 stars for an item; rating again updates the same row."""

    stars = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["content_type", "object_id"])]
        constraints = [
            models.UniqueConstraint(fields=["user", "content_type", "object_id"], name="rating_one_per_user_item"),
            models.CheckConstraint(condition=Q(stars__gte=1) & Q(stars__lte=5), name="rating_stars_1_5"),
        ]

    def __str__(self) -> str:
        return f"{self.user} gave {self.stars}★ to {self.content_type.model} {self.object_id}"


class NotInterested(Interaction):
    """A reader's "not interested" mark: negative feedback that hides the item from their picks."""

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "not-interested mark"
        constraints = [
            models.UniqueConstraint(fields=["user", "content_type", "object_id"], name="not_interested_one_per_user_item")
        ]

    def __str__(self) -> str:
        return f"{self.user} is not interested in {self.content_type.model} {self.object_id}"
