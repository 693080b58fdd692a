"""Provides ``DefaultAdapter``: what the host's items and interactions are, as plain data.

The adapter turns the ``RECOMMENDATIONS`` setting into rows the algorithms understand:
interaction events ``(user_id, item_key, kind, stars, dwell, progress, timestamp)`` and
``item_key -> text`` for content similarity, where ``item_key`` is
``(content_type_id, object_id as str)``. Like allauth's ``ACCOUNT_ADAPTER``, a project
subclasses it and overrides only what it needs (``item_text()``, ``item_payload()``,
``interaction_rows()``), then names the subclass in ``RECOMMENDATIONS["ADAPTER"]``.
"""
from __future__ import annotations

import datetime
import functools
import sqlite3
import uuid
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, FieldError, ImproperlyConfigured, ValidationError
from django.db import connections, models
from django.db.models.functions import Cast
from django.utils.module_loading import import_string
from django.utils.translation import gettext

from .conf import app_settings

ItemKey = tuple[int, str]


@dataclass(frozen=True)
class InteractionRow:
    """One event of one user with one item."""

    user_id: Any
    item_key: ItemKey
    kind: str
    stars: float | None = None
    dwell_seconds: float | None = None
    progress: float | None = None
    timestamp: float | None = None
    weight: float | None = None


