"""Compare the packaged embedders on SciFact: quality (dense only) and speed on this machine.

    .venv/bin/python bench/embedders.py ../shared/bench/scifact

For each model of ``retrieval.embeddings.MODELS``: nDCG@10 and Recall@10/100 of brute-force cosine search over
every abstract (title + " " + text), passages/s embedding the whole corpus and 200 passages of 200 words
(batch 32), and single-query latency. Corpus embeddings are cached in ``bench/results/`` per model and token
limit, so a rerun only re-measures the rest; the cached corpus timing is reported again (``--fresh`` re-embeds).
Results go to ``bench/results/embedders.json`` (``embedders-lenN.json`` with ``--max-length N``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import scifact

from retrieval.embeddings import MODELS, OnnxEmbedder

logger = logging.getLogger(__name__)

RESULTS = Path(__file__).parent / "results"
DEPTH = 100  # documents kept per query; enough for Recall@100


def two_hundred_word_passages(docs: list[scifact.Doc], count: int = 200, words: int = 200) -> list[str]:
    """``count`` passages of exactly ``words`` words cut from the corpus text in order."""
    stream: list[str] = []
    for doc in docs:
        stream.extend(doc.passage.split())
        if len(stream) >= count * words:
            break
    return [" ".join(stream[i * words : (i + 1) * words]) for i in range(count)]


def timed_embed(embedder: OnnxEmbedder, texts: list[str]) -> tuple[np.ndarray, dict[str, float]]:
    """Vectors and the wall-clock and CPU seconds (all threads) they took.

    CPU seconds matter because other processes share the cores: wall time then grows, CPU time much less.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = embedder.embed(texts)
    return vectors, {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def embed_corpus(
    embedder: OnnxEmbedder, docs: list[scifact.Doc], *, fresh: bool
) -> tuple[np.ndarray, dict[str, float]]:
    """Corpus vectors and their timing, from the cache unless ``fresh`` or it does not fit."""
    vectors_path = RESULTS / f"corpus-{embedder.name}-{embedder.spec.max_length}.npy"
    timing_path = vectors_path.with_suffix(".json")
    if not fresh and vectors_path.exists() and timing_path.exists():
        vectors = np.load(vectors_path)
        timing = json.loads(timing_path.read_text())
        if vectors.shape == (len(docs), embedder.dim) and timing["ids"] == [d.id for d in docs]:
            logger.info("%s: corpus vectors from %s", embedder.name, vectors_path)
            return vectors, timing["timing"]
    logger.info("%s: embedding %d passages", embedder.name, len(docs))
    vectors, timing = timed_embed(embedder, [d.passage for d in docs])
    np.save(vectors_path, vectors)
    timing_path.write_text(json.dumps({"timing": timing, "ids": [d.id for d in docs]}))
    return vectors, timing


def search(
    query_vectors: np.ndarray, doc_vectors: np.ndarray, query_ids: list[str], doc_ids: list[str]
) -> dict[str, dict[str, float]]:
    """The ``DEPTH`` best documents per query by cosine similarity (vectors are unit length)."""
    scores = query_vectors @ doc_vectors.T
    top = np.argsort(-scores, axis=1)[:, :DEPTH]
    return {q: {doc_ids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(query_ids)}


def query_latencies(embedder: OnnxEmbedder, queries: list[str]) -> list[float]:
    """Milliseconds to embed each query alone, after one warm-up call."""
    embedder.embed(queries[:1])
    latencies = []
    for query in queries:
        start = time.perf_counter()
        embedder.embed([query])
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def measure(
    name: str, data: scifact.Dataset, *, batch_size: int, max_length: int | None, fresh: bool
) -> dict[str, Any]:
    """Every figure of one model; ``max_length`` overrides the model's token limit."""
    spec = replace(MODELS[name], max_length=max_length) if max_length else MODELS[name]
    embedder = OnnxEmbedder(spec, batch_size=batch_size)
    load_average_before = os.getloadavg()[0]
    start = time.perf_counter()
    embedder.load()
    load_seconds = time.perf_counter() - start
    doc_vectors, corpus_timing = embed_corpus(embedder, data.corpus, fresh=fresh)
    passages = two_hundred_word_passages(data.corpus)
    _, passages_timing = timed_embed(embedder, passages)
    query_ids = list(data.queries)
    query_texts = [data.queries[q] for q in query_ids]
    run = search(embedder.embed(query_texts), doc_vectors, query_ids, [d.id for d in data.corpus])
    latencies = query_latencies(embedder, query_texts)
    return {
        "model": name,
        "max_length": embedder.spec.max_length,
        **scifact.evaluate(run, data.qrels),
        "corpus_passages_per_s": len(data.corpus) / corpus_timing["wall_s"],
        "corpus_passages_per_cpu_s": len(data.corpus) / corpus_timing["cpu_s"],
        "passages_200w_per_s": len(passages) / passages_timing["wall_s"],
        "passages_200w_per_cpu_s": len(passages) / passages_timing["cpu_s"],
        "query_ms_p50": statistics.median(latencies),
        "query_ms_p95": float(np.percentile(latencies, 95)),
        "load_s": load_seconds,
        "threads": embedder.threads,
        # Other processes share the two cores: the 1-minute load average before and after says how much.
        "load_average": [load_average_before, os.getloadavg()[0]],
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """Quality, then speed: passages per wall second and per CPU second, query latency in ms."""
    print(
        "model                 tokens  nDCG@10  R@10   R@100  corpus p/s (p/cpu-s)  200w p/s (p/cpu-s)  query p50  p95"
    )
    for r in rows:
        print(
            f"{r['model']:<21} {r['max_length']:>6}  {r['ndcg@10']:.3f}    {r['recall@10']:.3f}  "
            f"{r['recall@100']:.3f}  {r['corpus_passages_per_s']:>10.1f} ({r['corpus_passages_per_cpu_s']:>6.1f})"
            f"  {r['passages_200w_per_s']:>8.1f} ({r['passages_200w_per_cpu_s']:>6.1f})"
            f"  {r['query_ms_p50']:>9.1f}  {r['query_ms_p95']:>4.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="BEIR-layout folder, e.g. ../shared/bench/scifact")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, help="override every model's token limit")
    parser.add_argument("--fresh", action="store_true", help="re-embed the corpus even when cached")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = scifact.load(args.dataset)
    rows = [
        measure(name, data, batch_size=args.batch_size, max_length=args.max_length, fresh=args.fresh)
        for name in args.models
    ]
    print_table(rows)
    report = {
        "dataset": str(args.dataset),
        "queries": len(data.queries),
        "documents": len(data.corpus),
        "batch_size": args.batch_size,
        "machine": {
            "cpus": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
        },
        "models": rows,
    }
    suffix = f"-len{args.max_length}" if args.max_length else ""
    (RESULTS / f"embedders{suffix}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
