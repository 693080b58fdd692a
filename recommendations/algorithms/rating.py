"""Provides rating prediction (stars): global mean, regularised bias baseline and biased matrix factorisation."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "RatingPredictorBase", "GlobalMean", "BiasBaseline", "BiasedMF", "RATING_MODELS", "rmse", "mae", "kfold_indices",
]


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error."""
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error."""
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.mean(np.abs(d)))


def kfold_indices(n: int, n_folds: int = 5, random_state: int = 0) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Shuffle ``range(n)`` and cut it into ``n_folds`` (train_idx, test_idx) pairs (Surprise's KFold)."""
    rng = np.random.default_rng(random_state)
    perm = rng.permutation(n)
    folds = np.array_split(perm, n_folds)
    return [(np.concatenate(folds[:f] + folds[f + 1 :]), folds[f]) for f in range(n_folds)]


class RatingPredictorBase:
    """Base class: ``fit(users, items, ratings, n_users, n_items)`` then ``predict(users, items)``.

    Users and items are integer positions (see ``matrices.IndexMap``). Unknown positions
    (>= the fitted counts or negative) fall back to the parts of the model that exist, so
    a cold user gets the item's baseline and a cold item the user's.
    """

    rating_range: tuple[float, float] = (1.0, 5.0)

    def fit(
        self,
        users: ArrayLike,
        items: ArrayLike,
        ratings: ArrayLike,
        n_users: int | None = None,
        n_items: int | None = None,
    ) -> RatingPredictorBase:
        raise NotImplementedError(".fit() must be overridden")

    def predict(self, users: ArrayLike, items: ArrayLike) -> NDArray[np.float64]:
        raise NotImplementedError(".predict() must be overridden")

    # helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _validate(users: ArrayLike, items: ArrayLike, ratings: ArrayLike, n_users: int | None, n_items: int | None):
        u = np.asarray(users, dtype=np.int64).ravel()
        i = np.asarray(items, dtype=np.int64).ravel()
        r = np.asarray(ratings, dtype=np.float64).ravel()
        if not (u.size == i.size == r.size):
            raise ValueError("users, items and ratings must have the same length")
        if u.size == 0:
            raise ValueError("cannot fit on zero ratings")
        if not np.all(np.isfinite(r)):
            raise ValueError("ratings must be finite numbers")
        if u.min() < 0 or i.min() < 0:
            raise ValueError("user and item positions must be >= 0")
        n_users = int(u.max()) + 1 if n_users is None else int(n_users)
        n_items = int(i.max()) + 1 if n_items is None else int(n_items)
        if u.max() >= n_users or i.max() >= n_items:
            raise ValueError("a user or item position is outside n_users / n_items")
        return u, i, r, n_users, n_items

    def _clip(self, pred: NDArray) -> NDArray[np.float64]:
        lo, hi = self.rating_range
        return np.clip(pred, lo, hi)

    @staticmethod
    def _lookup(values: NDArray, idx: NDArray) -> NDArray:
        """values[idx] with 0 for out-of-range positions (cold users / items)."""
        ok = (idx >= 0) & (idx < values.shape[0])
        out = np.zeros((idx.size,) + values.shape[1:], dtype=np.float64)
        out[ok] = values[idx[ok]]
        return out

    def get_params(self) -> dict[str, Any]:
        """Return the hyperparameters given to ``__init__``."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"


class GlobalMean(RatingPredictorBase):
    """Predict the mean training rating for every pair."""

    def fit(self, users, items, ratings, n_users=None, n_items=None) -> "GlobalMean":
        """Learn the global mean.

        Parameters
        ----------
        users, items : array of int, shape (n,)
        ratings : array of float, shape (n,)
        n_users, n_items : int, optional

        Returns
        -------
        self
        """
        _, _, r, self.n_users_, self.n_items_ = self._validate(users, items, ratings, n_users, n_items)
        self.global_mean_ = float(r.mean())
        return self

    def predict(self, users, items) -> NDArray[np.float64]:
        """Return an array of shape (n,) filled with the global mean."""
        n = np.asarray(users).size
        return self._clip(np.full(n, self.global_mean_))


class BiasBaseline(RatingPredictorBase):
    """r_ui = mu + b_u + b_i, with L2-regularised biases fitted by alternating least squares.

    Same model and defaults as scikit-surprise's ``BaselineOnly`` with ``method="als"``.

    Parameters
    ----------
    user_regularization : float
        λ for user biases: b_u = sum(r - mu - b_i) / (λ_u + n_u).
    item_regularization : float
        λ for item biases.
    iterations : int
        Alternations.
    """

    def __init__(self, user_regularization: float = 15.0, item_regularization: float = 10.0, iterations: int = 10):
        self.user_regularization = user_regularization
        self.item_regularization = item_regularization
        self.iterations = iterations

    def fit(self, users, items, ratings, n_users=None, n_items=None) -> "BiasBaseline":
        """Learn mu, b_u (``user_bias_``, shape (n_users,)) and b_i (``item_bias_``, (n_items,)).

        Returns
        -------
        self
        """
        u, i, r, self.n_users_, self.n_items_ = self._validate(users, items, ratings, n_users, n_items)
        self.global_mean_, self.user_bias_, self.item_bias_ = _fit_biases(
            u, i, r, self.n_users_, self.n_items_, self.user_regularization, self.item_regularization, self.iterations
        )
        return self

    def predict(self, users, items) -> NDArray[np.float64]:
        """Predict stars for each (user, item) pair; shape (n,), clipped to ``rating_range``."""
        u = np.asarray(users, dtype=np.int64).ravel()
        i = np.asarray(items, dtype=np.int64).ravel()
        return self._clip(self.global_mean_ + self._lookup(self.user_bias_, u) + self._lookup(self.item_bias_, i))


def _fit_biases(u, i, r, n_users, n_items, reg_u, reg_i, iterations):
    mu = float(r.mean())
    bu = np.zeros(n_users)
    bi = np.zeros(n_items)
    n_u = np.bincount(u, minlength=n_users)
    n_i = np.bincount(i, minlength=n_items)
    for _ in range(max(1, iterations)):
        bi = np.bincount(i, weights=r - mu - bu[u], minlength=n_items) / (reg_i + n_i)
        bu = np.bincount(u, weights=r - mu - bi[i], minlength=n_users) / (reg_u + n_u)
    return mu, bu, bi


class BiasedMF(RatingPredictorBase):
    """Biased matrix factorisation r_ui = mu + b_u + b_i + p_u . q_i, fitted by alternating least squares.

    Each half-step solves, for every user (then every item), the ridge problem in closed form over
    the augmented vector [p_u, b_u] with features [q_i, 1] and target r_ui - mu - b_i. With
    ``weighted_regularization`` (ALS-WR, Zhou et al. 2008) the penalty of a user is
    ``regularization * n_u`` (``n_i`` for items), otherwise ``regularization``. Several models with
    different seeds can be averaged with ``n_models`` (a small ensemble that lowers variance).

    Parameters
    ----------
    factors : int
        Latent dimension.
    regularization : float
        L2 penalty on the factors.
    bias_regularization : float, optional
        L2 penalty on the biases (same scaling); defaults to ``regularization``.
    iterations : int
        ALS sweeps (one user and one item half-step each).
    weighted_regularization : bool
        Scale penalties by the number of ratings (ALS-WR).
    init_std : float
        Standard deviation of the random initial item factors.
    n_models : int
        Average this many models trained with seeds ``random_state + m``.
    random_state : int, optional
    block_size : int
        At most this many systems per batched ``numpy.linalg.solve`` call.
    verbose : bool
        Print the training RMSE after each sweep.
    """

    def __init__(
        self,
        factors: int = 100,
        regularization: float = 0.05,
        bias_regularization: float | None = None,
        iterations: int = 15,
        weighted_regularization: bool = True,
        init_std: float = 0.1,
        n_models: int = 1,
        random_state: int | None = 0,
        block_size: int = 512,
        verbose: bool = False,
    ):
        self.factors = factors
        self.regularization = regularization
        self.bias_regularization = bias_regularization
        self.iterations = iterations
        self.weighted_regularization = weighted_regularization
        self.init_std = init_std
        self.n_models = n_models
        self.random_state = random_state
        self.block_size = block_size
        self.verbose = verbose

    def fit(self, users, items, ratings, n_users=None, n_items=None) -> "BiasedMF":
        """Learn ``global_mean_``, ``user_bias_`` (n_models, n_users), ``item_bias_`` (n_models, n_items),
        ``user_factors_`` (n_models, n_users, factors) and ``item_factors_`` (n_models, n_items, factors).

        Parameters
        ----------
        users, items : array of int, shape (n,)
            Positions of the rated pairs; duplicates are treated as separate observations.
        ratings : array of float, shape (n,)
        n_users, n_items : int, optional
            Sizes (default: max position + 1).

        Returns
        -------
        self
        """
        u, i, r, n_users, n_items = self._validate(users, items, ratings, n_users, n_items)
        self.n_users_, self.n_items_ = n_users, n_items
        mu = float(r.mean())
        self.global_mean_ = mu
        # duplicates stay separate observations: group rating positions by user and by item
        order_u = np.argsort(u, kind="stable")
        order_i = np.argsort(i, kind="stable")
        ptr_u = np.r_[0, np.cumsum(np.bincount(u, minlength=n_users))]
        ptr_i = np.r_[0, np.cumsum(np.bincount(i, minlength=n_items))]
        k = int(self.factors)
        reg = float(self.regularization)
        breg = reg if self.bias_regularization is None else float(self.bias_regularization)
        n_models = max(1, int(self.n_models))
        seeds = [None if self.random_state is None else int(self.random_state) + m for m in range(n_models)]
        P_all, Q_all, BU_all, BI_all = [], [], [], []
        for seed in seeds:
            rng = np.random.default_rng(seed)
            _, bu, bi = _fit_biases(u, i, r, n_users, n_items, 15.0, 10.0, 10)
            P = np.zeros((n_users, k))
            Q = rng.normal(0.0, self.init_std, size=(n_items, k))
            for it in range(int(self.iterations)):
                # user step: features [q_i, 1], target r - mu - b_i
                P, bu = self._half_step(order_u, ptr_u, i, r - mu - bi[i], Q, reg, breg)
                # item step: features [p_u, 1], target r - mu - b_u
                Q, bi = self._half_step(order_i, ptr_i, u, r - mu - bu[u], P, reg, breg)
                if self.verbose:
                    pred = mu + bu[u] + bi[i] + np.einsum("ij,ij->i", P[u], Q[i])
                    print(f"BiasedMF seed={seed} sweep {it + 1}: train RMSE {rmse(r, pred):.4f}", flush=True)
            P_all.append(P)
            Q_all.append(Q)
            BU_all.append(bu)
            BI_all.append(bi)
        self.user_factors_ = np.stack(P_all).astype(np.float32)
        self.item_factors_ = np.stack(Q_all).astype(np.float32)
        self.user_bias_ = np.stack(BU_all)
        self.item_bias_ = np.stack(BI_all)
        return self

    def _half_step(self, order, ptr, other, target, F, reg, breg):
        """Solve every row's ridge problem over [x, b] given the other side's factors F.

        Rows are sorted by their number of ratings and solved in batches of similar counts: each
        batch gathers its ratings into a zero-padded (rows, max count, k + 1) array, so the normal
        equations of the whole batch come from one stacked matrix product and one batched
        ``numpy.linalg.solve``, with no Python loop over rows (padding adds zero terms only).
        The Gram products, most of the cost, run in float32 (each sums at most a few thousand
        terms: the ML-1M fold RMSE moved in the 9th digit) and the solves in float64. A batch
        holds at most ``block_size`` rows and about 8,192 padded ratings, so it stays in cache.
        """
        n_rows = ptr.size - 1
        k = F.shape[1]
        Fa = np.hstack([F, np.ones((F.shape[0], 1))]).astype(np.float32)
        X = np.zeros((n_rows, k + 1))
        counts = np.diff(ptr)
        other_sorted = other[order]
        target_sorted = target[order]
        diag_pattern = np.r_[np.full(k, reg), breg]
        idx = np.arange(k + 1)
        rows_all = np.flatnonzero(counts > 0)
        rows_all = rows_all[np.argsort(counts[rows_all], kind="stable")]
        sorted_counts = counts[rows_all]
        max_rows = max(1, int(self.block_size))
        budget = 8192  # padded ratings per batch: bounds the gathered array (cache-sized)
        start = 0
        while start < rows_all.size:
            stop = min(rows_all.size, start + max_rows)
            while stop - start > 1 and (stop - start) * sorted_counts[stop - 1] > budget:
                stop = start + max(1, min(stop - start - 1, budget // int(sorted_counts[stop - 1])))
            rows = rows_all[start:stop]
            start = stop
            width = int(counts[rows].max())
            offsets = np.arange(width)
            valid = offsets[None, :] < counts[rows][:, None]
            pos = np.where(valid, ptr[rows][:, None] + offsets[None, :], 0)
            G = Fa[other_sorted[pos]]
            G[~valid] = 0.0
            t = np.where(valid, target_sorted[pos], 0.0).astype(np.float32)
            Gt = G.transpose(0, 2, 1)
            A = (Gt @ G).astype(np.float64)
            b = (Gt @ t[:, :, None])[:, :, 0].astype(np.float64)
            scale = counts[rows].astype(np.float64) if self.weighted_regularization else np.ones(rows.size)
            A[:, idx, idx] += scale[:, None] * diag_pattern[None, :]
            X[rows] = np.linalg.solve(A, b[:, :, None])[:, :, 0]
        return X[:, :k], X[:, k]

    def predict(self, users, items) -> NDArray[np.float64]:
        """Predict stars for each (user, item) pair.

        Parameters
        ----------
        users, items : array of int, shape (n,)
            Positions; unknown ones use only the parts of the model that exist.

        Returns
        -------
        ndarray float64 of shape (n,), clipped to ``rating_range`` and averaged over ``n_models``.
        """
        u = np.asarray(users, dtype=np.int64).ravel()
        i = np.asarray(items, dtype=np.int64).ravel()
        out = np.zeros(u.size)
        n_models = self.user_factors_.shape[0]
        for m in range(n_models):
            pu = self._lookup(self.user_factors_[m], u)
            qi = self._lookup(self.item_factors_[m], i)
            out += self.global_mean_ + self._lookup(self.user_bias_[m], u) + self._lookup(self.item_bias_[m], i)
            out += np.einsum("ij,ij->i", pu, qi)
        return self._clip(out / n_models)

    def save(self, file) -> None:
        """Store the fitted model with ``np.savez`` (load with :meth:`load`, no pickle)."""
        np.savez(
            file,
            __class__=np.array(type(self).__name__),
            params=np.array(json.dumps(self.get_params())),
            global_mean_=np.array(self.global_mean_),
            user_bias_=self.user_bias_,
            item_bias_=self.item_bias_,
            user_factors_=self.user_factors_,
            item_factors_=self.item_factors_,
        )

    @classmethod
    def load(cls, file) -> "BiasedMF":
        """Inverse of :meth:`save`."""
        with np.load(file, allow_pickle=False) as data:
            model = cls(**json.loads(str(data["params"])))
            model.global_mean_ = float(data["global_mean_"])
            for name in ("user_bias_", "item_bias_", "user_factors_", "item_factors_"):
                setattr(model, name, data[name])
        model.n_users_ = model.user_bias_.shape[1]
        model.n_items_ = model.item_bias_.shape[1]
        return model


#: Registry of rating predictors by name.
RATING_MODELS: dict[str, type[RatingPredictorBase]] = {
    "globalmean": GlobalMean,
    "bias": BiasBaseline,
    "biasedmf": BiasedMF,
}
