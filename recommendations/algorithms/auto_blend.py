"""Provides the blend search of ``auto``: coordinate ascent over member weights and a popularity exponent.

The search reads cached validation scores only (``auto_tuning`` computes them once per member fit), so
each point costs a weighted sum of dense blocks, never a refit; it keeps a move only when the validation
objective improves, so the chosen blend never validates below its best start (each member alone, the
untuned defaults).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .blend import AUTO_DEFAULTS, ITEM_COMPONENTS, USER_COMPONENTS
from .tuning import TuningResult

__all__ = ["ASCENT_PASSES", "BLEND_WEIGHT_GRID", "EDGE_STEPS", "EXPONENT_EDGE_STEP", "IALS_ALONE_WEIGHT",
           "POPULARITY_EXPONENTS", "WEIGHT_EDGE_FACTOR", "default_blend_weights", "search_blend"]

#: Blend weights tried for each member of ``auto`` (the anchor member is fixed at 1; the blend is
#: scale-free, so this loses nothing). Item-item members are unit-scaled and the iALS term is
#: divided by each user's largest score (see ``Auto``), so one grid serves all of them.
BLEND_WEIGHT_GRID: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)

#: The weight that stands for a per-user member (iALS, UserKNN) alone beside the item-item anchor at 1:
#: ``Auto`` needs an item-item part (for neighbours and explanations), which at this weight only breaks ties.
IALS_ALONE_WEIGHT = 1e6

#: Popularity exponents the blend search tries beside the weights (``Auto(popularity_exponent=...)``):
#: full ranking over a long tail often rewards discounting popular items across the whole blend, a
#: sampled protocol may reward favouring them; 0 (no factor) is the start.
POPULARITY_EXPONENTS: tuple[float, ...] = (-0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.3)

#: Sweeps of the coordinate ascent at most; it stops as soon as a sweep moves nothing. Two sweeps left the
#: small sets' ascent still climbing, and on a holdout carved from TRAIN only the further sweeps' choices held
#: up (docs/decisions.md, "The blend ascent sweeps until nothing moves").
ASCENT_PASSES = 4

#: When the ascent ends with a coordinate on the edge of its grid (a weight at the grid's largest value, an
#: exponent at its smallest or largest), the optimum may lie beyond it: the search walks outward, a weight
#: times ``WEIGHT_EDGE_FACTOR`` and an exponent by ``EXPONENT_EDGE_STEP`` per step, at most ``EDGE_STEPS``
#: steps, while validation improves. A choice inside the grids is left exactly as the ascent made it.
WEIGHT_EDGE_FACTOR = 1.5
EXPONENT_EDGE_STEP = 0.1
EDGE_STEPS = 8


def search_blend(
    search: Any, obj: str, names: list[str], results: dict[str, TuningResult],
    weight_grid: Sequence[float], n_passes: int = ASCENT_PASSES, exponents: Sequence[float] = POPULARITY_EXPONENTS,
    edge_steps: int = EDGE_STEPS,
) -> TuningResult:
    """Coordinate ascent over ``weight_grid`` and the popularity ``exponents`` on cached scores, anchored on the
    best item-item member.

    ``search`` is the tuner's shared state (``auto_tuning``): its ``cached`` member scores per objective, its
    ``folds``, ``metric``, ``say`` and ``blend_score(obj, weights, exponent)``; ``results`` each member's tuning.
    """
    metric = search.metric
    available = [n for n in names if n in search.cached[obj]]
    items = [n for n in available if n in ITEM_COMPONENTS]
    if not items:
        # no member scored anything finite (e.g. no usable validation user): the first item member alone
        anchor = next(n for n in names if n in ITEM_COMPONENTS)
        search.say(f"tune auto blend [{obj}]: no finite validation score; {anchor} alone")
        return TuningResult("auto", {"weights": {anchor: 1.0}, anchor: results[anchor].best_params},
                            float("nan"), metric, [], members=results)
    anchor = max(items, key=lambda n: results[n].best_score)
    ascent = _Ascent(search, obj, {n: 0.0 for n in available}, 0.0, results[anchor].best_score)
    ascent.weights[anchor] = 1.0
    ascent.trials.append({"weights": {anchor: 1.0}, metric: ascent.best, "start": f"{anchor} alone"})
    ascent.memo[ascent.key({anchor: 1.0}, 0.0)] = ascent.best
    # Other starting points: each per-user member alone (the anchor then only breaks its ties) and the
    # untuned blend, from which the ascent keeps its members unless validation says otherwise. The
    # best start wins, so the blend never validates below any member alone.
    starts = [({anchor: 1.0, n: IALS_ALONE_WEIGHT}, f"{n} alone") for n in USER_COMPONENTS if n in available]
    default = default_blend_weights(available)
    default_anchor = max((n for n in default if n in ITEM_COMPONENTS), key=default.get, default=None)
    if default_anchor is not None and len(default) > 1:
        starts.append(({n: w / default[default_anchor] for n, w in default.items()}, "untuned defaults"))
    for start, label in starts:
        if ascent.consider(start, 0.0, label):
            anchor = max((n for n in start if n in ITEM_COMPONENTS), key=start.get)
            ascent.weights = {n: start.get(n, 0.0) for n in available}
    for _ in range(n_passes):
        if not ascent.sweep(anchor, weight_grid, exponents):
            break
    # Past the grids' edges: walk out where the ascent stopped on an edge, then sweep the grids again from there.
    for _ in range(n_passes):
        if (not _walk_edges(ascent, anchor, weight_grid, exponents, edge_steps)
                or not ascent.sweep(anchor, weight_grid, exponents)):
            break
    chosen = {n: float(w) for n, w in ascent.weights.items() if w > 0}
    params: dict[str, Any] = {"weights": chosen}
    if ascent.exponent:
        params["popularity_exponent"] = ascent.exponent
    for n in chosen:
        params[n] = results[n].best_params
    return TuningResult("auto", params, float(ascent.best), metric, ascent.trials, members=results)


def _walk_edges(ascent: _Ascent, anchor: str, weight_grid: Sequence[float], exponents: Sequence[float],
                steps: int) -> bool:
    """Walk each coordinate that sits on the edge of its grid outward while validation improves; True if one moved."""
    moved = False
    top = max(weight_grid)
    for n in list(ascent.weights):
        value = ascent.weights[n]
        if n == anchor or value < top or value >= IALS_ALONE_WEIGHT:
            continue
        for _ in range(steps):
            value = round(value * WEIGHT_EDGE_FACTOR, 6)
            if not ascent.consider({**ascent.weights, n: value}, ascent.exponent):
                break
            moved = True
    for edge, sign in ((max(exponents), 1.0), (min(exponents), -1.0)):
        if ascent.exponent == 0.0 or sign * (ascent.exponent - edge) < 0:
            continue
        value = ascent.exponent
        for _ in range(steps):
            value = round(value + sign * EXPONENT_EDGE_STEP, 6)
            if not ascent.consider(dict(ascent.weights), value):
                break
            moved = True
    return moved


@dataclass
class _Ascent:
    """The state of the blend search: current weights and popularity exponent, best score, scores seen."""

    search: Any
    obj: str
    weights: dict[str, float]
    exponent: float
    best: float
    memo: dict[tuple, float] = field(default_factory=dict)
    trials: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def key(weights: Mapping[str, float], exponent: float) -> tuple:
        return tuple(sorted((m, v) for m, v in weights.items() if v > 0)) + (("", float(exponent)),)

    def sweep(self, anchor: str, weight_grid: Sequence[float], exponents: Sequence[float]) -> bool:
        """One pass over each member's weight (but the anchor's) and the exponent; True if a move improved."""
        improved = False
        for n in list(self.weights):
            for value in weight_grid:
                if n != anchor and value != self.weights[n]:
                    improved |= self.consider({**self.weights, n: float(value)}, self.exponent)
        for value in exponents:
            if value != self.exponent:
                improved |= self.consider(dict(self.weights), float(value))
        self.search.say(f"tune auto blend [{self.obj}] weights {self.weights} popularity exponent {self.exponent} "
                        f"-> {self.search.metric}={self.best:.4f}")
        return improved

    def consider(self, weights: dict[str, float], exponent: float, start: str | None = None) -> bool:
        """Score a blend (once: the ascent revisits points) and move to it when it validates better."""
        metric, key = self.search.metric, self.key(weights, exponent)
        if key not in self.memo or start is not None:
            self.memo[key], per_fold = self.search.blend_score(self.obj, weights, exponent)
            trial: dict[str, Any] = {"weights": {m: v for m, v in weights.items() if v > 0}, metric: self.memo[key]}
            if exponent:
                trial["popularity_exponent"] = exponent
            if start is not None:
                trial["start"] = start
            elif len(self.search.folds) > 1:
                trial["folds"] = per_fold
            self.trials.append(trial)
        if np.isfinite(self.memo[key]) and self.memo[key] > self.best + (1e-9 if start is None else 0.0):
            self.best, self.exponent = self.memo[key], exponent
            self.weights.update(weights)
            return True
        return False


def default_blend_weights(available: Sequence[str]) -> dict[str, float]:
    """``AUTO_DEFAULTS``' blend weights over the ``available`` members (EASE^R's weight moves to ItemKNN
    when EASE^R is not available, as in ``Auto.component_weights``)."""
    weights = {n: float(w) for n, w in AUTO_DEFAULTS["weights"].items() if float(w) > 0}
    if "ease" in weights and "ease" not in available and "itemknn" in available:
        weights["itemknn"] = weights.get("itemknn", 0.0) + weights.pop("ease")
    return {n: w for n, w in weights.items() if n in available}
