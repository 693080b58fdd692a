"""The models of the cold-item benchmark behind one shape: ``fit(X, F, records)`` then ``scores(users, items)``.

``X`` is users x items with the held-out items' columns empty, ``F`` the encoder's item features (all items),
``scores`` gives the training users ``users`` a score for each of ``items`` (n x m, higher is better).
LightFM and Cornac are optional: a model whose package is missing reports it and is skipped.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from threadpoolctl import threadpool_limits

from recommendations.algorithms.cold import ColdStartHybrid

try:
    from lightfm import LightFM
except ImportError:  # optional baseline
    LightFM = None
try:
    from cornac.models.ctr.ctr import Model as CornacCTR
except ImportError:  # optional baseline
    CornacCTR = None


class Ours:
    """ColdStartHybrid: scores of the candidates through ``map_items`` (cold) blended by ``warmth``."""

    label = "ours (cold_hybrid)"

    def __init__(self, **params):
        self.params = params

    def fit(self, X, F, records):
        self.model = ColdStartHybrid(**self.params).fit(X, F)
        self.F = F
        return self

    def scores(self, users, items, history):
        return self.model.score(history[users], users=users)[:, items]


class IALSOnly(Ours):
    """ColdStartHybrid fitted without features: iALS, whose cold items score 0 (the floor of the mixed table)."""

    label = "iALS alone (no content)"


def _topk_similarity(F_rows, F_cols, k: int, block: int = 1024) -> sp.csr_matrix:
    """Cosine (features have unit rows) of each row item to its ``k`` most similar column items."""
    parts = []
    for start in range(0, F_rows.shape[0], block):
        S = (F_rows[start:start + block] @ F_cols.T).toarray() if sp.issparse(F_rows) else F_rows[start:start + block] @ F_cols.T
        if S.shape[1] > k:
            drop = np.argpartition(-S, k, axis=1)[:, k:]
            np.put_along_axis(S, drop, 0.0, axis=1)
        parts.append(sp.csr_matrix(np.maximum(S, 0), dtype=np.float32))
    return sp.vstack(parts, format="csr")


class ContentKNN:
    """Content-only kNN: ``score(u, j) = sum of sim(j, i)`` over the user's items ``i`` among j's k nearest."""

    label = "content kNN (user history)"

    def __init__(self, k: int = 100):
        self.k = k

    def fit(self, X, F, records):
        self.F = sp.csr_matrix(F)
        self.warm = np.flatnonzero(np.diff(X.tocsc().indptr) > 0)
        return self

    def scores(self, users, items, history):
        S = _topk_similarity(self.F[items], self.F[self.warm], self.k)  # m x warm
        return np.asarray((history[users][:, self.warm] @ S.T).toarray(), dtype=np.float32)


class ContentPopularity:
    """Popularity among content-similar items: the similarity-weighted popularity of j's k nearest warm items."""

    label = "popularity of content neighbours"

    def __init__(self, k: int = 50):
        self.k = k

    def fit(self, X, F, records):
        self.F = sp.csr_matrix(F)
        counts = np.diff(X.tocsc().indptr).astype(np.float32)
        self.warm = np.flatnonzero(counts > 0)
        self.popularity = counts[self.warm]
        return self

    def scores(self, users, items, history):
        S = _topk_similarity(self.F[items], self.F[self.warm], self.k)
        predicted = np.asarray(S @ self.popularity).ravel() / np.maximum(np.asarray(S.sum(axis=1)).ravel(), 1e-9)
        return np.tile(predicted.astype(np.float32), (len(users), 1))


