"""Provides ``app_settings``: the ``RECOMMENDATIONS`` setting merged over its defaults.

Every option lives in one namespaced dict, the way DRF uses ``REST_FRAMEWORK``::

    RECOMMENDATIONS = {
        "ITEM_MODELS": ["shop.Product"],
        "INTERACTIONS": [
            {"model": "shop.Purchase", "user_field": "buyer", "item_field": "product", "kind": "read"},
            {"model": "shop.Review", "user_field": "author", "item_field": "product",
             "kind": "rating", "stars_field": "stars"},
        ],
        "TEXT_FIELDS": {"shop.Product": ["name", "description"]},
    }

Read options with ``from recommendations.conf import app_settings`` and
``app_settings.N_RECOMMENDATIONS``. The object reloads on Django's ``setting_changed``
signal, so ``override_settings(RECOMMENDATIONS=...)`` works in tests.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # "app_label.ModelName" of every model whose rows can be recommended.
    "ITEM_MODELS": [],
    # One dict per interaction model. Keys: model, user_field, item_field (a ForeignKey to an item model,
    # or a GenericForeignKey), kind ("read", "rating", "not_interested" or "weight"), and optional
    # weight (a number, for kind "weight"), weight_field, stars_field, dwell_field, progress_field,
    # timestamp_field.
    "INTERACTIONS": [],
    # {"app_label.ModelName": [field, ...]}: the text used for content similarity. Many-to-many fields
    # are joined by their related objects' str().
    "TEXT_FIELDS": {},
    # Dotted path of the adapter class (subclass of recommendations.adapters.DefaultAdapter).
    "ADAPTER": "recommendations.adapters.DefaultAdapter",
    # The algorithm that computes per-user picks and collaborative neighbours, and its parameters.
    # "auto" is the production default; see recommendations/algorithms.
    "ALGORITHM": "auto",
    "ALGORITHM_PARAMS": {},
    # A JSON file written by `python -m recommendations evaluate --tune --params-out FILE`; overrides the two above.
    "ALGORITHM_PARAMS_FILE": None,
    # Entries kept per row of an item-item model's similarity (dense blends are pruned to this).
    "MODEL_TOP_K": 200,
    # Parameters of the star predictor (recommendations.algorithms.rating.BiasedMF) fitted on ratings.
    "RATING_MODEL": {"factors": 32, "iterations": 10, "regularization": 0.05},
    # How many results are stored per user (for each item model) and per item.
    "N_RECOMMENDATIONS": 30,
    "N_SIMILAR": 20,
    # How many items a popularity list keeps per item model.
    "N_POPULAR": 50,
    # Popular counts interactions in this many most recent days ("Popular this week" = 7).
    "POPULAR_WINDOW_DAYS": 7,
    # Feedback model: see recommendations.algorithms.feedback.FeedbackConfig. Keys override its defaults.
    "FEEDBACK": {},
    # Filters applied when serving: drop items the user already interacted with.
    "EXCLUDE_SEEN": True,
    # {"app_label.ModelName": {"field": value}}: only items matching these lookups are served,
    # e.g. {"articles.Article": {"is_published": True}}.
    "ITEM_FILTERS": {},
    # Serve a reader's default GET /api/recommendations/ from its stored response body (recommendations.payloads).
    "STORED_PAYLOADS": True,
    # The Django cache (an alias of CACHES) of neighbour lists served by the API, keyed by build and generation.
    "CACHE": "default",
    # Business rules from editors: stored in the ItemRule table (pin, boost, ban).
    # Diversity re-rank (maximal marginal relevance) when serving picks: 0 disables, 0-1 trades relevance for diversity.
    "MMR_LAMBDA": 0.0,
    # Diversity cap when serving picks: (window, max) pairs, "at most max items sharing a key (the
    # adapter's diversity_key(): author, brand, ...) among the first window"; [] turns it off.
    "DIVERSITY_CAPS": [(6, 2), (12, 3)],
    # Below the caps, a pick competes as if this many places further down for each pick of its key
    # already in the list (0: only the caps act).
    "DIVERSITY_PENALTY": 12.0,
    # Full builds: the crontab of the periodic build that `migrate` installs (editable in admin).
    "BUILD_SCHEDULE": {"minute": "15", "hour": "3", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    # Users per fan-out chunk of a full build.
    "BUILD_CHUNK_SIZE": 2000,
    # Builds kept (the active one included); older ones are deleted after a successful switch.
    "KEEP_BUILDS": 3,
    # A full-build lock older than this many seconds belongs to a dead worker and expires.
    "LOCK_TIMEOUT": 1800,
    # Per-user refreshes are debounced: at most one per user per this many seconds.
    "REFRESH_DEBOUNCE_SECONDS": 1.0,
    # Celery queue used by the app's tasks (None: the default queue).
    "QUEUE": None,
    # Whether saving an item queues the computation of its content neighbours.
    "CONTENT_ON_SAVE": True,
    # Cold items: full builds fit recommendations.algorithms.cold.ColdStartHybrid (with COLD_START_PARAMS) on the
    # items' features (their TEXT_FIELDS and the adapter's diversity_key()), blend its personal scores into the
    # picks by each item's warmth, and place an item saved later in matching readers' picks.
    "COLD_START": True,
    "COLD_START_PARAMS": {},
    # Exploration: this share of each stored personal list (0.1 = 1 slot in 10, never the first) goes to
    # new items: those read by at most NEW_ITEM_MAX_READERS readers at the build, or saved since; a share of 0 turns it off.
    "EXPLORATION_SHARE": 0.1,
    "NEW_ITEM_MAX_READERS": 0,
    # Which new item fills exploration slot j: one of the EXPLORATION_CANDIDATES best content matches after slot
    # j-1's, by EXPLORATION_CHOICE ("content": the best match, "readers": the most read at the build); with
    # probability EXPLORATION_EPSILON one drawn uniformly among them instead, its probability stored with the
    # pick and logged on the impression (offline estimates, impressions/offpolicy.py). Drawn once per reader
    # and build (seeded), so serving stays precomputed.
    "EXPLORATION_CANDIDATES": 1,
    "EXPLORATION_CHOICE": "content",
    "EXPLORATION_EPSILON": 0.0,
    # Refuse EASE^R above this many items (its memory is n_items^2 * 8 bytes).
    "EASE_MAX_ITEMS": 20000,
    # Full builds of a self-tuning algorithm ("auto"): the safety net, in seconds, of its member
    # search (its tune_budget, unless ALGORITHM_PARAMS gives one); the search itself is a count of
    # fits, so it is the same on a busy machine. Later builds reuse the chosen configuration until the
    # interactions have grown by RETUNE_GROWTH (a share: 0.2 = 20%) or it is RETUNE_DAYS old.
    "TUNE_BUDGET_SECONDS": 600.0,
    "RETUNE_GROWTH": 0.2,
    "RETUNE_DAYS": 7.0,
    # Impressions (recommendations.impressions): record every served list. False serves the same ids
    # and records nothing (to measure what recording costs).
    "IMPRESSIONS": True,
    # Buffered impressions are written by a background thread every this many seconds, or as soon as
    # IMPRESSION_FLUSH_SIZE are waiting, and at exit; 0 starts no thread (call impressions_flush()).
    "IMPRESSION_FLUSH_SECONDS": 1.0,
    "IMPRESSION_FLUSH_SIZE": 250,
    # Raw impressions and their attributions older than this many days are purged by the daily rollup.
    "IMPRESSION_RETENTION_DAYS": 30,
    # A read, rating or "Not interested" mark this many seconds or less after a list showed the item
    # is attributed to that list (the latest such list of the reader).
    "ATTRIBUTION_WINDOW_SECONDS": 1800,
    # A read counts as a read-through from this progress (0-1); a rating is positive feedback from these stars.
    "READ_THROUGH_PROGRESS": 0.8,
    "POSITIVE_STARS": 4,
    # Requests whose User-Agent matches this regular expression (case-insensitive) are bots: not recorded.
    "BOT_USER_AGENTS": r"bot\b|bot/|crawl|spider|slurp|bingpreview|facebookexternalhit|mediapartners|archiver",
    # Online experiments (recommendations.experiments): the level of their intervals and tests; the p-value
    # under which a sample-ratio mismatch is flagged; the normal mixture's standard deviation of the
    # always-valid test, as a share of the control arm's value (0.1: effects around a 10% lift).
    "EXPERIMENT_ALPHA": 0.05,
    "EXPERIMENT_SRM_ALPHA": 0.001,
    "EXPERIMENT_MIXTURE_TAU": 0.1,
}

class AppSettings:
    """Lazy, cached view of ``settings.RECOMMENDATIONS`` merged over ``DEFAULTS``."""

    def __init__(self, defaults: dict[str, Any] | None = None):
        self.defaults = defaults or DEFAULTS
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        if not hasattr(self, "_user_settings"):
            self._user_settings = getattr(settings, "RECOMMENDATIONS", {}) or {}
        return self._user_settings

    def __getattr__(self, attr: str) -> Any:
        if attr not in self.defaults:
            raise AttributeError(f"Invalid RECOMMENDATIONS setting: {attr!r}")
        value = self.user_settings.get(attr, self.defaults[attr])
        self._cached.add(attr)
        setattr(self, attr, value)
        return value

    def reload(self) -> None:
        for attr in self._cached:
            delattr(self, attr)
        self._cached.clear()
        if hasattr(self, "_user_settings"):
            delattr(self, "_user_settings")


app_settings = AppSettings(DEFAULTS)


def _reload_app_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == "RECOMMENDATIONS":
        app_settings.reload()


setting_changed.connect(_reload_app_settings)
