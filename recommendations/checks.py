"""Provides the system checks of the ``RECOMMENDATIONS`` setting (ids ``recommendations.E0xx``/``W0xx``).

=====  ==============================================================================
id     what is wrong
=====  ==============================================================================
E001   ``RECOMMENDATIONS`` is not a dict
E002   ``ITEM_MODELS`` is empty or not a list of "app_label.ModelName" strings
E003   an item model label does not resolve to an installed model
E004   an ``INTERACTIONS`` entry is not a dict with a "model" key
E005   an interaction model label does not resolve
E006   an interaction's ``user_field`` is not a ForeignKey to ``AUTH_USER_MODEL``
E007   an interaction's ``item_field`` is not a ForeignKey/GenericForeignKey to an item model
E008   an interaction's ``kind`` is not one of read, rating, not_interested, weight
E009   an interaction's ``weight`` is not a number
E010   an interaction names a field (stars/dwell/progress/weight/timestamp) that does not exist
E011   ``TEXT_FIELDS`` names a model that is not an item model, or a field it does not have
E012   ``ADAPTER`` does not import (the message shows why), or is not a ``DefaultAdapter`` subclass
E013   ``ALGORITHM`` is not a known algorithm
E014   a count (``N_RECOMMENDATIONS``, ``N_SIMILAR``, ``N_POPULAR``, ``BUILD_CHUNK_SIZE``, ``KEEP_BUILDS``,
       ``LOCK_TIMEOUT``, ``MODEL_TOP_K``) is not a positive integer
E015   ``ALGORITHM_PARAMS_FILE`` does not exist or is not valid JSON
E016   ``ITEM_FILTERS`` names a model that is not an item model, is not a dict of lookups, or has a
       lookup that does not resolve against the model (e.g. a field it does not have)
E017   ``MMR_LAMBDA`` is not a number in [0, 1]
E018   ``DIVERSITY_CAPS`` is not a list of (window, max) pairs of positive integers with distinct windows,
       or ``DIVERSITY_PENALTY`` is not a number >= 0
E019   ``TUNE_BUDGET_SECONDS``, ``RETUNE_GROWTH`` or ``RETUNE_DAYS`` is not a number >= 0
E020   an impression setting (``ATTRIBUTION_WINDOW_SECONDS``, ``IMPRESSION_RETENTION_DAYS``, ``IMPRESSION_FLUSH_SIZE``,
       ``POSITIVE_STARS``, ``IMPRESSION_FLUSH_SECONDS``, ``READ_THROUGH_PROGRESS``) is not a number in its range
E021   ``BOT_USER_AGENTS`` is not a regular expression
E022   ``IMPRESSIONS`` is not a boolean
E026   ``EXPLORATION_SHARE`` is not a number in [0, 0.5]
E027   ``NEW_ITEM_MAX_READERS`` is not an integer >= 0
E028   ``COLD_START`` is not True or False, or ``COLD_START_PARAMS`` is not a dict of ``ColdStartHybrid`` parameters
E029   ``CACHE`` is not an alias of ``settings.CACHES``
E030   ``EXPLORATION_CANDIDATES`` is not an integer >= 1, ``EXPLORATION_CHOICE`` is not ``"content"`` or
       ``"readers"``, or ``EXPLORATION_EPSILON`` is not a number in [0, 1]
W001   ``RECOMMENDATIONS`` has a key the app does not know (probably a typo)
W002   an item model has no ``TEXT_FIELDS``: it gets no content-based neighbours
W003   the default database is SQLite without a ``"timeout"`` of 20 seconds or more and ``"transaction_mode": "IMMEDIATE"``
=====  ==============================================================================

An ``ITEM_MODELS`` entry that does not resolve is reported once (E003): the checks that compare
other settings with the item models are skipped then, since their errors would only repeat it.
"""
from __future__ import annotations

import inspect
import json
from importlib import import_module
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, FieldError, ValidationError
from django.db import models
from django.utils.module_loading import import_string

