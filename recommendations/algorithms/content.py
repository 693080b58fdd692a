"""Provides ContentSimilarity: TF-IDF over item text with sparse top-k cosine neighbours."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer

from .topk import blockwise_topk, topn_rows

__all__ = ["ContentSimilarity"]


class ContentSimilarity:
    """Item-item cosine similarity of TF-IDF text vectors, ``top_k`` neighbours per item.

    Parameters
    ----------
    top_k : int
        Neighbours kept per item.
    max_features : int or None
        Vocabulary size cap for ``TfidfVectorizer``.
    ngram_range : tuple (min_n, max_n)
    min_df : int or float
    stop_words : str or None
        Passed to ``TfidfVectorizer`` ("english" by default).
    n_threads : int
        Threads for the blockwise top-k (0: all cores).

    Attributes
    ----------
    similarity_ : csr_matrix float32, shape (n_items, n_items)
        Row ``i`` holds the ``top_k`` items most similar to ``i``; diagonal 0.
    n_items_ : int
    """

    def __init__(
        self,
        top_k: int = 50,
        max_features: int | None = 100_000,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int | float = 1,
        stop_words: str | None = "english",
        n_threads: int = 0,
    ) -> None:
        self.top_k = top_k
        self.max_features = max_features
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.stop_words = stop_words
        self.n_threads = n_threads

    def get_params(self) -> dict[str, Any]:
        """Return the hyperparameters as a dict."""
        return {
            "top_k": self.top_k,
            "max_features": self.max_features,
            "ngram_range": list(self.ngram_range),
            "min_df": self.min_df,
            "stop_words": self.stop_words,
            "n_threads": self.n_threads,
        }

    def fit(self, texts: Sequence[str]) -> ContentSimilarity:
        """Vectorise ``texts`` (one per item, in column order) and keep top-k neighbours.

        Parameters
        ----------
        texts : sequence of str, length n_items
            Empty or missing texts give items with no neighbours.
        """
        if int(self.top_k) < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        texts = ["" if text is None else str(text) for text in texts]
        self.n_items_ = len(texts)
        vectorizer = TfidfVectorizer(
            max_features=self.max_features,
            ngram_range=tuple(self.ngram_range),
            min_df=self.min_df,
            stop_words=self.stop_words,
            sublinear_tf=True,
            dtype=np.float32,
        )
        try:
            vectors = sp.csr_matrix(vectorizer.fit_transform(texts), dtype=np.float32)
        except ValueError:  # empty vocabulary: no text at all
            vectors = sp.csr_matrix((self.n_items_, 1), dtype=np.float32)
        vectors_t = sp.csr_matrix(vectors.T)

        def block_fn(start: int, end: int) -> sp.csr_matrix:
            block = sp.csr_matrix(vectors[start:end] @ vectors_t, dtype=np.float32)
            rows = np.repeat(np.arange(start, end), np.diff(block.indptr))
            block.data[block.indices == rows] = 0.0
            return block

        self.similarity_ = blockwise_topk(
            self.n_items_, self.n_items_, block_fn, int(self.top_k), self.n_threads, ties="partition"
        )
        return self

    def similar_items(self, item_index: int, n: int = 10) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The ``n`` items whose text is most similar to ``item_index``'s, best first."""
        row = self.similarity_[int(item_index)].toarray().ravel()
        row[row <= 0] = -np.inf
        row[int(item_index)] = -np.inf
        indices, values = topn_rows(row[None, :], int(n))
        keep = indices[0] >= 0
        return indices[0][keep], values[0][keep]

    def save(self, file: Any) -> None:
        """Save with ``np.savez`` (no pickles)."""
        S = self.similarity_
        np.savez(
            file,
            __class__=np.array(type(self).__name__),
            __params__=np.array(json.dumps(self.get_params())),
            data=S.data,
            indices=S.indices,
            indptr=S.indptr,
            shape=np.asarray(S.shape),
        )

    @classmethod
    def load(cls, file: Any) -> ContentSimilarity:
        """Load what :meth:`save` wrote (``allow_pickle=False``)."""
        with np.load(file, allow_pickle=False) as data:
            model = cls(**json.loads(str(data["__params__"])))
            shape = tuple(int(v) for v in data["shape"])
            model.similarity_ = sp.csr_matrix((data["data"], data["indices"], data["indptr"]), shape=shape)
        model.n_items_ = model.similarity_.shape[0]
        return model