class DefaultAdapter:
    """Reads items and interactions as declared in ``RECOMMENDATIONS``."""

    # --- items -----------------------------------------------------------------------------------
    def item_models(self) -> list[type[models.Model]]:
        """Return the item model classes, in the order of ``ITEM_MODELS``."""
        return [apps.get_model(label) for label in app_settings.ITEM_MODELS]

    def item_queryset(self, model: type[models.Model]) -> models.QuerySet:
        """Return the items of ``model`` that may be recommended (``ITEM_FILTERS`` applied).

        Raise ``ImproperlyConfigured`` when a lookup of ``ITEM_FILTERS`` does not apply to the
        model (check ``recommendations.E016`` reports it at startup).
        """
        qs = model._default_manager.all()
        lookups = app_settings.ITEM_FILTERS.get(model._meta.label, {})
        if not lookups:
            return qs
        try:
            return qs.filter(**lookups)
        except (FieldError, ValidationError, ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"RECOMMENDATIONS['ITEM_FILTERS'][{model._meta.label!r}] does not apply to {model._meta.label}: {exc}"
            ) from exc

    def item_key(self, obj: models.Model) -> ItemKey:
        """Return ``(content_type_id, str(pk))`` of an item."""
        return (ContentType.objects.get_for_model(obj).pk, str(obj.pk))

    def text_fields(self, model: type[models.Model]) -> list[str]:
        return list(app_settings.TEXT_FIELDS.get(model._meta.label, []))

    def item_texts(self, model: type[models.Model]) -> Iterator[tuple[str, str]]:
        """Yield ``(str(pk), text)`` for every item of ``model``, joining its ``TEXT_FIELDS``.

        Related rows are loaded in bulk: foreign keys with the items, many-to-many fields with
        one query each, so the cost does not grow with the number of items.
        """
        fields = self.text_fields(model)
        m2m = [f for f in fields if isinstance(model._meta.get_field(f), models.ManyToManyField)]
        fks = [f for f in fields if isinstance(model._meta.get_field(f), models.ForeignKey)]
        qs = self.item_queryset(model).select_related(*fks).prefetch_related(*m2m)
        for obj in qs.iterator(chunk_size=2000) if not m2m else qs:
            yield str(obj.pk), self.item_text(obj, fields)

    def item_text(self, obj: models.Model, fields: list[str] | None = None) -> str:
        """Return the text of one item used for content similarity."""
        fields = self.text_fields(type(obj)) if fields is None else fields
        parts = []
        for name in fields:
            field = obj._meta.get_field(name)
            if isinstance(field, models.ManyToManyField):
                parts.append(" ".join(str(related) for related in getattr(obj, name).all()))
            else:
                value = getattr(obj, name)
                if value:
                    parts.append(str(value))
        return "\n".join(parts)

    def item_title(self, obj: models.Model) -> str:
        return str(obj)

    def explanation_text(self, explanation: list[dict[str, Any]]) -> str:
        """Return the sentence shown beside a pick, e.g. "Because you read Dune and Emma", or ``""``.

        ``explanation`` is the pick's list of ``{"title", "content_type", "object_id"}`` (the
        history items that contributed most). The text is translated into the active language;
        override to word it for your site (e.g. "Because you bought ...").
        """
        titles = [str(e["title"]) for e in explanation if e.get("title")]
        if not titles:
            return ""
        if len(titles) == 1:
            return gettext("Because you read %(title)s") % {"title": titles[0]}
        return gettext("Because you read %(titles)s and %(last)s") % {
            "titles": ", ".join(titles[:-1]), "last": titles[-1]}

    def item_titles(self, keys: Iterable[ItemKey]) -> dict[ItemKey, str]:
        """Return the display title of items by key, with one query per item model."""
        by_ct: dict[int, set[str]] = {}
        for ct_id, object_id in keys:
            by_ct.setdefault(ct_id, set()).add(object_id)
        titles: dict[ItemKey, str] = {}
        for ct_id, ids in by_ct.items():
            model = ContentType.objects.get_for_id(ct_id).model_class()
            if model is None:
                continue
            pk = model._meta.pk
            for obj in model._default_manager.filter(pk__in=[pk.to_python(i) for i in ids]):
                titles[(ct_id, str(obj.pk))] = self.item_title(obj)
        return titles

    def diversity_key(self, obj: models.Model) -> Hashable | None:
        """Return what makes two items "the same again" in one list (an author, a series, a brand), or None.

        Serving caps how many picks share a key (``DIVERSITY_CAPS``: by default at most 2 among
        the first 6 and 3 in a list of 12). ``None``, the default, means the item is never capped
        and does not count. Override to return e.g. ``obj.author_id``; keys of different item
        models may be equal on purpose (an author who writes both books and articles). It is
        called on every served candidate, so read only fields loaded with the item.
        """
        return None

    def item_payload(self, obj: models.Model) -> dict[str, Any]:
        """Return the JSON the API shows for an item; override to add fields."""
        url = obj.get_absolute_url() if hasattr(obj, "get_absolute_url") else None
        return {
            "type": obj._meta.label_lower,
            "id": str(obj.pk),
            "title": self.item_title(obj),
            "url": url,
        }

    # --- interactions ------------------------------------------------------------------------------
    def interaction_configs(self) -> list[dict[str, Any]]:
        return list(app_settings.INTERACTIONS)

    def interaction_rows(self, *, since=None, user_ids: Iterable[Any] | None = None) -> Iterator[InteractionRow]:
        """Yield every interaction (optionally only newer than ``since`` or of some users)."""
        for config in self.interaction_configs():
            yield from self._rows_for(config, since=since, user_ids=user_ids)

    def interaction_columns(self, *, since=None, user_ids: Iterable[Any] | None = None) -> InteractionColumns:
        """Return every interaction as columns; much faster than ``interaction_rows`` for a full build.

        A subclass that overrides ``interaction_rows`` with custom logic should override this
        too (the default implementation reads the configured models directly).
        """
        if type(self).interaction_rows is not DefaultAdapter.interaction_rows:
            return _columns_from_rows(self.interaction_rows(since=since, user_ids=user_ids))
        parts = [self._columns_for(config, since=since, user_ids=user_ids) for config in self.interaction_configs()]
        return InteractionColumns.concat(parts)

    def _columns_for(self, config: dict[str, Any], *, since=None, user_ids=None) -> InteractionColumns:
        """Read one interaction model with one raw query (no model instances, no per-row converters)."""
        qs, names, ct_expr, fixed_ct, extra, ts_field = self._query_for(config, since=since, user_ids=user_ids)
        names = list(names)
        vendor = connections[qs.db].vendor
        postgresql = vendor == "postgresql"
        if vendor in ("postgresql", "sqlite"):
            reader = _columns_by_aggregate if postgresql else _columns_by_concat
            columns = reader(qs, names, ct_expr, ts_field, [key for key, _ in extra])
            if columns is not None:
                return self._columns_finish(config, *columns, fixed_ct=fixed_ct)
        epoch = False
        if postgresql:
            # psycopg builds a datetime (and a UUID) per row, which took most of a million-row load:
            # ask the server for unix seconds and for UUIDs as text instead (issue 4, pipeline benchmark).
            model = qs.model
            for position in (0, 1):
                field = _concrete_field(model, names[position])
                if isinstance(getattr(field, "target_field", field), models.UUIDField):
                    qs = qs.annotate(**{f"_bre_text_{position}": Cast(names[position], models.TextField())})
                    names[position] = f"_bre_text_{position}"
            if ts_field:
                qs = qs.annotate(_bre_epoch=_Epoch(ts_field))
                names[-1], epoch = "_bre_epoch", True
        sql, params = qs.values_list(*names).query.sql_with_params()
        with connections[qs.db].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        n = len(rows)
        cols = list(zip(*rows)) if rows else [[] for _ in names]
        pos = 2
        if ct_expr:
            ct = np.asarray(cols[pos], dtype=np.int64)
            pos += 1
        else:
            ct = np.full(n, fixed_ct, dtype=np.int64)
        values = {"stars": np.full(n, np.nan), "dwell_seconds": np.full(n, np.nan),
                  "progress": np.full(n, np.nan), "weight": np.full(n, np.nan)}
        for key, _ in extra:
            values[key] = _column(list(cols[pos]))
            pos += 1
        if not ts_field:
            timestamp = np.full(n, np.nan)
        elif epoch:
            timestamp = _column(list(cols[pos]))
        else:
            timestamp = _timestamps(list(cols[pos]))
        if config.get("weight") is not None:
            values["weight"] = np.where(np.isnan(values["weight"]), float(config["weight"]), values["weight"])
        # Raw rows skip Django's converters (e.g. SQLite stores UUIDs as hex): canonicalise ids.
        user_pk = get_user_model()._meta.pk
        users = {raw: user_pk.to_python(raw) for raw in set(cols[0])}
        item_pk = None if ct_expr else _item_field(apps.get_model(config["model"]), config.get("item_field", "item")).target_field
        items = {raw: str(item_pk.to_python(raw) if item_pk is not None else raw) for raw in set(cols[1])}
        return InteractionColumns(
            user_id=[users[u] for u in cols[0]], content_type_id=ct, object_id=[items[o] for o in cols[1]],
            kind=np.full(n, config.get("kind", "weight"), dtype=object).astype(str),
            timestamp=timestamp, **values,
        )

    def _columns_finish(self, config: dict[str, Any], users: np.ndarray, object_ids: np.ndarray, ct: np.ndarray | None,
                        values: dict[str, np.ndarray], timestamp: np.ndarray, *, fixed_ct: int | None) -> InteractionColumns:
        """Columns from ``_columns_by_aggregate``'s arrays: ids as the row reader gives them, one conversion per distinct id."""
        n = len(users)
        user_pk = get_user_model()._meta.pk
        item_pk = None if ct is not None else _item_field(apps.get_model(config["model"]), config.get("item_field", "item")).target_field
        floats = {key: values.get(key, np.full(n, np.nan)) for key in ("stars", "dwell_seconds", "progress", "weight")}
        if config.get("weight") is not None:
            floats["weight"] = np.where(np.isnan(floats["weight"]), float(config["weight"]), floats["weight"])
        return InteractionColumns(
            user_id=_distinct_map(users, user_pk.to_python),
            content_type_id=np.full(n, fixed_ct, dtype=np.int64) if ct is None else ct.astype(np.int64),
            object_id=_distinct_map(object_ids, (lambda raw: str(item_pk.to_python(raw))) if item_pk is not None else str),
            kind=np.full(n, config.get("kind", "weight"), dtype=object).astype(str),
            timestamp=timestamp, **floats,
        )

    def _query_for(self, config: dict[str, Any], *, since=None, user_ids=None):
        model = apps.get_model(config["model"])
        user_field = config.get("user_field", "user")
        item_field = config.get("item_field", "item")
        ts_field = config.get("timestamp_field")
        optional = {
            "stars": config.get("stars_field"),
            "dwell_seconds": config.get("dwell_field"),
            "progress": config.get("progress_field"),
            "weight": config.get("weight_field"),
        }
        field = _item_field(model, item_field)
        if isinstance(field, GenericForeignKey):
            ct_expr, id_expr, fixed_ct = field.ct_field, field.fk_field, None
        else:
            fixed_ct = ContentType.objects.get_for_model(field.related_model).pk
            ct_expr, id_expr = None, field.attname
        names = [f"{user_field}_id" if not user_field.endswith("_id") else user_field, id_expr]
        if ct_expr:
            names.append(f"{ct_expr}_id")
        extra = [(key, name) for key, name in optional.items() if name]
        names += [name for _, name in extra]
        if ts_field:
            names.append(ts_field)
        qs = model._default_manager.all()
        if since is not None and ts_field:
            qs = qs.filter(**{f"{ts_field}__gt": since})
        if user_ids is not None:
            qs = qs.filter(**{f"{user_field}__in": list(user_ids)})
        return qs, names, ct_expr, fixed_ct, extra, ts_field

    def user_item_keys(self, user_id: Any, *, candidates: Iterable[ItemKey] | None = None) -> set[ItemKey]:
        """Return the keys of the items ``user_id`` interacted with (one small query per interaction model).

        With ``candidates``, only those items are looked up: serving checks a short list.
        """
        candidate_ids = None if candidates is None else {object_id for _, object_id in candidates}
        if candidate_ids is not None and not candidate_ids:
            return set()
        keys: set[ItemKey] = set()
        for config in self.interaction_configs():
            qs, names, ct_expr, fixed_ct, _, _ = self._query_for(config, user_ids=[user_id])
            id_name = names[1]
            if candidate_ids is not None:
                qs = qs.filter(**{f"{id_name}__in": list(candidate_ids)})
            if ct_expr:
                keys.update((ct, str(oid)) for oid, ct in qs.values_list(id_name, f"{ct_expr}_id"))
            else:
                keys.update((fixed_ct, str(oid)) for oid in qs.values_list(id_name, flat=True))
        return keys

    def _rows_for(self, config: dict[str, Any], *, since=None, user_ids=None) -> Iterator[InteractionRow]:
        qs, names, ct_expr, fixed_ct, extra, ts_field = self._query_for(config, since=since, user_ids=user_ids)
        kind = config.get("kind", "weight")
        constant_weight = config.get("weight")
        for values in qs.values_list(*names).iterator(chunk_size=5000):
            user_id, object_id = values[0], values[1]
            pos = 2
            if ct_expr:
                ct_id = values[pos]
                pos += 1
            else:
                ct_id = fixed_ct
            row: dict[str, Any] = {}
            for key, _ in extra:
                row[key] = values[pos]
                pos += 1
            timestamp = values[pos].timestamp() if ts_field and values[pos] is not None else None
            if constant_weight is not None and "weight" not in row:
                row["weight"] = float(constant_weight)
            yield InteractionRow(
                user_id=user_id, item_key=(ct_id, str(object_id)), kind=kind, timestamp=timestamp, **row
            )


