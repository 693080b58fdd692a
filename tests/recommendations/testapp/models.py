"""Provides ``Item``, ``Like`` and ``Score``: a minimal host for the recommendations app."""
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Item(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)

    def __str__(self):
        return self.name


class Like(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    item = models.ForeignKey(Item, on_delete=models.CASCADE)
    created_at = models.DateTimeField(default=timezone.now)
    seconds = models.FloatField(null=True, blank=True)  # only the column readers' tests name it


class Score(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    item = models.ForeignKey(Item, on_delete=models.CASCADE)
    stars = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