from .adapters import DefaultAdapter
from .algorithms import ALGORITHMS
from .algorithms.cold import ColdStartHybrid
from .algorithms.diversity import validate_caps
from .conf import DEFAULTS
from .impressions.checks import impression_settings_check
from .interactions import OPTIONAL_COLUMNS

KINDS = ("read", "rating", "not_interested", "weight")
COUNTS = ("N_RECOMMENDATIONS", "N_SIMILAR", "N_POPULAR", "BUILD_CHUNK_SIZE", "KEEP_BUILDS", "LOCK_TIMEOUT",
          "MODEL_TOP_K")


def _error(n: int, msg: str, hint: str, obj=None) -> checks.Error:
    return checks.Error(msg, hint=hint, obj=obj, id=f"recommendations.E{n:03d}")


def _model(label):
    if not isinstance(label, str) or label.count(".") != 1:
        return None
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


def check_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Check every part of ``settings.RECOMMENDATIONS``."""
    conf = getattr(settings, "RECOMMENDATIONS", {})
    if not isinstance(conf, dict):
        return [_error(1, "RECOMMENDATIONS must be a dict.", "Set RECOMMENDATIONS = {'ITEM_MODELS': [...], ...}.")]
    errors: list[checks.CheckMessage] = []
    for key in conf:
        if key not in DEFAULTS:
            errors.append(
                checks.Warning(
                    f"RECOMMENDATIONS has an unknown key {key!r}.",
                    hint=f"Valid keys: {', '.join(sorted(DEFAULTS))}.",
                    id="recommendations.W001",
                )
            )
    item_labels = conf.get("ITEM_MODELS", DEFAULTS["ITEM_MODELS"])
    item_models: dict[str, type[models.Model]] = {}
    complete = True  # every entry resolved: other settings may be compared with the item models
    if not isinstance(item_labels, (list, tuple)) or not item_labels:
        complete = False
        errors.append(
            _error(2, "RECOMMENDATIONS['ITEM_MODELS'] must be a non-empty list.",
                   "Name your item models, e.g. 'ITEM_MODELS': ['shop.Product'].")
        )
        item_labels = []
    for label in item_labels:
        model = _model(label)
        if model is None:
            complete = False
            errors.append(
                _error(3, f"ITEM_MODELS entry {label!r} is not an installed model.",
                       "Use 'app_label.ModelName' of a model in INSTALLED_APPS.")
            )
        else:
            item_models[model._meta.label] = model
    errors += _check_interactions(conf.get("INTERACTIONS", []), item_models, complete)
    errors += _check_text_fields(conf.get("TEXT_FIELDS", {}), item_models, complete)
    errors += _check_misc(conf, item_models, complete)
    errors += impression_settings_check(conf)
    return errors


def _check_interactions(interactions, item_models, complete=True) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if not isinstance(interactions, (list, tuple)):
        return [_error(4, "RECOMMENDATIONS['INTERACTIONS'] must be a list of dicts.",
                       "e.g. [{'model': 'shop.Purchase', 'user_field': 'user', 'item_field': 'product'}].")]
    user_model = _model(settings.AUTH_USER_MODEL)
    for i, config in enumerate(interactions):
        where = f"INTERACTIONS[{i}]"
        if not isinstance(config, dict) or "model" not in config:
            errors.append(_error(4, f"{where} must be a dict with a 'model' key.",
                                 "e.g. {'model': 'shop.Purchase', 'user_field': 'user', 'item_field': 'product'}."))
            continue
        model = _model(config["model"])
        if model is None:
            errors.append(_error(5, f"{where}: model {config['model']!r} is not an installed model.",
                                 "Use 'app_label.ModelName' of a model in INSTALLED_APPS."))
            continue
        user_field = config.get("user_field", "user")
        try:
            field = model._meta.get_field(user_field)
            ok = isinstance(field, models.ForeignKey) and field.related_model is user_model
        except FieldDoesNotExist:
            ok = False
        if not ok:
            errors.append(_error(6, f"{where}: {model._meta.label}.{user_field} is not a ForeignKey to "
                                    f"{settings.AUTH_USER_MODEL}.",
                                 "Set 'user_field' to the name of the ForeignKey to the user model."))
        item_field = config.get("item_field", "item")
        gfk = [f for f in model._meta.private_fields if isinstance(f, GenericForeignKey) and f.name == item_field]
        if not gfk:
            try:
                field = model._meta.get_field(item_field)
                ok = isinstance(field, models.ForeignKey) and (
                    field.related_model._meta.label in item_models or not complete)
            except FieldDoesNotExist:
                ok = False
            if not ok:
                errors.append(_error(7, f"{where}: {model._meta.label}.{item_field} is not a ForeignKey or "
                                        "GenericForeignKey to one of ITEM_MODELS.",
                                     "Set 'item_field' to the field that points at the item, and list the "
                                     "item's model in ITEM_MODELS."))
        kind = config.get("kind", "weight")
        if kind not in KINDS:
            errors.append(_error(8, f"{where}: kind {kind!r} is not valid.", f"Use one of {', '.join(KINDS)}."))
        weight = config.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            errors.append(_error(9, f"{where}: weight {weight!r} is not a number.", "Use e.g. 'weight': 1.0."))
        for key in (*OPTIONAL_COLUMNS.values(), "timestamp_field"):
            name = config.get(key)
            if name is None:
                continue
            try:
                model._meta.get_field(name)
            except FieldDoesNotExist:
                errors.append(_error(10, f"{where}: {key} {name!r} is not a field of {model._meta.label}.",
                                     f"Name an existing field, or remove '{key}'."))
        if kind == "rating" and not config.get("stars_field"):
            errors.append(_error(10, f"{where}: a 'rating' interaction needs 'stars_field'.",
                                 "Add 'stars_field': 'stars' (the field holding 1-5 stars)."))
    return errors


def _check_text_fields(text_fields, item_models, complete=True) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if not isinstance(text_fields, dict):
        return [_error(11, "RECOMMENDATIONS['TEXT_FIELDS'] must be a dict.",
                       "e.g. {'shop.Product': ['name', 'description']}.")]
    for label, fields in text_fields.items():
        model = item_models.get(label)
        if model is None:
            if complete:
                errors.append(_error(11, f"TEXT_FIELDS names {label!r}, which is not one of ITEM_MODELS.",
                                     "Use the same 'app_label.ModelName' as in ITEM_MODELS."))
            continue
        for name in fields if isinstance(fields, (list, tuple)) else [None]:
            try:
                model._meta.get_field(name)
            except (FieldDoesNotExist, TypeError):
                errors.append(_error(11, f"TEXT_FIELDS[{label!r}]: {name!r} is not a field of {label}.",
                                     "List text or char fields, foreign keys (their str() is used) or "
                                     "many-to-many fields (their related objects' str()) of the model."))
    for label in item_models:
        if label not in text_fields:
            errors.append(checks.Warning(f"{label} has no TEXT_FIELDS: it gets no content-based neighbours.",
                                         hint=f"Add 'TEXT_FIELDS': {{'{label}': ['title', ...]}}.",
                                         id="recommendations.W002"))
    return errors


def _check_misc(conf, item_models, complete=True) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    adapter_path = conf.get("ADAPTER", DEFAULTS["ADAPTER"])
    hint = "Point it at a subclass of recommendations.adapters.DefaultAdapter."
    try:
        adapter = import_string(adapter_path)
    except Exception as exc:  # noqa: BLE001 - a module that fails to import raises anything; show it
        errors.append(_error(12, f"ADAPTER {adapter_path!r} does not import: {type(exc).__name__}: {exc}", hint))
    else:
        if not (isinstance(adapter, type) and issubclass(adapter, DefaultAdapter)):
            errors.append(_error(12, f"ADAPTER {adapter_path!r} is not a DefaultAdapter subclass.", hint))
    algorithm = conf.get("ALGORITHM", DEFAULTS["ALGORITHM"])
    if ALGORITHMS and algorithm not in ALGORITHMS:
        errors.append(_error(13, f"ALGORITHM {algorithm!r} is not known.",
                             f"Use one of {', '.join(sorted(ALGORITHMS))}."))
    for key in COUNTS:
        value = conf.get(key, DEFAULTS[key])
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            errors.append(_error(14, f"{key} must be a positive integer, not {value!r}.", f"e.g. '{key}': {DEFAULTS[key]}."))
    params_file = conf.get("ALGORITHM_PARAMS_FILE")
    if params_file:
        try:
            json.loads(Path(params_file).read_text())
        except (OSError, ValueError) as exc:
            errors.append(_error(15, f"ALGORITHM_PARAMS_FILE {params_file!r} cannot be read as JSON: {exc}.",
                                 "Write it with `python -m recommendations evaluate --tune --params-out FILE`."))
    errors += _check_item_filters(conf.get("ITEM_FILTERS", {}), item_models, complete)
    mmr = conf.get("MMR_LAMBDA", 0.0)
    if isinstance(mmr, bool) or not isinstance(mmr, (int, float)) or not 0 <= mmr <= 1:
        errors.append(_error(17, f"MMR_LAMBDA must be a number between 0 and 1, not {mmr!r}.",
                             "Use 0 to turn the diversity re-rank off, e.g. 0.3 for some diversity."))
    errors += _check_diversity(conf.get("DIVERSITY_CAPS", DEFAULTS["DIVERSITY_CAPS"]),
                               conf.get("DIVERSITY_PENALTY", DEFAULTS["DIVERSITY_PENALTY"]))
    errors += _check_tuning(conf)
    errors += _check_cold(conf)
    errors += _check_cache(conf)
    return errors


def _check_cold(conf) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    share = conf.get("EXPLORATION_SHARE", DEFAULTS["EXPLORATION_SHARE"])
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 0.5:
        errors.append(_error(26, f"EXPLORATION_SHARE must be a number in [0, 0.5], not {share!r}.",
                             "e.g. 0.1: one slot in 10 of each personal list goes to a new item; 0 turns it off."))
    readers = conf.get("NEW_ITEM_MAX_READERS", DEFAULTS["NEW_ITEM_MAX_READERS"])
    if isinstance(readers, bool) or not isinstance(readers, int) or readers < 0:
        errors.append(_error(27, f"NEW_ITEM_MAX_READERS must be an integer >= 0, not {readers!r}.",
                             "e.g. 0: an item nobody read at the build (or saved since) is new (exploration, the New badge)."))
    errors += _check_exploration_draw(conf)
    enabled, params = conf.get("COLD_START", True), conf.get("COLD_START_PARAMS", {})
    if not isinstance(enabled, bool):
        errors.append(_error(28, f"COLD_START must be True or False, not {enabled!r}.",
                             "True fits the cold-item model in full builds and places new items on save."))
    try:
        if not isinstance(params, dict):
            raise TypeError("not a dict")
        inspect.signature(ColdStartHybrid).bind(**params)
    except TypeError as exc:
        errors.append(_error(28, f"COLD_START_PARAMS must be a dict of ColdStartHybrid parameters: {exc}.",
                             f"Parameters: {', '.join(inspect.signature(ColdStartHybrid).parameters)}."))
    return errors


def _check_exploration_draw(conf) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    candidates = conf.get("EXPLORATION_CANDIDATES", DEFAULTS["EXPLORATION_CANDIDATES"])
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        errors.append(_error(30, f"EXPLORATION_CANDIDATES must be an integer >= 1, not {candidates!r}.",
                             "e.g. 4: an exploration slot draws among 4 new items; 1 keeps it deterministic."))
    choice = conf.get("EXPLORATION_CHOICE", DEFAULTS["EXPLORATION_CHOICE"])
    if choice not in ("content", "readers"):
        errors.append(_error(30, f'EXPLORATION_CHOICE must be "content" or "readers", not {choice!r}.',
                             '"content": the best content match; "readers": the candidate most read at the build.'))
    epsilon = conf.get("EXPLORATION_EPSILON", DEFAULTS["EXPLORATION_EPSILON"])
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 <= epsilon <= 1:
        errors.append(_error(30, f"EXPLORATION_EPSILON must be a number in [0, 1], not {epsilon!r}.",
                             "e.g. 0.2: one slot in 5 is drawn uniformly among the candidates, its probability logged."))
    return errors


def _check_cache(conf) -> list[checks.CheckMessage]:
    alias = conf.get("CACHE", DEFAULTS["CACHE"])
    if isinstance(alias, str) and alias in settings.CACHES:
        return []
    return [_error(29, f"CACHE must be an alias of settings.CACHES, not {alias!r}.",
                   f"Aliases: {', '.join(sorted(settings.CACHES))}. The API's neighbour lists are cached there.")]


def _check_tuning(conf) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for key in ("TUNE_BUDGET_SECONDS", "RETUNE_GROWTH", "RETUNE_DAYS"):
        value = conf.get(key, DEFAULTS[key])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            errors.append(_error(19, f"{key} must be a number >= 0, not {value!r}.",
                                 f"e.g. '{key}': {DEFAULTS[key]} (0 re-tunes at every build for RETUNE_*)."))
    return errors


def _check_diversity(caps, penalty) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    try:
        validate_caps(caps)
    except ValueError as exc:
        errors.append(_error(18, f"DIVERSITY_CAPS is not valid: {exc}.",
                             "e.g. [(6, 2), (12, 3)]: at most 2 items of one key among the first 6 and 3 among "
                             "the first 12; [] turns the cap off."))
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not penalty >= 0:
        errors.append(_error(18, f"DIVERSITY_PENALTY must be a number >= 0, not {penalty!r}.",
                             "e.g. 12.0 (places a pick moves down per pick of its key already listed); 0 leaves "
                             "only the caps."))
    return errors


def _check_item_filters(filters, item_models, complete=True) -> list[checks.CheckMessage]:
    """Check the shape of ``ITEM_FILTERS`` and resolve each model's lookups as serving will."""
    hint = "e.g. {'shop.Product': {'is_active': True}}."
    if not isinstance(filters, dict) or any(
        (label not in item_models and complete) or not isinstance(lookups, dict) for label, lookups in filters.items()
    ):
        return [_error(16, "ITEM_FILTERS must map item model labels to dicts of lookups.", hint)]
    errors: list[checks.CheckMessage] = []
    for label, lookups in filters.items():
        model = item_models.get(label)
        if model is None or not lookups:
            continue
        try:
            # Builds the query's WHERE clause without running it: every field, relation and lookup is resolved.
            model._base_manager.filter(**lookups)
        except (FieldError, ValidationError, ValueError, TypeError) as exc:
            errors.append(_error(16, f"ITEM_FILTERS[{label!r}] does not apply to {label}: {exc}",
                                 f"Use lookups on fields of {label}, as in {label}.objects.filter(...)."))
    return errors


SQLITE_WORKER_OPTIONS = {"timeout": 30, "transaction_mode": "IMMEDIATE"}


def check_database(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Warn when workers would write to SQLite with options under which concurrent builds fail."""
    database = settings.DATABASES.get("default", {})
    try:
        vendor = import_module(f"{database.get('ENGINE', '')}.base").DatabaseWrapper.vendor
    except (ImportError, AttributeError):
        return []
    options = database.get("OPTIONS") or {}
    timeout = options.get("timeout", 5)
    if vendor != "sqlite" or (
        str(options.get("transaction_mode", "")).upper() == "IMMEDIATE"
        and isinstance(timeout, (int, float)) and timeout >= 20
    ):
        return []
    return [checks.Warning(
        "The default database is SQLite with options under which builds run by several workers fail "
        "with 'database is locked'.",
        hint=f'Set DATABASES["default"]["OPTIONS"] = {SQLITE_WORKER_OPTIONS!r} (or keep your OPTIONS and add '
             "those two keys), or use PostgreSQL for workers.",
        id="recommendations.W003",
    )]
