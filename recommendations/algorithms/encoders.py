"""Provides content encoders: item records (text, tags, authors, links) -> sparse item x feature rows.

Every encoder has the same small interface, ``fit(records)`` then ``transform(records)`` (or
``fit_transform``), and returns a ``csr_matrix`` float32 with L2-normalised rows, so blocks of
different encoders are comparable and ``CombinedEncoder`` can weigh them. ``transform`` works on
items never seen in ``fit`` (new items reach the same feature space). A fitted encoder is saved
with ``save(file)`` (``np.savez``, no pickles) and read back with :func:`load_encoder`, so a build
can encode an item saved after it with the build's vocabulary.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.preprocessing import normalize

__all__ = [
    "ENCODERS",
    "ItemRecord",
    "TfidfEncoder",
    "LsaEncoder",
    "CategoricalEncoder",
    "GraphEncoder",
    "SentenceEncoder",
    "CombinedEncoder",
    "make_encoder",
    "load_encoder",
]


@dataclass
class ItemRecord:
    """What an encoder may read of one item.

    Attributes
    ----------
    key : str
        The item's id (the graph encoder uses it to put an item beside its own neighbours).
    text : str
    tags, authors : list of str
    links : list of str
        Keys of neighbouring items (citations, "see also"); only the graph encoder reads them.
    """

    key: str = ""
    text: str = ""
    tags: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


def _labels(values: Sequence[str]) -> list[str]:
    """The analyzer of categorical features: each label is one feature, as given."""
    return [str(value) for value in values]


def _rows(matrix: Any) -> sp.csr_matrix:
    """Canonical output: csr float32 with unit L2 rows (empty rows stay empty)."""
    return sp.csr_matrix(normalize(sp.csr_matrix(matrix, dtype=np.float32)), dtype=np.float32)


class _Encoder:
    """What every encoder shares: ``fit_transform``, and ``save`` / ``load`` of its fitted state as plain arrays."""

    kind: ClassVar[str] = ""

    def fit(self, records: Sequence[ItemRecord]) -> Any:
        raise NotImplementedError(".fit() must be overridden")

    def transform(self, records: Sequence[ItemRecord]) -> sp.csr_matrix:
        raise NotImplementedError(".transform() must be overridden")

    def fit_transform(self, records: Sequence[ItemRecord]) -> sp.csr_matrix:
        return self.fit(records).transform(records)

    def _params(self) -> dict[str, Any]:
        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        return {name: getattr(self, name) for name in names}

    def _state(self) -> dict[str, Any]:
        """The fitted state as arrays (keys without a prefix)."""
        raise NotImplementedError("._state() must be overridden")

    def _restore(self, arrays: Mapping[str, Any], prefix: str) -> None:
        """Set the fitted state from ``arrays[prefix + key]``."""
        raise NotImplementedError("._restore() must be overridden")

    def _arrays(self, prefix: str = "") -> dict[str, Any]:
        out = {prefix + "kind": np.asarray(self.kind), prefix + "params": np.asarray(json.dumps(self._params()))}
        out.update({prefix + key: value for key, value in self._state().items()})
        return out

    def save(self, file: Any) -> None:
        """Write the fitted encoder to ``file`` (a path or a binary file object) with ``np.savez``."""
        np.savez(file, **self._arrays())

    @classmethod
    def load(cls, file: Any) -> Any:
        """Read an encoder written by ``save`` (see :func:`load_encoder`)."""
        return load_encoder(file)


class TfidfEncoder(_Encoder):
    """TF-IDF of ``record.text`` (sublinear tf, English stop words, uni- and bigrams).

    Parameters
    ----------
    max_features : int or None
    ngram_range : tuple (min_n, max_n)
    min_df : int or float
    max_df : float
    stop_words : str or None
    """

    def __init__(self, max_features: int | None = 100_000, ngram_range: tuple[int, int] = (1, 2),
                 min_df: int | float = 1, max_df: float = 1.0, stop_words: str | None = "english") -> None:
        self.max_features = max_features
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.stop_words = stop_words

    kind = "tfidf"

    def _vectorizer(self, vocabulary: list[str] | None = None) -> TfidfVectorizer:
        return TfidfVectorizer(
            max_features=self.max_features, ngram_range=tuple(self.ngram_range), min_df=self.min_df,
            max_df=self.max_df, stop_words=self.stop_words, sublinear_tf=True, dtype=np.float32,
            vocabulary=vocabulary,
        )

    def fit(self, records: Sequence[ItemRecord]) -> TfidfEncoder:
        self.vectorizer_ = self._vectorizer()
        texts = [record.text or "" for record in records]
        try:
            self.vectorizer_.fit(texts)
            self.empty_ = False
        except ValueError:  # no word at all: every item gets an empty row
            self.empty_ = True
        return self

    def transform(self, records: Sequence[ItemRecord]) -> sp.csr_matrix:
        if self.empty_:
            return sp.csr_matrix((len(records), 1), dtype=np.float32)
        return _rows(self.vectorizer_.transform([record.text or "" for record in records]))

    def _state(self) -> dict[str, Any]:
        if self.empty_:
            return {"empty": np.asarray(True)}
        return {"empty": np.asarray(False), "terms": np.asarray(self.vectorizer_.get_feature_names_out(), dtype=str),
                "idf": self.vectorizer_.idf_.astype(np.float64)}

    def _restore(self, arrays: Mapping[str, Any], prefix: str) -> None:
        self.empty_ = bool(arrays[prefix + "empty"])
        if not self.empty_:
            self.vectorizer_ = self._vectorizer(arrays[prefix + "terms"].tolist())
            self.vectorizer_.idf_ = arrays[prefix + "idf"]


class LsaEncoder(_Encoder):
    """Latent semantic analysis: TruncatedSVD over the TF-IDF of the text, rows L2-normalised.

    Parameters
    ----------
    n_components : int
        Dimensions kept (capped below the vocabulary and item counts).
    tfidf_params : dict or None
        :class:`TfidfEncoder` parameters.
    random_state : int
    """

    def __init__(self, n_components: int = 200, tfidf_params: dict[str, Any] | None = None,
                 random_state: int = 0) -> None:
        self.n_components = n_components
        self.tfidf_params = tfidf_params
        self.random_state = random_state

    def fit(self, records: Sequence[ItemRecord]) -> LsaEncoder:
        self.tfidf_ = TfidfEncoder(**(self.tfidf_params or {})).fit(records)
        X = self.tfidf_.transform(records)
        k = max(1, min(int(self.n_components), X.shape[1] - 1, X.shape[0] - 1))
        self.svd_ = TruncatedSVD(n_components=k, random_state=self.random_state).fit(X) if k >= 1 and X.nnz else None
        return self

    def transform(self, records: Sequence[ItemRecord]) -> sp.csr_matrix:
        X = self.tfidf_.transform(records)
        if self.svd_ is None:
            return sp.csr_matrix((len(records), 1), dtype=np.float32)
        return _rows(self.svd_.transform(X))

    kind = "lsa"

    def _state(self) -> dict[str, Any]:
        state = {"tfidf/" + key: value for key, value in self.tfidf_._arrays().items()}
        if self.svd_ is not None:
            state["components"] = self.svd_.components_
        return state

    def _restore(self, arrays: Mapping[str, Any], prefix: str) -> None:
        self.tfidf_ = _restore(arrays, prefix + "tfidf/")
        self.svd_ = None
        if prefix + "components" in arrays:
            components = arrays[prefix + "components"]
            self.svd_ = TruncatedSVD(n_components=components.shape[0], random_state=self.random_state)
            self.svd_.components_, self.svd_.n_features_in_ = components, components.shape[1]


class CategoricalEncoder(_Encoder):
    """Multi-hot labels of one record field (``tags``, ``authors`` or ``links``), IDF-weighted.

    Labels seen in fewer than ``min_count`` items are dropped; labels unseen at fit time are
    ignored by ``transform``.

    Parameters
    ----------
    field : str
    min_count : int
    idf : bool
        Weight rare labels up (a tag shared by half the catalogue says little).
    """

    kind = "categorical"

    def __init__(self, field: str = "tags", min_count: int = 1, idf: bool = True) -> None:
        self.field = field
        self.min_count = min_count
        self.idf = idf

    def _values(self, records: Sequence[ItemRecord]) -> list[list[str]]:
        return [list(getattr(record, self.field) or []) for record in records]

    def fit(self, records: Sequence[ItemRecord]) -> CategoricalEncoder:
        self.vectorizer_ = CountVectorizer(analyzer=_labels, binary=True, min_df=int(self.min_count),
                                           dtype=np.float32)
        values = self._values(records)
        try:
            counts = self.vectorizer_.fit_transform(values)
            self.empty_ = False
        except ValueError:  # no label at all
            self.empty_ = True
            return self
        self.idf_ = TfidfTransformer(sublinear_tf=False).fit(counts) if self.idf else None
        return self

    def transform(self, records: Sequence[ItemRecord]) -> sp.csr_matrix:
        if self.empty_:
            return sp.csr_matrix((len(records), 1), dtype=np.float32)
        counts = self.vectorizer_.transform(self._values(records))
        return _rows(self.idf_.transform(counts) if self.idf_ is not None else counts)

    def _state(self) -> dict[str, Any]:
        if self.empty_:
            return {"empty": np.asarray(True)}
        state = {"empty": np.asarray(False), "labels": np.asarray(self.vectorizer_.get_feature_names_out(), dtype=str)}
        if self.idf_ is not None:
            state["idf"] = self.idf_.idf_.astype(np.float64)
        return state

    def _restore(self, arrays: Mapping[str, Any], prefix: str) -> None:
        self.empty_ = bool(arrays[prefix + "empty"])
        if self.empty_:
            return
        self.vectorizer_ = CountVectorizer(analyzer=_labels, binary=True, dtype=np.float32,
                                           vocabulary=arrays[prefix + "labels"].tolist())
        self.idf_ = None
        if prefix + "idf" in arrays:
            self.idf_ = TfidfTransformer(sublinear_tf=False)
            self.idf_.idf_ = arrays[prefix + "idf"]


class GraphEncoder(CategoricalEncoder):
    """Citation-graph rows: an item's features are its neighbours (and itself), IDF-weighted.

    Two items citing, or cited by, the same papers share features; an item's own key is a
    feature too, so a new item citing an old one lands next to it.
    """

    kind = "graph"

    def __init__(self, min_count: int = 1, idf: bool = True, include_self: bool = True) -> None:
        super().__init__(field="links", min_count=min_count, idf=idf)
        self.include_self = include_self

    def _values(self, records: Sequence[ItemRecord]) -> list[list[str]]:
        own = [[record.key] if self.include_self and record.key else [] for record in records]
        return [mine + [str(link) for link in record.links or []] for mine, record in zip(own, records)]


class SentenceEncoder(_Encoder):
    """Sentence embeddings of ``record.text`` by a sentence-transformers model, rows L2-normalised.

    Parameters
    ----------
    model : str
        A local directory written by ``SentenceTransformer.save`` (or a hub name where the
        machine may download; this one cannot).
    batch_size : int
    device : str
    """

    def __init__(self, model: str = "", batch_size: int = 32, device: str = "cpu") -> None:
        self.model = model
        self.batch_size = batch_size
        self.device = device

    def fit(self, records: Sequence[ItemRecord]) -> SentenceEncoder:
        try:  # imported here, as IALS imports implicit: torch costs seconds and most builds never need it
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ValueError("sentence embeddings need the packages torch and sentence-transformers") from None
        if not self.model:
            raise ValueError("sentence embeddings need a model name or a local path")
        self.model_ = SentenceTransformer(str(self.model), device=self.device)
        return self

    def transform(self, records: Sequence[ItemRecord]) -> sp.csr_matrix:
        texts = [record.text or "" for record in records]
        vectors = self.model_.encode(texts, batch_size=int(self.batch_size), show_progress_bar=False,
                                     convert_to_numpy=True)
        return _rows(np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1))

    kind = "sentence"

    def _state(self) -> dict[str, Any]:
        return {}  # the model is read again from ``model``: weights are not copied into a build

    def _restore(self, arrays: Mapping[str, Any], prefix: str) -> None:
        self.fit([])


class CombinedEncoder(_Encoder):
    """Weighted blocks side by side: ``hstack(w_1 * E_1(records), ..., w_k * E_k(records))``.

    Each block has unit rows, so a weight is the share of that block in a dot product.

    Parameters
    ----------
    blocks : sequence of (encoder, weight)
    """

    def __init__(self, blocks: Sequence[tuple[Any, float]] = ()) -> None:
        self.blocks = list(blocks)

    def fit(self, records: Sequence[ItemRecord]) -> CombinedEncoder:
        for encoder, _ in self.blocks:
            encoder.fit(records)
        return self

    def transform(self, records: Sequence[ItemRecord]) -> sp.csr_matrix:
        parts = [np.float32(weight) * encoder.transform(records) for encoder, weight in self.blocks]
        return sp.csr_matrix(sp.hstack(parts, format="csr"), dtype=np.float32)

    kind = "combined"

    def _params(self) -> dict[str, Any]:
        return {}

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"weights": np.asarray([w for _, w in self.blocks], dtype=np.float64)}
        for i, (encoder, _) in enumerate(self.blocks):
            state.update(encoder._arrays(f"{i}/"))
        return state

    def _restore(self, arrays: Mapping[str, Any], prefix: str) -> None:
        weights = arrays[prefix + "weights"].tolist()
        self.blocks = [(_restore(arrays, f"{prefix}{i}/"), float(w)) for i, w in enumerate(weights)]


#: Encoder name -> factory (its keyword parameters).
ENCODERS: dict[str, Any] = {
    "tfidf": TfidfEncoder,
    "lsa": LsaEncoder,
    "tags": lambda **params: CategoricalEncoder(field="tags", **params),
    "authors": lambda **params: CategoricalEncoder(field="authors", **params),
    "graph": GraphEncoder,
    "sentence": SentenceEncoder,
}


def make_encoder(spec: str | Mapping[str, Any] | None = None) -> Any:
    """Build an encoder from a spec: a name, ``"tfidf:1,tags:0.5"``, or ``{name: weight | {"weight", ...params}}``.

    ``None`` gives the default, TF-IDF. One block with weight 1 is returned as that encoder,
    anything else as a :class:`CombinedEncoder`.

    Raises
    ------
    ValueError
        For an unknown encoder name or a weight that is not a positive number.
    """
    if spec is None or spec == "":
        return TfidfEncoder()
    if isinstance(spec, str):
        spec = _parse_spec(spec)
    blocks = []
    for name, value in spec.items():
        if name not in ENCODERS:
            raise ValueError(f"unknown encoder {name!r}; valid: {', '.join(ENCODERS)}")
        params = dict(value) if isinstance(value, Mapping) else {"weight": value}
        weight = params.pop("weight", 1.0)
        if not isinstance(weight, (int, float)) or not weight > 0:
            raise ValueError(f"encoder {name!r}: weight must be a positive number, got {weight!r}")
        blocks.append((ENCODERS[name](**params), float(weight)))
    if len(blocks) == 1 and blocks[0][1] == 1.0:
        return blocks[0][0]
    return CombinedEncoder(blocks)


def _parse_spec(text: str) -> dict[str, Any]:
    """``"tfidf:1,tags:0.5"`` -> ``{"tfidf": 1.0, "tags": 0.5}`` (a name without a weight weighs 1)."""
    spec: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition(":")
        try:
            spec[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"encoder {name.strip()!r}: weight {weight!r} is not a number") from None
    return spec


#: ``kind`` written by ``save`` -> encoder class.
_KINDS: dict[str, Any] = {cls.kind: cls for cls in (TfidfEncoder, LsaEncoder, CategoricalEncoder, GraphEncoder,
                                                    SentenceEncoder, CombinedEncoder)}


def _restore(arrays: Mapping[str, Any], prefix: str) -> Any:
    kind = str(arrays[prefix + "kind"])
    if kind not in _KINDS:
        raise ValueError(f"unknown encoder kind {kind!r} in a saved encoder")
    encoder = _KINDS[kind](**json.loads(str(arrays[prefix + "params"])))
    encoder._restore(arrays, prefix)
    return encoder


def load_encoder(file: Any) -> Any:
    """Read a fitted encoder written by its ``save(file)`` (``allow_pickle=False``).

    Raises
    ------
    ValueError
        When ``file`` holds no saved encoder.
    """
    with np.load(file, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    if "kind" not in arrays:
        raise ValueError("not a saved encoder (no 'kind' entry)")
    return _restore(arrays, "")
