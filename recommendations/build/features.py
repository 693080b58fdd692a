"""Provides ``ItemFeatureEncoder``: an item's text and its diversity key (an author) as one sparse feature row.

The cold-item model learns from these rows at a build, and an item saved later is encoded with
the vocabulary of that build, so the encoder is stored with the build and read back without pickles.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

KEY_WEIGHT = 0.5  # the share of a row's norm its key (author) carries, against its words


class ItemFeatureEncoder:
    """TF-IDF of item texts (sublinear, English stop words) next to one column per diversity key."""

    def __init__(self, max_features: int = 50_000):
        self.max_features = max_features

    def fit(self, texts: Sequence[str], keys: Sequence[Hashable | None]) -> ItemFeatureEncoder:
        vectorizer = TfidfVectorizer(sublinear_tf=True, stop_words="english", max_features=self.max_features)
        try:
            vectorizer.fit(texts)
            self.terms_ = np.asarray(vectorizer.get_feature_names_out(), dtype=str)
            self.idf_ = vectorizer.idf_.astype(np.float64)
        except ValueError:  # no text at all (every item is empty or stop words)
            self.terms_, self.idf_ = np.asarray([], dtype=str), np.asarray([], dtype=np.float64)
        self.keys_ = np.asarray(sorted({str(k) for k in keys if k is not None}), dtype=str)
        return self

    @property
    def n_features(self) -> int:
        return len(self.terms_) + len(self.keys_)

    def transform(self, texts: Sequence[str], keys: Sequence[Hashable | None]) -> sp.csr_matrix:
        """Return one L2-normalised row per item (zero for an item with neither known words nor a known key)."""
        if len(self.terms_):
            counts = CountVectorizer(vocabulary=self.terms_.tolist(), stop_words="english").transform(texts)
            counts = counts.astype(np.float64)
            counts.data = 1.0 + np.log(counts.data)
            words = normalize(counts @ sp.diags(self.idf_))
        else:
            words = sp.csr_matrix((len(texts), 0))
        columns = {key: i for i, key in enumerate(self.keys_.tolist())}
        found = [(row, columns[str(k)]) for row, k in enumerate(keys) if k is not None and str(k) in columns]
        rows, cols = (np.asarray(v, dtype=np.int64) for v in zip(*found)) if found else ([], [])
        key_part = sp.csr_matrix((np.full(len(found), KEY_WEIGHT), (rows, cols)), shape=(len(texts), len(columns)))
        return normalize(sp.hstack([words, key_part], format="csr")).astype(np.float32)

    def save(self, file: Any) -> None:
        np.savez(file, terms=self.terms_, idf=self.idf_, keys=self.keys_,
                 max_features=np.asarray(self.max_features))

    @classmethod
    def load(cls, file: Any) -> ItemFeatureEncoder:
        with np.load(file, allow_pickle=False) as data:
            encoder = cls(int(data["max_features"]))
            encoder.terms_, encoder.idf_, encoder.keys_ = data["terms"], data["idf"], data["keys"]
        return encoder
