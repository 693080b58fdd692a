"""Provides the system checks of the impression settings (ids recommendations.E020-E022)."""
from __future__ import annotations

import re
from typing import Any

from django.core import checks

from ..conf import DEFAULTS

POSITIVE_NUMBERS = ("ATTRIBUTION_WINDOW_SECONDS", "IMPRESSION_RETENTION_DAYS", "IMPRESSION_FLUSH_SIZE", "POSITIVE_STARS")


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def impression_settings_check(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    """Check the impression settings of ``RECOMMENDATIONS``."""
    errors: list[checks.CheckMessage] = []
    for key in POSITIVE_NUMBERS:
        value = conf.get(key, DEFAULTS[key])
        if not _is_number(value) or not value > 0:
            errors.append(checks.Error(f"{key} must be a number > 0, not {value!r}.",
                                       hint=f"e.g. '{key}': {DEFAULTS[key]}.", id="recommendations.E020"))
    flush = conf.get("IMPRESSION_FLUSH_SECONDS", DEFAULTS["IMPRESSION_FLUSH_SECONDS"])
    if not _is_number(flush) or not flush >= 0:
        errors.append(checks.Error(f"IMPRESSION_FLUSH_SECONDS must be a number >= 0, not {flush!r}.",
                                   hint="e.g. 1.0; 0 starts no background writer.", id="recommendations.E020"))
    progress = conf.get("READ_THROUGH_PROGRESS", DEFAULTS["READ_THROUGH_PROGRESS"])
    if not _is_number(progress) or not 0 < progress <= 1:
        errors.append(checks.Error(f"READ_THROUGH_PROGRESS must be a number in (0, 1], not {progress!r}.",
                                   hint="e.g. 0.8: a read past 80% is a read-through.", id="recommendations.E020"))
    pattern = conf.get("BOT_USER_AGENTS", DEFAULTS["BOT_USER_AGENTS"])
    try:
        if not isinstance(pattern, str):
            raise TypeError("not a string")
        re.compile(pattern)
    except (re.error, TypeError) as exc:
        errors.append(checks.Error(f"BOT_USER_AGENTS is not a regular expression: {exc}.",
                                   hint=r"e.g. r'bot\b|crawl|spider' ('' records every user agent).",
                                   id="recommendations.E021"))
    if not isinstance(conf.get("IMPRESSIONS", DEFAULTS["IMPRESSIONS"]), bool):
        errors.append(checks.Error("IMPRESSIONS must be True or False.", hint="True records every served list.",
                                   id="recommendations.E022"))
    return errors