class LightFMModel:
    """LightFM (WARP) with item features: content only, or per-item identity plus content."""

    def __init__(self, identity: bool = False, no_components: int = 64, epochs: int = 30,
                 learning_rate: float = 0.05, item_alpha: float = 1e-6, seed: int = 0):
        self.identity, self.no_components, self.epochs = identity, no_components, epochs
        self.learning_rate, self.item_alpha, self.seed = learning_rate, item_alpha, seed
        self.label = "LightFM WARP, identity + content" if identity else "LightFM WARP, content only"

    def fit(self, X, F, records):
        if LightFM is None:
            raise RuntimeError("lightfm is not installed")
        F = sp.csr_matrix(F, dtype=np.float32)
        if self.identity:
            F = sp.hstack([sp.identity(F.shape[0], dtype=np.float32, format="csr"), F], format="csr")
        self.features = F
        self.model = LightFM(no_components=self.no_components, loss="warp", learning_rate=self.learning_rate,
                             item_alpha=self.item_alpha, random_state=self.seed)
        self.model.fit(sp.coo_matrix(X), item_features=F, epochs=self.epochs, num_threads=2)
        return self

    def scores(self, users, items, history):
        bias, embedding = self.model.get_item_representations(self.features[items])
        user_bias, user_embedding = self.model.get_user_representations()
        return (user_embedding[users] @ embedding.T + bias[None, :]).astype(np.float32)


def _bag_of_words(records) -> sp.csr_matrix:
    """Counts of text words, tags, authors and links: the document CTR's topic model reads."""
    docs = [record.text.split() + [f"tag:{t}" for t in record.tags] + [f"author:{a}" for a in record.authors]
            + [f"link:{x}" for x in record.links] for record in records]
    vectorizer = CountVectorizer(analyzer=lambda tokens: tokens, min_df=2, max_features=20_000)
    return sp.csr_matrix(vectorizer.fit_transform(docs))


class CTRModel:
    """Collaborative topic regression (Wang & Blei 2011), Cornac's implementation; cold items score ``u . theta_j``."""

    label = "CTR (Cornac)"

    def __init__(self, k: int = 50, lambda_u: float = 0.01, lambda_v: float = 100.0, a: float = 1.0,
                 b: float = 0.01, max_iter: int = 10, seed: int = 0):
        self.k, self.lambda_u, self.lambda_v, self.a, self.b = k, lambda_u, lambda_v, a, b
        self.max_iter, self.seed = max_iter, seed

    def fit(self, X, F, records):
        if CornacCTR is None:
            raise RuntimeError("cornac is not installed")
        bow = _bag_of_words(records)
        rng = np.random.default_rng(self.seed)
        n_users, n_items = X.shape
        U = rng.uniform(-0.1, 0.1, (n_users, self.k))
        V = rng.uniform(-0.1, 0.1, (n_items, self.k))
        self.model = CornacCTR(U=U, V=V, n_user=n_users, n_item=n_items, n_vocab=bow.shape[1], k=self.k,
                               lambda_u=self.lambda_u, lambda_v=self.lambda_v, a=self.a, b=self.b,
                               max_iter=self.max_iter, seed=self.seed)
        user_data = _rows(sp.csr_matrix(X))
        item_data = _rows(sp.csr_matrix(X.T))
        doc_ids, doc_cnt = _rows(bow)
        with threadpool_limits(1, "blas"):
            for _ in range(self.max_iter):
                self.model.update_cf(user_data=user_data, item_data=item_data)
                self.model.update_theta(doc_ids=doc_ids, doc_cnt=doc_cnt)
                self.model.update_beta()
        self.warm = np.diff(sp.csr_matrix(X.T).indptr) > 0
        return self

    def scores(self, users, items, history):
        # Out-of-matrix prediction of the paper: a cold item's vector is its topic proportions.
        vectors = np.where(self.warm[items, None], self.model.V[items], self.model.theta[items])
        return (self.model.U[users] @ vectors.T).astype(np.float32)


def _rows(M: sp.csr_matrix):
    M = sp.csr_matrix(M)
    return ([M.indices[M.indptr[i]:M.indptr[i + 1]] for i in range(M.shape[0])],
            [M.data[M.indptr[i]:M.indptr[i + 1]] for i in range(M.shape[0])])


MODELS = {
    "ours": Ours,
    "ials": IALSOnly,
    "lightfm": lambda **p: LightFMModel(identity=False, **p),
    "lightfm_id": lambda **p: LightFMModel(identity=True, **p),
    "ctr": CTRModel,
    "content_knn": ContentKNN,
    "content_pop": ContentPopularity,
}