@dataclass
class InteractionColumns:
    """Many interactions as equal-length columns (the fast path of a full build)."""

    user_id: list
    content_type_id: np.ndarray
    object_id: list
    kind: np.ndarray
    stars: np.ndarray
    dwell_seconds: np.ndarray
    progress: np.ndarray
    timestamp: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.user_id)

    @classmethod
    def concat(cls, parts: list[InteractionColumns]) -> InteractionColumns:
        if not parts:
            empty = np.zeros(0)
            return cls([], np.zeros(0, dtype=np.int64), [], np.zeros(0, dtype=str), empty, empty, empty, empty, empty)
        return cls(
            user_id=[u for p in parts for u in p.user_id],
            content_type_id=np.concatenate([p.content_type_id for p in parts]),
            object_id=[o for p in parts for o in p.object_id],
            kind=np.concatenate([p.kind for p in parts]),
            **{name: np.concatenate([getattr(p, name) for p in parts])
               for name in ("stars", "dwell_seconds", "progress", "timestamp", "weight")},
        )


def _timestamps(values: list) -> np.ndarray:
    """Convert database timestamps (datetimes, or SQLite's ISO strings) to unix seconds."""
    if not values:
        return np.zeros(0)
    if isinstance(values[0], str):
        stamps = np.array([v.replace(" ", "T")[:26].rstrip("Z") if v else "NaT" for v in values],
                          dtype="datetime64[us]")
        return stamps.astype("int64") / 1e6
    if settings.USE_TZ:  # the raw cursor gives SQLite's stored UTC as naive datetimes: not local times
        values = [v.replace(tzinfo=datetime.timezone.utc) if v is not None and v.tzinfo is None else v for v in values]
    return np.array([v.timestamp() if v is not None else np.nan for v in values], dtype=np.float64)


