"""Provides the app's public write operations under one name; each lives in the module that does its job.

Hosts and older code import these from here. New code may import them from their homes:
``build.pipeline`` (full builds), ``build.lease`` (the build lock), ``build.parts``,
``build.state``, ``refresh`` (incremental updates), ``rules`` (editor rules) and ``tasks``
(what queues work: ``full_build_start``, ``user_refresh_request``). See recommendations/README.md.
"""
from __future__ import annotations

from .build.config import algorithm_settings
from .build.errors import BuildAlreadyRunning, BuildError
from .build.lease import (
    FULL_BUILD_LOCK,
    build_lock_acquire,
    build_lock_break,
    build_lock_extend,
    build_lock_holder,
    build_lock_release,
)
from .build.load import LoadedData, build_load
from .build.parts import BUILD_PARTS, PART_COUNTS, build_part
from .build.pipeline import (
    Progress,
    build_activate,
    build_fail,
    build_finalize,
    build_prepare,
    build_score_chunk,
    builds_prune,
    full_build_run,
)
from .build.state import BuildState, build_state
from .impressions.attribution import position_parse, recommendation_id_parse
from .impressions.recording import (
    attribution_record,
    attribution_record_for_request,
    impression_record,
    impression_record_for_request,
    impressions_flush,
)
from .impressions.rollup import daily_metrics_rollup, impressions_daily_run, impressions_purge
from .refresh import (
    item_content_refresh,
    item_rows_forget,
    pending_refreshes_list,
    pending_refreshes_run,
    user_data_forget,
    user_refresh,
)
from .rules import item_rule_clear, item_rule_set
from .tasks import full_build_fan_out, full_build_start, user_refresh_request

__all__ = [
    "BUILD_PARTS", "FULL_BUILD_LOCK", "PART_COUNTS", "BuildAlreadyRunning", "BuildError", "BuildState",
    "LoadedData", "Progress", "algorithm_settings", "build_activate", "build_fail", "build_finalize",
    "build_load", "build_lock_acquire", "build_lock_break", "build_lock_extend", "build_lock_holder",
    "build_lock_release", "build_part", "build_prepare", "build_score_chunk", "build_state", "builds_prune",
    "attribution_record", "attribution_record_for_request", "daily_metrics_rollup", "full_build_fan_out", "full_build_run",
    "full_build_start", "impression_record", "impression_record_for_request",
    "impressions_daily_run", "impressions_flush", "impressions_purge", "item_content_refresh", "item_rows_forget", "item_rule_clear",
    "item_rule_set", "pending_refreshes_list", "pending_refreshes_run", "position_parse", "recommendation_id_parse", "user_data_forget", "user_refresh",
    "user_refresh_request",
]
