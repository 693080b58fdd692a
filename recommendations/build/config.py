"""Provides the build's configuration: the algorithm, its parameters and the feedback model."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..algorithms import ALGORITHMS
from ..algorithms.feedback import FeedbackConfig
from ..conf import app_settings
from ..experiments.models import DefaultConfiguration


def algorithm_settings() -> tuple[str, dict[str, Any]]:
    """Return the configured algorithm's name and parameters.

    An experiment's promoted winner (``DefaultConfiguration``) overrides ``ALGORITHM_PARAMS_FILE``,
    which overrides the settings.
    """
    promoted = DefaultConfiguration.objects.filter(pk=1).values_list("algorithm", "params").first()
    if promoted is not None:
        return promoted[0], dict(promoted[1] or {})
    name, params = app_settings.ALGORITHM, dict(app_settings.ALGORITHM_PARAMS)
    if app_settings.ALGORITHM_PARAMS_FILE:
        data = json.loads(Path(app_settings.ALGORITHM_PARAMS_FILE).read_text())
        name, params = data.get("algorithm", name), dict(data.get("params", {}))
    return name, params


def build_algorithm_settings() -> tuple[str, dict[str, Any]]:
    """Return the algorithm and parameters a build fits: the settings, with ``EASE_MAX_ITEMS`` and
    ``TUNE_BUDGET_SECONDS`` where they apply."""
    return fit_settings(*algorithm_settings())


def fit_settings(name: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return ``name`` and ``params`` completed with ``EASE_MAX_ITEMS`` and ``TUNE_BUDGET_SECONDS`` where they apply."""
    params = dict(params)
    names = param_names(name)
    if "max_items" in names and "max_items" not in params:
        params["max_items"] = app_settings.EASE_MAX_ITEMS
    if "tune_budget" in names and "tune_budget" not in params:
        params["tune_budget"] = float(app_settings.TUNE_BUDGET_SECONDS)
    return name, params


def param_names(name: str) -> list[str]:
    """Return the hyperparameter names of algorithm ``name`` (none for an unknown name)."""
    cls = ALGORITHMS.get(name)
    return list(cls._param_names()) if cls is not None else []


def feedback_config() -> FeedbackConfig:
    """Return the feedback model's configuration (``FEEDBACK`` over its defaults)."""
    return FeedbackConfig(**app_settings.FEEDBACK)