# ``_columns_by_aggregate``: the PostgreSQL send function of each fixed-width column type, and its bytes.
_SEND = {"int8": ("int8send", np.dtype(">i8")), "float8": ("float8send", np.dtype(">f8")),
         "uuid": ("uuid_send", np.dtype("V16"))}
_AGGREGATE_MAX_BYTES = 256 * 2**20  # per string_agg value (PostgreSQL refuses one over 1 GB); more rows: more values


class _FloatOrNaN(models.Func):
    """A number as double precision, NaN where NULL: every record has the same width."""

    template = "COALESCE(CAST(%(expressions)s AS double precision), 'NaN'::double precision)"
    output_field = models.FloatField()


class _EpochOrNaN(models.Func):
    """Unix seconds as double precision (``date_part`` is twice as fast as ``EXTRACT``'s numeric), NaN where NULL."""

    template = "COALESCE(date_part('epoch', %(expressions)s), 'NaN'::double precision)"
    output_field = models.FloatField()


def _id_send_type(field) -> str | None:
    """How an id column is sent: int8, uuid, or None (e.g. text: not fixed-width)."""
    field = getattr(field, "target_field", field)
    if isinstance(field, models.UUIDField):
        return "uuid"
    if isinstance(field, models.IntegerField):  # AutoField and BigAutoField too
        return "int8"
    return None


