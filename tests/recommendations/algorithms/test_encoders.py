"""Content encoders: one interface, unit rows, new items in the same space, and a real sentence model."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.algorithms.encoders import (
    CategoricalEncoder,
    CombinedEncoder,
    GraphEncoder,
    ItemRecord,
    LsaEncoder,
    SentenceEncoder,
    TfidfEncoder,
    load_encoder,
    make_encoder,
)

RECORDS = [
    ItemRecord(key="1", text="stars and galaxies seen by a telescope", tags=["space", "science"], authors=["Sagan"]),
    ItemRecord(key="2", text="the telescope that found new galaxies", tags=["space"], authors=["Hubble"], links=["1"]),
    ItemRecord(key="3", text="bread and butter recipes for the kitchen", tags=["food"], authors=["Child"]),
    ItemRecord(key="4", text="kitchen recipes: soup and bread", tags=["food", "home"], authors=["Child"], links=["3"]),
]
NEW = [ItemRecord(key="9", text="a galaxy survey with a big telescope", tags=["space", "unseen-tag"],
                  authors=["Sagan"], links=["2"])]


def cosine(A: sp.csr_matrix, i: int, B: sp.csr_matrix, j: int) -> float:
    return float((A[i] @ B[j].T).toarray()[0, 0])


@pytest.mark.parametrize("encoder", [
    TfidfEncoder(), LsaEncoder(n_components=2), CategoricalEncoder("tags"), CategoricalEncoder("authors"),
    GraphEncoder(), CombinedEncoder([(TfidfEncoder(), 1.0), (CategoricalEncoder("tags"), 0.5)]),
], ids=["tfidf", "lsa", "tags", "authors", "graph", "combined"])
def test_every_encoder_maps_new_items_next_to_their_kind(encoder):
    F = encoder.fit_transform(RECORDS)
    G = encoder.transform(NEW)
    assert sp.isspmatrix_csr(F) and F.dtype == np.float32 and F.shape[0] == 4
    assert G.shape == (1, F.shape[1])
    # the new astronomy item is closer to an astronomy item than to a cooking one
    assert max(cosine(G, 0, F, 0), cosine(G, 0, F, 1)) > max(cosine(G, 0, F, 2), cosine(G, 0, F, 3))


@pytest.mark.parametrize("encoder", [TfidfEncoder(), LsaEncoder(n_components=2), CategoricalEncoder("tags")],
                         ids=["tfidf", "lsa", "tags"])
def test_rows_are_unit_length(encoder):
    F = encoder.fit_transform(RECORDS)
    np.testing.assert_allclose(sp.linalg.norm(F, axis=1), 1.0, rtol=1e-5)


def test_items_without_content_get_empty_rows_not_errors():
    empty = [ItemRecord(key="1"), ItemRecord(key="2")]
    assert TfidfEncoder().fit_transform(empty).nnz == 0
    assert CategoricalEncoder("tags").fit_transform(empty).nnz == 0


def test_graph_puts_an_item_beside_the_items_it_links():
    F = GraphEncoder().fit_transform(RECORDS)
    G = GraphEncoder().fit(RECORDS).transform(NEW)
    assert cosine(G, 0, F, 1) > 0 and cosine(G, 0, F, 2) == 0


def test_combined_weights_its_blocks():
    def similarity_of_same_author_items(weight: float) -> float:
        F = CombinedEncoder([(TfidfEncoder(), 1.0), (CategoricalEncoder("authors"), weight)]).fit_transform(RECORDS)
        return cosine(F, 2, F, 3) / (1.0 + weight**2)

    # items 3 and 4 share an author and some words: the author block's weight moves their similarity
    assert similarity_of_same_author_items(3.0) > similarity_of_same_author_items(0.1)


def test_make_encoder_specs():
    assert isinstance(make_encoder(None), TfidfEncoder)
    assert isinstance(make_encoder("tags"), CategoricalEncoder)
    combined = make_encoder("tfidf:1,tags:0.5,authors:0.5")
    assert isinstance(combined, CombinedEncoder) and [w for _, w in combined.blocks] == [1.0, 0.5, 0.5]
    lsa = make_encoder({"lsa": {"weight": 1.0, "n_components": 3}})
    assert isinstance(lsa, LsaEncoder) and lsa.n_components == 3
    with pytest.raises(ValueError, match="unknown encoder 'words'"):
        make_encoder("words")
    with pytest.raises(ValueError, match="weight"):
        make_encoder("tfidf:-1")
    with pytest.raises(ValueError, match="not a number"):
        make_encoder("tfidf:x")


def test_sentence_encoder_needs_a_model():
    pytest.importorskip("sentence_transformers")
    with pytest.raises(ValueError, match="model name or a local path"):
        SentenceEncoder().fit(RECORDS)


def tiny_sentence_model(path) -> str:
    """A real (tiny, untrained) BERT sentence model saved to ``path``: the loading code runs for real."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    st_models = pytest.importorskip("sentence_transformers.models")
    from sentence_transformers import SentenceTransformer

    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordPiece(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
    trainer = tokenizers.trainers.WordPieceTrainer(vocab_size=200, special_tokens=[
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tokenizer.train_from_iterator([r.text for r in RECORDS + NEW], trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                                cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    config = transformers.BertConfig(vocab_size=fast.vocab_size, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    bert_dir = path / "bert"
    transformers.BertModel(config).save_pretrained(bert_dir)
    fast.save_pretrained(bert_dir)
    word = st_models.Transformer(str(bert_dir), max_seq_length=32)
    pooling = st_models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    model_dir = path / "sentence-model"
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(model_dir))
    return str(model_dir)


def test_sentence_encoder_loads_a_saved_model_from_a_local_path(tmp_path):
    model = tiny_sentence_model(tmp_path)
    encoder = make_encoder({"sentence": {"model": model}})
    F = encoder.fit_transform(RECORDS)
    assert F.shape == (4, 16) and F.dtype == np.float32
    np.testing.assert_allclose(sp.linalg.norm(F, axis=1), 1.0, rtol=1e-4)
    # the same text gives the same vector (the model really ran, deterministically)
    again = encoder.transform([RECORDS[2]])
    np.testing.assert_allclose(again.toarray(), F[2].toarray(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(F[0].toarray(), F[2].toarray())


@pytest.mark.parametrize("encoder", [
    TfidfEncoder(ngram_range=(1, 1)), LsaEncoder(n_components=2), CategoricalEncoder("tags"),
    CategoricalEncoder("authors", idf=False), GraphEncoder(),
    CombinedEncoder([(TfidfEncoder(), 1.0), (CategoricalEncoder("tags"), 0.5), (GraphEncoder(), 0.25)]),
    TfidfEncoder().fit([ItemRecord(key="1", text="the and of")]),
], ids=["tfidf", "lsa", "tags", "authors-no-idf", "graph", "combined", "no-words"])
def test_a_saved_encoder_reads_back_and_encodes_new_items_the_same(encoder, tmp_path):
    if not hasattr(encoder, "empty_"):
        encoder.fit(RECORDS)
    path = tmp_path / "encoder.npz"
    encoder.save(path)
    loaded = load_encoder(path)
    assert type(loaded) is type(encoder)
    with np.load(path, allow_pickle=False) as saved:  # plain arrays: no pickle needed to read it
        assert "kind" in saved.files
    for records in (RECORDS, NEW):
        expected, got = encoder.transform(records), loaded.transform(records)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got.toarray(), expected.toarray(), rtol=1e-5, atol=1e-6)


def test_load_encoder_refuses_a_file_that_is_not_an_encoder(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, terms=np.asarray(["a"]))
    with pytest.raises(ValueError, match="not a saved encoder"):
        load_encoder(path)
