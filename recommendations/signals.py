"""Connects the app's hooks: a user's refresh on a committed interaction, an item's content neighbours on save."""
from __future__ import annotations

import logging

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from .conf import app_settings

logger = logging.getLogger(__name__)


def _interaction_changed(sender, instance, **kwargs) -> None:
    for config in app_settings.INTERACTIONS:
        if apps.get_model(config["model"]) is sender:
            user_id = getattr(instance, f"{config.get('user_field', 'user')}_id", None)
            if user_id is not None:
                from .services import user_refresh_request

                transaction.on_commit(lambda: user_refresh_request(user_id=user_id))
            return


def _item_saved(sender, instance, raw=False, **kwargs) -> None:
    if raw or not app_settings.CONTENT_ON_SAVE:
        return
    if sender._meta.label not in app_settings.ITEM_MODELS:
        return
    from .tasks import item_content_refresh

    ct_id = ContentType.objects.get_for_model(sender).pk
    object_id = str(instance.pk)

    def queue() -> None:
        try:
            item_content_refresh.delay(ct_id, object_id)
        except Exception:
            logger.warning("Could not queue the content refresh of %s:%s", ct_id, object_id, exc_info=True)

    transaction.on_commit(queue)


def _dispatch_save(sender, instance, **kwargs) -> None:
    _interaction_changed(sender, instance, **kwargs)
    _item_saved(sender, instance, **kwargs)


def _user_deleted(sender, instance, **kwargs) -> None:
    if sender is get_user_model():
        from .services import user_data_forget

        # In the deleting transaction: a rollback undoes this too.
        user_data_forget(user_id=instance.pk)


post_save.connect(_dispatch_save, dispatch_uid="recommendations.post_save")
post_delete.connect(_user_deleted, dispatch_uid="recommendations.user_deleted")
post_delete.connect(_interaction_changed, dispatch_uid="recommendations.post_delete")