def _columns_by_aggregate(qs: models.QuerySet, names: list[str], ct_expr: str | None, ts_field: str | None,
                          extra: list[str]):
    """Read one interaction model on PostgreSQL (psycopg 3) as packed binary records, cut by numpy.

    The server turns every row into one fixed-width record (ids as int8 or uuid, numbers and
    times as float8 with NaN for NULL, each by its binary send function) and concatenates them
    with ``string_agg``; one binary ``COPY`` brings the result, which ``np.frombuffer`` reads
    without a Python object per value. MovieLens-1M's million ratings took 3.4 s through the
    cursor (a tuple per row, ``zip``, conversions); a binary ``COPY`` of the rows themselves was
    slower still (psycopg handles each row's message in Python). See docs/decisions.md.

    Return ``(users, object_ids, content_types or None, {extra key: floats}, timestamps)``, or
    None where this does not apply: psycopg 2, an id that is neither an integer nor a UUID, a
    number column that is not numeric, a NULL id (its record would be NULL and skipped: the
    count tells). The caller then reads through the cursor. Above ``_AGGREGATE_MAX_BYTES`` the
    rows are parted by a hash of the user id into several values of one pass.
    """
    model = qs.model
    types = [_id_send_type(_concrete_field(model, name)) for name in names[:2]]
    if None in types:
        return None
    expressions = {"_bre_c0": models.F(names[0]), "_bre_c1": models.F(names[1])}
    pos = 2
    if ct_expr:
        expressions["_bre_ct"] = models.F(names[pos])
        types.append("int8")
        pos += 1
    for key in extra:
        field = _concrete_field(model, names[pos])
        if not isinstance(field, (models.IntegerField, models.FloatField, models.DecimalField)):
            return None
        expressions[f"_bre_{key}"] = _FloatOrNaN(names[pos])
        types.append("float8")
        pos += 1
    if ts_field:
        expressions["_bre_ts"] = _EpochOrNaN(ts_field)
        types.append("float8")
    record = np.dtype([(alias, _SEND[kind][1]) for alias, kind in zip(expressions, types)])
    connection = connections[qs.db]
    qn = connection.ops.quote_name
    inner, params = qs.annotate(**expressions).values_list(*expressions).query.sql_with_params()
    packed = " || ".join(
        f"{_SEND[kind][0]}(CAST(t.{qn(alias)} AS {'uuid' if kind == 'uuid' else 'bigint' if kind == 'int8' else 'double precision'}))"
        for alias, kind in zip(expressions, types)
    )
    with connection.cursor() as cursor:
        if not hasattr(cursor.cursor, "copy"):
            return None
        cursor.execute(f"SELECT count(*) FROM ({inner}) t", params)
        n = cursor.fetchone()[0]
        # Large tables: several values in the same pass, the rows parted by a hash of the user id.
        parts = max(1, -(-n * record.itemsize // _AGGREGATE_MAX_BYTES))
        if parts == 1:
            aggregates = f"string_agg({packed}, ''::bytea)"
        else:
            user_hash = f"{'uuid_hash' if types[0] == 'uuid' else 'hashint8'}(t.{qn('_bre_c0')})"
            aggregates = ", ".join(f"string_agg({packed}, ''::bytea) FILTER (WHERE ({user_hash} & 2147483647) % {parts} = {part})"
                                   for part in range(parts))
        sql = f"COPY (SELECT {aggregates} FROM ({inner}) t) TO STDOUT (FORMAT BINARY)"
        with cursor.cursor.copy(sql, params) as copy:
            copy.set_types(["bytea"] * parts)
            (values,) = list(copy.rows())
    blob = b"".join(value for value in values if value is not None)
    if len(blob) != n * record.itemsize:
        return None  # a NULL id left its row out
    rows = np.frombuffer(blob, dtype=record)
    columns = [rows[alias] if kind == "uuid" else rows[alias].astype(rows[alias].dtype.newbyteorder("="))
               for alias, kind in zip(expressions, types)]
    return _packed_columns(columns, n, ct_expr, extra, ts_field)


def _columns_by_concat(qs: models.QuerySet, names: list[str], ct_expr: str | None, ts_field: str | None,
                       extra: list[str]):
    """Read one interaction model on SQLite as one text value per column, parsed by numpy.

    SQLite's counterpart of ``_columns_by_aggregate``: one pass of ``group_concat`` turns each
    column into one string (integers and numbers comma-separated, UUIDs as their 32 stored hex
    digits back to back, NULL numbers as ``nan``), which ``np.fromstring`` and ``np.frombuffer``
    read without a Python object per value. Times are computed by SQLite as integer microseconds
    since the epoch, so no ``datetime`` is built per row and stored UTC times are never taken
    for local ones. MovieLens-1M's million ratings took 3.4 s through the cursor. See
    docs/decisions.md.

    What would not survive the trip sends the caller back to the cursor (return None): the same
    pass counts the UUIDs that are not 32 digits long and the floats whose 17 digits do not read
    back equal; a NULL id is left out by ``group_concat`` (the row count tells) and text in a
    number column does not parse. So do an id that is neither an integer nor a UUID, a number
    that is not an integer or float field, no ``USE_TZ`` (stored times are then local), and
    values longer than SQLite allows.
    """
    model = qs.model
    kinds = []
    for name in names[:2]:
        field = _concrete_field(model, name)
        kinds.append({"int8": "int", "uuid": "hex32"}.get(_id_send_type(field)))
    if ct_expr:
        kinds.append("int")
    for name in names[len(kinds):len(kinds) + len(extra)]:
        field = _concrete_field(model, name)
        kinds.append("int" if isinstance(field, models.IntegerField)
                     else "float" if isinstance(field, models.FloatField) else None)
    if ts_field:
        field = _concrete_field(model, ts_field)
        kinds.append("time" if isinstance(field, models.DateTimeField) and settings.USE_TZ else None)
    if None in kinds:
        return None
    n_ids = 2 + bool(ct_expr)
    aliases = [f"_bre_c{position}" for position in range(len(kinds))]
    expressions = {alias: models.F(name) for alias, name in zip(aliases, names[:len(kinds) - bool(ts_field)])}
    if ts_field:
        expressions[aliases[-1]] = models.F(ts_field)
    connection = connections[qs.db]
    qn = connection.ops.quote_name
    inner, params = qs.annotate(**expressions).values_list(*expressions).query.sql_with_params()
    values, checks = [], []
    for position, (alias, kind) in enumerate(zip(aliases, kinds)):
        column = f"t.{qn(alias)}"
        if kind == "hex32":
            values.append(f"group_concat({column}, '')")
            checks.append(f"length({column}) <> 32")
        elif kind == "time":
            values.append(f"group_concat(coalesce({_sqlite_microseconds(column)}, 'nan'), ',')")
        elif kind == "float":
            # 17 significant digits read back as the same double; printf would print NULL as 0.0.
            values.append(f"group_concat(CASE WHEN {column} IS NULL THEN 'nan' ELSE printf('%%!.17g', {column}) END, ',')")
            checks.append(f"CAST(printf('%%!.17g', {column}) AS REAL) <> {column}")
        elif position < n_ids:  # an integer id: a NULL is left out, and the count tells
            values.append(f"group_concat({column}, ',')")
        else:  # an integer number: NULL as NaN
            values.append(f"group_concat(coalesce({column}, 'nan'), ',')")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({inner}) t", params)
        n = cursor.fetchone()[0]
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) if hasattr(connection.connection, "getlimit") else 10**9
        if n * 34 > limit:  # a value takes at most 33 bytes: 32 hex digits, or a 17-digit float and its comma
            return None
        bad = f"total({' OR '.join(checks)})" if checks else "0"
        cursor.execute(f"SELECT {bad}, {', '.join(values)} FROM ({inner}) t", params)
        bad, *texts = cursor.fetchone()
    if bad:
        return None
    columns = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns (and stops) where text does not parse
        try:
            for position, (kind, text) in enumerate(zip(kinds, texts)):
                text = text or ""
                if kind == "hex32":
                    column = np.frombuffer(text.encode("ascii"), dtype="S32")
                elif position < n_ids:
                    column = np.fromstring(text, dtype=np.int64, sep=",") if text else np.zeros(0, dtype=np.int64)
                else:
                    column = np.fromstring(text, dtype=np.float64, sep=",") if text else np.zeros(0)
                if len(column) != n:
                    return None
                columns.append(column)
        except (DeprecationWarning, ValueError):
            return None
    if ts_field:
        columns[-1] = columns[-1] / 1e6  # microseconds -> seconds
    return _packed_columns(columns, n, ct_expr, extra, ts_field)


def _packed_columns(columns: list[np.ndarray], n: int, ct_expr: str | None, extra: list[str], ts_field: str | None):
    """The packed readers' result from their columns in query order: ``(users, object_ids, content_types or None,
    {extra key: floats}, timestamps)``."""
    rest = iter(columns[2:])
    ct = next(rest) if ct_expr else None
    values = {key: next(rest) for key in extra}
    timestamp = next(rest) if ts_field else np.full(n, np.nan)
    return columns[0], columns[1], ct, values, timestamp


def _sqlite_microseconds(column: str) -> str:
    """SQL: integer microseconds since the epoch of a SQLite datetime text (``USE_TZ``: stored in UTC).

    Exact for what Django stores (``YYYY-MM-DD HH:MM:SS[.ffffff]``): SQLite counts whole seconds
    (``julianday`` of the first 19 characters, rounded) and the digits after the point are read
    as they are. Any other form SQLite understands (a ``T``, a ``Z``, an offset) is exact to the
    millisecond, which is what SQLite keeps.
    """
    def seconds(text: str) -> str:
        return f"(CAST(round(julianday({text}) * 86400) AS INTEGER) - 210866760000)"  # 2440587.5 days: 1970-01-01

    return (f"CASE WHEN length({column}) = 19 THEN {seconds(column)} * 1000000 "
            f"WHEN length({column}) = 26 AND substr({column}, 20, 1) = '.' "
            f"THEN {seconds(f'substr({column}, 1, 19)')} * 1000000 + CAST(substr({column}, 21) AS INTEGER) "
            f"ELSE (CAST(round(julianday({column}) * 86400000) AS INTEGER) - 210866760000000) * 1000 END")


def _distinct_map(values: np.ndarray, convert: Callable[[Any], Any]) -> list:
    """``[convert(v) for v in values]``, calling ``convert`` once per distinct value.

    UUIDs arrive as 16 raw bytes (PostgreSQL) or 32 hex digits (SQLite). Fixed-width bytes are
    deduplicated with a dict: ``np.unique`` sorts them, which took 0.5 s for a million ids.
    """
    if not len(values):
        return []
    if values.dtype.kind in "SV":
        keys = values.tolist()
        if values.dtype.kind == "V":
            table = {raw: convert(uuid.UUID(bytes=raw)) for raw in dict.fromkeys(keys)}
        else:
            table = {raw: convert(raw.decode("ascii")) for raw in dict.fromkeys(keys)}
        return list(map(table.__getitem__, keys))
    distinct, inverse = np.unique(values, return_inverse=True)
    lookup = np.empty(len(distinct), dtype=object)
    lookup[:] = [convert(raw) for raw in distinct.tolist()]
    return lookup[inverse.ravel()].tolist()


class _Epoch(models.Func):
    """Unix seconds of a PostgreSQL timestamp, as a float (EXTRACT alone gives a numeric: a Decimal per row)."""

    template = "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS double precision)"
    output_field = models.FloatField()


def _concrete_field(model: type[models.Model], attname: str):
    """The field whose column is ``attname`` (``user_id`` -> the ``user`` foreign key), or None."""
    try:
        return model._meta.get_field(attname)  # Django maps both names and attnames
    except FieldDoesNotExist:
        return None


def _column(values: list, default: float = np.nan) -> np.ndarray:
    return np.array([default if v is None else v for v in values], dtype=np.float64)


def _item_field(model: type[models.Model], name: str):
    for field in model._meta.private_fields:
        if field.name == name:
            return field
    return model._meta.get_field(name)


def _columns_from_rows(rows: Iterable[InteractionRow]) -> InteractionColumns:
    rows = list(rows)
    nan = np.nan
    return InteractionColumns(
        user_id=[r.user_id for r in rows],
        content_type_id=np.asarray([r.item_key[0] for r in rows], dtype=np.int64),
        object_id=[r.item_key[1] for r in rows],
        kind=np.asarray([r.kind for r in rows], dtype=object).astype(str) if rows else np.zeros(0, dtype=str),
        stars=np.asarray([nan if r.stars is None else r.stars for r in rows], dtype=np.float64),
        dwell_seconds=np.asarray([nan if r.dwell_seconds is None else r.dwell_seconds for r in rows], dtype=np.float64),
        progress=np.asarray([nan if r.progress is None else r.progress for r in rows], dtype=np.float64),
        timestamp=np.asarray([nan if r.timestamp is None else r.timestamp for r in rows], dtype=np.float64),
        weight=np.asarray([nan if r.weight is None else r.weight for r in rows], dtype=np.float64),
    )


@functools.lru_cache(maxsize=1)
def get_adapter() -> DefaultAdapter:
    """Return an instance of the adapter class named in ``RECOMMENDATIONS["ADAPTER"]``."""
    return import_string(app_settings.ADAPTER)()
