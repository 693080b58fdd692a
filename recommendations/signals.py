"""Connects the app's hooks: a user's refresh on a committed interaction, an item's content neighbours on save.

A deleted item takes the stored rows that point at it along; a deleted user queues no refresh.

They also invalidate stored picks (``recommendations.payloads``) in the writing transaction: the
reader's own on each interaction, everyone's on an item or an editor's rule saved or deleted
and on a build made active. The save and delete hooks listen to the user model and the
configured item and interaction models only, and are connected again when the settings change.
"""
from __future__ import annotations

import logging

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.signals import setting_changed
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from . import refresh, tasks
from .build.pipeline import build_switched
from .conf import DEFAULTS, app_settings
from .impressions.hooks import interaction_attribute
from .models import BuildRun, ItemRule
from .payloads import user_payload_invalidate, user_payloads_invalidate
from .rules import rules_cache_clear

logger = logging.getLogger(__name__)


def _deleting_a_user(origin) -> bool:
    """Return whether a deletion comes from deleting users (their stored picks go with them)."""
    user_model = get_user_model()
    return isinstance(origin, user_model) or getattr(origin, "model", None) is user_model


def _interaction_changed(sender, instance, **kwargs) -> None:
    for config in app_settings.INTERACTIONS:
        if apps.get_model(config["model"]) is sender:
            user_id = getattr(instance, f"{config.get('user_field', 'user')}_id", None)
            if user_id is not None:
                origin = kwargs.get("origin")
                if not _deleting_a_user(origin):
                    # Now, in the writing transaction: a seen item must never be served from a stored body.
                    user_payload_invalidate(user_id=user_id)
                    if "created" in kwargs:  # saved, not deleted
                        interaction_attribute(config, instance, created=kwargs["created"])
                    transaction.on_commit(lambda: tasks.user_refresh_request(user_id=user_id))
                elif getattr(origin, "pk", None) != user_id:
                    # Another reader's row, gone with a deleted user's object, or a bulk delete of users.
                    transaction.on_commit(lambda: _refresh_if_user_left(user_id))
            return


def _refresh_if_user_left(user_id) -> None:
    """After a delete of users: refresh a reader whose history changed, unless they were deleted too."""
    if get_user_model()._default_manager.filter(pk=user_id).exists():
        user_payload_invalidate(user_id=user_id)
        tasks.user_refresh_request(user_id=user_id)


def _item_changed(sender, instance, **kwargs) -> None:
    """Any item saved or deleted (published, title, ...) may change anyone's picks: bump the generation."""
    label = sender._meta.label
    # Identity, not label: a migration's historical models must not touch tables that may not exist yet.
    if label in app_settings.ITEM_MODELS and apps.get_model(label) is sender:
        user_payloads_invalidate()


def _rule_changed(sender, instance, **kwargs) -> None:
    rules_cache_clear()
    user_payloads_invalidate()


def _build_saved(sender, instance, update_fields=None, **kwargs) -> None:
    """A build made active (``build_finalize``, ``build_activate``) bumps the generation in the same transaction.

    Stored bodies also carry their build id, but build ids come back (switching back in the admin):
    the generation only grows, so a body computed across a switch and back is never served.
    """
    if instance.is_active and (update_fields is None or "is_active" in update_fields):
        user_payloads_invalidate()


def _item_saved(sender, instance, raw=False, **kwargs) -> None:
    if raw or not app_settings.CONTENT_ON_SAVE:
        return
    if sender._meta.label not in app_settings.ITEM_MODELS:
        return
    ct_id = ContentType.objects.get_for_model(sender).pk
    object_id = str(instance.pk)

    def queue() -> None:
        try:
            tasks.item_content_refresh.apply_async((ct_id, object_id), **tasks.publish_options())
        except Exception as exc:  # The broker is down: the next build computes the item's neighbours.
            logger.warning("Could not queue the content refresh of %s:%s (%r)", ct_id, object_id, exc)

    transaction.on_commit(queue)


def _dispatch_save(sender, instance, **kwargs) -> None:
    _interaction_changed(sender, instance, **kwargs)
    _item_changed(sender, instance, **kwargs)
    _item_saved(sender, instance, **kwargs)


