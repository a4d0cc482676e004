"""Indexing throughput: the pipeline's passages/s against the raw embedder's on the same texts, and re-indexing.

    .venv/bin/python bench/throughput.py ../shared/bench/scifact [--docs 1000]

The first ``--docs`` SciFact abstracts are chunked with the default settings. In one process, the raw
embedder embeds those chunk texts, then ``Pipeline.index_documents`` indexes the abstracts into an empty
store (chunking, embedding, Chroma writes, keyword index), then the raw embedder runs again; the ratio of
the pipeline's passages/s to the mean of the two raw runs is the pipeline's overhead, in wall and in CPU
seconds (CPU seconds of all threads: less sensitive to other processes on the shared cores). Then a fresh
pipeline re-indexes the unchanged corpus: it must embed 0 chunks. The two seed files go through
``Pipeline.index`` (files on disk) the same way. Results go to ``bench/results/throughput.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import corpora
import numpy as np

from retrieval.chunking import split
from retrieval.embeddings import Embedder, get_embedder
from retrieval.evaluate import load_beir
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from retrieval.store import ChunkStore

logger = logging.getLogger(__name__)

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


class TimedEmbedder:
    """The real embedder, adding up the seconds spent in it."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.seconds = 0.0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        start = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            self.seconds += time.perf_counter() - start


def timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """``fn()`` and the wall and CPU seconds it took, with the load average when it ended."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                    "load_average": os.getloadavg()[0]}


def index_run(settings: RetrievalSettings, index: Callable[[Pipeline], Any]) -> dict[str, Any]:
    """Index through a fresh pipeline; the seconds it spent embedding and writing to Chroma too."""
    embedder = TimedEmbedder(get_embedder(settings.embedder, batch_size=settings.embed_batch_size))
    pipeline = Pipeline(settings, embedder=embedder, store=ChunkStore(settings, embedder))
    report, timing = timed(lambda: index(pipeline))
    return {**timing, "chunks_embedded": report.chunks_embedded, "summary": report.summary(),
            "embed_s": embedder.seconds, "chunks_stored": pipeline.store.count()}


def scifact_runs(dataset: Path, docs: int, data_dir: Path) -> dict[str, Any]:
    """Raw embedder, pipeline, raw embedder again, then the unchanged re-index, on ``docs`` abstracts."""
    documents = list(itertools.islice(load_beir(dataset).documents(), docs))
    settings = corpora.settings_for(data_dir, "throughput")
    texts = [c.page_content for d in documents
             for c in split(d, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)]
    embedder = get_embedder(settings.embedder, batch_size=settings.embed_batch_size)
    embedder.embed(texts[:32])  # loads the model outside the timings
    index = lambda p: p.index_documents("bench:throughput", documents)  # noqa: E731
    _, raw_before = timed(lambda: embedder.embed(texts))
    first = index_run(settings, index)
    _, raw_after = timed(lambda: embedder.embed(texts))
    again = index_run(settings, index)
    raw = {key: (raw_before[key] + raw_after[key]) / 2 for key in ("wall_s", "cpu_s")}
    return {
        "documents": len(documents), "passages": len(texts),
        "raw_before": raw_before, "raw_after": raw_after, "index": first, "reindex": again,
        "raw_passages_per_s": len(texts) / raw["wall_s"],
        "pipeline_passages_per_s": len(texts) / first["wall_s"],
        "pipeline_over_raw_wall": raw["wall_s"] / first["wall_s"],
        "pipeline_over_raw_cpu": raw["cpu_s"] / first["cpu_s"],
        "pipeline_share_embedding": first["embed_s"] / first["wall_s"],
    }


def seeds_runs(data_dir: Path) -> dict[str, Any]:
    """The two seed files through ``Pipeline.index``, then again unchanged."""
    settings = corpora.settings_for(data_dir, "seeds")
    index = lambda p: p.index([SEEDS])  # noqa: E731
    first = index_run(settings, index)
    return {"index": first, "reindex": index_run(settings, index),
            "pipeline_passages_per_s": first["chunks_embedded"] / first["wall_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="BEIR-layout SciFact folder, e.g. ../shared/bench/scifact")
    parser.add_argument("--docs", type=int, default=1000, help="SciFact abstracts indexed (the first N)")
    parser.add_argument("--out", type=Path, default=corpora.RESULTS / "throughput.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="citebot-throughput-") as tmp:
        report = {"date": time.strftime("%Y-%m-%d"), "code": corpora.code_state(), "cpus": len(os.sched_getaffinity(0)),
                  "load_average_before": load_before,
                  "seeds": seeds_runs(Path(tmp) / "seeds"),
                  "scifact": scifact_runs(args.dataset, args.docs, Path(tmp) / "scifact"),
                  "load_average_after": os.getloadavg()}
    s = report["scifact"]
    print(f"SciFact {s['documents']} abstracts, {s['passages']} passages: raw embedder "
          f"{s['raw_passages_per_s']:.1f} p/s, pipeline {s['pipeline_passages_per_s']:.1f} p/s "
          f"(x{s['pipeline_over_raw_wall']:.2f} wall, x{s['pipeline_over_raw_cpu']:.2f} CPU; "
          f"{s['pipeline_share_embedding']:.0%} of the pipeline's time in the embedder)")
    print(f"re-index unchanged: {s['reindex']['chunks_embedded']} chunks embedded in {s['reindex']['wall_s']:.1f} s")
    for name, r in (("seeds index", report["seeds"]["index"]), ("seeds re-index", report["seeds"]["reindex"])):
        print(f"{name}: {r['summary']} in {r['wall_s']:.2f} s")
    print(f"load average {load_before} before, {report['load_average_after']} after")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
