"""The packaged ONNX embedder and its Chroma and LangChain faces."""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import replace
from pathlib import Path

import chromadb
import numpy as np
import pytest

from retrieval.embeddings import (
    MODELS,
    ChromaEmbeddingFunction,
    ModelSpec,
    OnnxEmbedder,
    get_embedder,
)
from retrieval.errors import ConfigError, EmbedderError
from retrieval.langchain_embeddings import LangChainEmbeddings

DOCS = {
    "checkpoints": "PD-1 and CTLA-4 immune checkpoint inhibitors reactivate T cells against tumours.",
    "stroma": "Cancer-associated fibroblasts remodel the extracellular matrix of the tumour stroma.",
    "baking": "Knead the dough for ten minutes, then let the bread rise in a warm place.",
    "football": "The striker scored twice in the second half and the team won the cup.",
}


def _installed(spec: ModelSpec) -> bool:
    try:
        importlib.metadata.distribution(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    return get_embedder("minilm-l6-int8")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.skipif(not _installed(spec), reason=f"{spec.distribution} absent"))
        for name, spec in MODELS.items()
    ],
)
def test_embedder_paraphrase_is_closer_than_unrelated_sentence(name: str) -> None:
    vectors = get_embedder(name).embed(
        ["A cat is sitting on the mat.", "A kitten sits on a rug.", "Interest rates rose again this quarter."]
    )
    assert vectors.shape == (3, MODELS[name].dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3


def test_embedder_batches_keep_order_and_match_single_texts(embedder: OnnxEmbedder) -> None:
    texts = [
        "short",
        "A much longer sentence about immune checkpoints, stromal cells and the tumour microenvironment. " * 4,
        "medium length text about bread",
        "x",
        "Another sentence of moderate length about football matches and cups.",
    ]
    batched = OnnxEmbedder(embedder.spec, batch_size=2).embed(texts)
    one_by_one = np.vstack([embedder.embed([t]) for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4)


def test_embedder_truncates_long_text_instead_of_failing(embedder: OnnxEmbedder) -> None:
    long_text = "tumour " * 5000
    assert embedder.embed([long_text]).shape == (1, embedder.dim)


def test_embedder_empty_input_gives_empty_matrix(embedder: OnnxEmbedder) -> None:
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_get_embedder_shares_one_instance_and_rejects_unknown_names() -> None:
    assert get_embedder("minilm-l6-int8") is get_embedder("minilm-l6-int8", batch_size=32)
    with pytest.raises(ConfigError, match="minilm-l6-int8"):
        get_embedder("no-such-model")


def test_chroma_function_finds_the_right_document(embedder: OnnxEmbedder) -> None:
    client = chromadb.EphemeralClient()
    function = ChromaEmbeddingFunction(embedder)
    assert not function.is_legacy()
    collection = client.create_collection("test_chroma_face", embedding_function=function)
    collection.add(ids=list(DOCS), documents=list(DOCS.values()))
    found = collection.query(query_texts=["Which drugs block PD-1?"], n_results=1)
    assert found["ids"] == [["checkpoints"]]
    assert collection.configuration["hnsw"]["space"] == "cosine"
    # Reopened without passing a function, Chroma rebuilds ours from the stored config, not its default.
    reopened = client.get_collection("test_chroma_face")
    assert reopened.query(query_texts=["fibroblasts in the stroma"], n_results=1)["ids"] == [["stroma"]]
    assert reopened.configuration["embedding_function"].name() == "citebot-onnx"


def test_langchain_embeddings_match_the_embedder(embedder: OnnxEmbedder) -> None:
    faces = LangChainEmbeddings(embedder)
    documents = faces.embed_documents(list(DOCS.values()))
    query = faces.embed_query("How do you make bread?")
    assert len(documents) == len(DOCS) and len(query) == embedder.dim
    best = int(np.argmax(np.array(documents) @ np.array(query)))
    assert list(DOCS)[best] == "baking"


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real installed distribution 'citebot-fake-model' carrying a tiny model file; returns that file."""
    info = tmp_path / "citebot_fake_model-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: citebot-fake-model\nVersion: 1.0\n")
    model = tmp_path / "citebot_fake_model" / "model.onnx"
    model.parent.mkdir()
    model.write_bytes(b"original model bytes")
    monkeypatch.syspath_prepend(str(tmp_path))
    return model


def _fake_spec(model: Path) -> ModelSpec:
    return replace(
        MODELS["minilm-l6-int8"],
        name="fake",
        distribution="citebot-fake-model",
        model_file="citebot_fake_model/model.onnx",
        sha256=hashlib.sha256(model.read_bytes()).hexdigest(),
        install_hint="pip install citebot-fake-model",
    )


def test_embedder_refuses_a_tampered_model_file(fake_distribution: Path) -> None:
    spec = _fake_spec(fake_distribution)
    fake_distribution.write_bytes(b"tampered model bytes")
    with pytest.raises(EmbedderError, match="SHA-256.*pip install citebot-fake-model"):
        OnnxEmbedder(spec).embed(["hello"])


def test_embedder_says_how_to_install_a_missing_model(fake_distribution: Path) -> None:
    spec = _fake_spec(fake_distribution)
    with pytest.raises(EmbedderError, match="not installed.*pip install citebot-fake-model"):
        OnnxEmbedder(replace(spec, distribution="citebot-absent-model")).embed(["hello"])
    fake_distribution.unlink()
    with pytest.raises(EmbedderError, match="missing.*pip install citebot-fake-model"):
        OnnxEmbedder(spec).embed(["hello"])


def test_embed_tokens_gives_the_same_vectors_and_each_texts_own_tokens(embedder: OnnxEmbedder) -> None:
    texts = [DOCS["baking"], "Cook the soup.", DOCS["stroma"]]
    vectors, tokens = embedder.embed_tokens(texts)
    np.testing.assert_allclose(vectors, embedder.embed(texts), atol=1e-5)
    assert tokens[1].tokens == ("cook", "the", "soup", ".")  # [CLS] and [SEP] left out
    for t in tokens:
        assert t.vectors.shape == (len(t.tokens), embedder.dim)
        np.testing.assert_allclose(np.linalg.norm(t.vectors, axis=1), 1.0, atol=1e-5)