def _item_deleted(sender, instance, **kwargs) -> None:
    label = sender._meta.label
    if label in app_settings.ITEM_MODELS and apps.get_model(label) is sender:
        # In the deleting transaction: a rollback keeps the rows with the item.
        refresh.item_rows_forget(content_type_id=ContentType.objects.get_for_model(sender).pk,
                                 object_id=str(instance.pk))


def _dispatch_delete(sender, instance, **kwargs) -> None:
    _interaction_changed(sender, instance, **kwargs)
    _item_changed(sender, instance, **kwargs)
    _item_deleted(sender, instance, **kwargs)


def _user_deleted(sender, instance, **kwargs) -> None:
    if sender is get_user_model():
        # In the deleting transaction: a rollback undoes this too.
        refresh.user_data_forget(user_id=instance.pk)


# hook name -> (signal, receiver, dispatch uid)
_HOOKS = {"user_deleted": (post_delete, _user_deleted, "recommendations.user_deleted"),
          "deleted": (post_delete, _dispatch_delete, "recommendations.post_delete"),
          "saved": (post_save, _dispatch_save, "recommendations.post_save")}
_connected: list[tuple[type, str]] = []


def _configured_models() -> list[type]:
    """Return the configured item and interaction models that resolve; a broken setting is skipped.

    A broken setting must not break start-up: the system checks name each mistake
    (recommendations.E0xx). It is read from settings, not app_settings, whose cache would outlive
    a test's ``del settings.X``.
    """
    configured = getattr(settings, "RECOMMENDATIONS", None) or {}
    if not isinstance(configured, dict):  # recommendations.E001
        configured = {}
    items = configured.get("ITEM_MODELS", DEFAULTS["ITEM_MODELS"])
    interactions = configured.get("INTERACTIONS", DEFAULTS["INTERACTIONS"])
    labels = list(items) if isinstance(items, (list, tuple)) else []
    if isinstance(interactions, (list, tuple)):
        labels += [config.get("model") for config in interactions if isinstance(config, dict)]
    models = []
    for label in labels:
        try:
            models.append(apps.get_model(label))
        except (LookupError, ValueError, TypeError, AttributeError):
            continue
    return models


def model_hooks_connect() -> None:
    """Connect the save and delete hooks to the user model and the configured item and interaction models only.

    A receiver without a sender would run for every model of the project, and Django deletes a
    queryset of a model with ``post_delete`` listeners row by row (it fetches the rows and sends a
    signal for each) instead of with one ``DELETE``: pruning a build's rows and every bulk delete
    of the host project would pay for it. Run again when ``RECOMMENDATIONS`` or
    ``AUTH_USER_MODEL`` changes (``override_settings`` in tests).
    """
    for sender, hook in _connected:
        signal, _, uid = _HOOKS[hook]
        signal.disconnect(sender=sender, dispatch_uid=uid)
    _connected.clear()
    hooks = [(get_user_model(), "user_deleted")]
    for model in _configured_models():
        hooks += [(model, "deleted"), (model, "saved")]
    for sender, hook in dict.fromkeys(hooks):
        signal, receiver, uid = _HOOKS[hook]
        signal.connect(receiver, sender=sender, dispatch_uid=uid, weak=False)
        _connected.append((sender, hook))


def _settings_changed(*, setting: str, **kwargs) -> None:
    if setting in ("RECOMMENDATIONS", "AUTH_USER_MODEL"):
        model_hooks_connect()


def _build_switched(sender, build: BuildRun, **kwargs) -> None:
    """A new build is active: refresh again the readers whose change arrived after it read its data."""
    tasks.users_changed_requeue(build=build)


model_hooks_connect()
setting_changed.connect(_settings_changed, dispatch_uid="recommendations.settings_changed")
post_save.connect(_rule_changed, sender=ItemRule, dispatch_uid="recommendations.rule_saved")
post_delete.connect(_rule_changed, sender=ItemRule, dispatch_uid="recommendations.rule_deleted")
post_save.connect(_build_saved, sender=BuildRun, dispatch_uid="recommendations.build_saved")
build_switched.connect(_build_switched, dispatch_uid="recommendations.build_switched")
