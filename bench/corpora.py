"""Chunk corpora of any size built from SciFact abstracts split and recombined, for the speed benchmarks.

    .venv/bin/python bench/corpora.py ../shared/bench/scifact [--sizes 1000 10000 100000] [--data DIR]

How a corpus is made:

1. SciFact is chunked with the default settings (1,000/150 characters). Of each abstract, its first chunk
   with at least two sentences is cut at the sentence boundary nearest its middle into a first and a second
   half (about 5,100 abstracts, 10,200 halves, about 250 characters each).
2. Every half is embedded once with the real embedder (cached in ``bench/results/halves-<embedder>.npz``).
3. Chunk ``i`` of a corpus is the first half of abstract ``a`` followed by the second half of another abstract
   ``b`` (pairs drawn by a seeded generator, no pair twice). Its vector is the L2-normalised mean of the two
   halves' real vectors, written through ``ChunkStore.write`` without running the model: embedding 100,000
   chunks would take hours on two cores, and search cost depends on the count and dimension of the vectors,
   not on how they were made. The keyword catalog holds the real recombined texts.

The corpora are nested (the first 1,000 chunks of the 10,000 corpus are the 1,000 corpus); each size lives
in its own collection ``bench-<size>`` under ``--data`` and is reused when complete.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import os
import re
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langchain_core.documents import Document

from retrieval.chunking import CHUNKER, split
from retrieval.embeddings import Embedder
from retrieval.evaluate import load_beir
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings

logger = logging.getLogger(__name__)

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = Path("/tmp/citebot-bench/corpora")
ROOT = "bench:scifact-recombined"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
_WRITE_STEP = 5000  # chunks per ChunkStore.write call: bounds the memory a 100k build holds at once


@dataclass(frozen=True)
class Half:
    """One SciFact abstract's chunk cut in two at a sentence boundary."""

    doc_id: str
    title: str
    first: str
    second: str


def settings_for(data_dir: Path, collection: str) -> RetrievalSettings:
    """Default settings on ``data_dir``, ignoring any ``.env`` (a developer's LLM key must not change the run)."""
    return RetrievalSettings(_env_file=None, data_dir=data_dir, collection=collection)  # type: ignore[call-arg]


def code_state() -> dict[str, object]:
    """The commit measured and the library files modified on top of it (the tree is shared while it runs)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=RESULTS.parent.parent, capture_output=True, text=True).stdout

    return {"commit": git("rev-parse", "--short", "HEAD").strip(),
            "modified": git("status", "--porcelain", "--", "retrieval").split()[1::2]}


def cut_in_two(text: str) -> tuple[str, str] | None:
    """``text`` split at the sentence boundary nearest its middle, or None when it has one sentence."""
    bounds = [m for m in _SENTENCE_END.finditer(text)]
    if not bounds:
        return None
    best = min(bounds, key=lambda m: abs(m.start() - len(text) / 2))
    return text[: best.start()], text[best.end() :]


@functools.cache
def halves(dataset_dir: Path) -> list[Half]:
    """Per SciFact abstract, its first chunk of two or more sentences, cut in two."""
    defaults = RetrievalSettings(_env_file=None)  # type: ignore[call-arg]
    out = []
    for doc in load_beir(dataset_dir).documents():
        for chunk in split(doc, chunk_size=defaults.chunk_size, chunk_overlap=defaults.chunk_overlap):
            parts = cut_in_two(chunk.page_content)
            if parts:
                out.append(Half(doc.source, str(doc.metadata["title"]), *parts))
                break
    return out


def half_vectors(parts: list[Half], embedder: Embedder) -> tuple[np.ndarray, np.ndarray]:
    """The real vectors of every first and second half, embedded once and cached."""
    path = RESULTS / f"halves-{embedder.name}.npz"
    key = hashlib.sha256("\0".join(h.first + "\0" + h.second for h in parts).encode()).hexdigest()
    if path.exists():
        cached = np.load(path)
        if str(cached["key"]) == key:
            return cached["first"], cached["second"]
    logger.info("embedding %d halves with %s", 2 * len(parts), embedder.name)
    start = time.perf_counter()
    first = embedder.embed([h.first for h in parts])
    second = embedder.embed([h.second for h in parts])
    logger.info("embedded in %.0f s", time.perf_counter() - start)
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.savez(path, key=key, first=first, second=second)
    return first, second


def pairs(n_halves: int, count: int, *, seed: int = 0) -> list[tuple[int, int]]:
    """``count`` distinct (a, b) pairs with a != b; a longer list starts with every shorter one."""
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, int]] = set()
    out = []
    while len(out) < count:
        a, b = (int(x) for x in rng.integers(n_halves, size=2))
        if a != b and (a, b) not in seen:
            seen.add((a, b))
            out.append((a, b))
    return out


def recombined(parts: list[Half], vectors: tuple[np.ndarray, np.ndarray], count: int,
               settings: RetrievalSettings) -> tuple[list[Document], np.ndarray]:
    """The ``count`` chunks of the corpus and their vectors (normalised mean of the halves' vectors)."""
    chosen = pairs(len(parts), count)
    first, second = vectors
    a, b = (np.array(side) for side in zip(*chosen, strict=True))
    summed = first[a] + second[b]
    embeddings = (summed / np.linalg.norm(summed, axis=1, keepdims=True)).astype(np.float32)
    chunks = []
    for n, (i, j) in enumerate(chosen):
        text = f"{parts[i].first} {parts[j].second}"
        chunks.append(Document(page_content=text, metadata={
            "source": f"mix{n:06d}", "title": parts[i].title, "format": "beir", "start": 0, "end": len(text),
            "chunk_index": 0, "n_chunks": 1, "doc_hash": hashlib.sha256(text.encode()).hexdigest(),
            "chunker": CHUNKER, "chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap,
            "halves": f"{parts[i].doc_id}+{parts[j].doc_id}",
        }))
    return chunks, embeddings


def build(dataset_dir: Path, data_dir: Path, size: int) -> Pipeline:
    """A pipeline over the ``size``-chunk corpus in collection ``bench-<size>``, written if not complete."""
    pipeline = Pipeline(settings_for(data_dir, f"bench-{size}"))
    if pipeline.store.count() == size:
        return pipeline
    parts = halves(dataset_dir)
    chunks, embeddings = recombined(parts, half_vectors(parts, pipeline.store.embedder), size, pipeline.settings)
    start = time.perf_counter()
    for i in range(0, size, _WRITE_STEP):
        pipeline.store.write(ROOT, chunks[i : i + _WRITE_STEP], embeddings[i : i + _WRITE_STEP])
        logger.info("bench-%d: %d chunks written", size, min(i + _WRITE_STEP, size))
    logger.info("bench-%d: written in %.0f s (the keyword catalog with it)", size, time.perf_counter() - start)
    return pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="BEIR-layout SciFact folder, e.g. ../shared/bench/scifact")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data directory of the corpora")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parts = halves(args.dataset)
    lengths = [len(h.first) + 1 + len(h.second) for h in parts]
    print(f"{len(parts)} abstracts cut in two; a recombined chunk holds about {np.mean(lengths):.0f} characters")
    for size in args.sizes:
        start = time.perf_counter()
        pipeline = build(args.dataset, args.data, size)
        print(json.dumps({"size": size, "chunks": pipeline.store.count(), "seconds": round(time.perf_counter() - start),
                          "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                          "load_average": os.getloadavg()}))


if __name__ == "__main__":
    main()
