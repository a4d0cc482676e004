"""Indexing throughput: the pipeline's passages/s against the raw embedder's on the same texts, and re-indexing.

    .venv/bin/python bench/throughput.py ../shared/bench/scifact [--docs 1000] [--rounds 4]

The first ``--docs`` SciFact abstracts are chunked with the default settings and cut into ``--rounds`` parts.
For each part, in one process, the raw embedder embeds the part's chunk texts and ``Pipeline.index_documents``
indexes the abstracts up to the end of that part, as documents added to a folder (the earlier ones are
unchanged and skipped; the new ones are chunked, embedded and written to Chroma, then the keyword index is
rebuilt), the order alternating from part to part, so that other processes' load on the shared cores falls on both
alike. The ratio of the pipeline's passages/s to the raw embedder's is the pipeline's overhead, in wall and
in CPU seconds (all threads), and the time the pipeline spent inside the embedder says the same from within.
Then a fresh pipeline re-indexes the unchanged corpus: it must embed 0 chunks. The two seed files go through
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
from retrieval.embeddings import Embedder, TokenVectors, get_embedder
from retrieval.evaluate import load_beir
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from retrieval.store import ChunkStore

logger = logging.getLogger(__name__)

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
ROOT = "bench:throughput"


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

    def embed_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[TokenVectors]]:
        start = time.perf_counter()
        try:
            return self.inner.embed_tokens(texts)
        finally:
            self.seconds += time.perf_counter() - start


def timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """``fn()`` and the wall and CPU seconds it took, with the load average when it ended."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                    "load_average": os.getloadavg()[0]}


def timed_pipeline(settings: RetrievalSettings) -> tuple[Pipeline, TimedEmbedder]:
    """A fresh pipeline whose embedder adds up the seconds spent in it."""
    embedder = TimedEmbedder(get_embedder(settings.embedder, batch_size=settings.embed_batch_size,
                                         data_dir=settings.data_dir))
    return Pipeline(settings, embedder=embedder, store=ChunkStore(settings, embedder)), embedder


def index_run(settings: RetrievalSettings, index: Callable[[Pipeline], Any]) -> dict[str, Any]:
    """Index through a fresh pipeline: seconds, and what the run embedded."""
    pipeline, embedder = timed_pipeline(settings)
    report, timing = timed(lambda: index(pipeline))
    return {**timing, "chunks_embedded": report.chunks_embedded, "summary": report.summary(),
            "embed_s": embedder.seconds, "chunks_stored": pipeline.store.count()}


def scifact_runs(dataset: Path, docs: int, rounds: int, data_dir: Path) -> dict[str, Any]:
    """Raw embedder and pipeline part by part, then the unchanged re-index, on ``docs`` abstracts."""
    documents = list(itertools.islice(load_beir(dataset).documents(), docs))
    settings = corpora.settings_for(data_dir, "throughput")
    ends = [(n + 1) * len(documents) // rounds for n in range(rounds)]
    parts = [documents[start:end] for start, end in zip([0, *ends], ends, strict=False)]
    texts = [[c.page_content for d in part
              for c in split(d, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)]
             for part in parts]
    raw_embedder = get_embedder(settings.embedder, batch_size=settings.embed_batch_size, data_dir=settings.data_dir)
    raw_embedder.embed(texts[0][:32])  # loads the model outside the timings
    pipeline, pipeline_embedder = timed_pipeline(settings)
    rows = []
    for n in range(rounds):
        steps = {"raw": lambda n=n: raw_embedder.embed(texts[n]),
                 "pipeline": lambda n=n: pipeline.index_documents(ROOT, documents[: ends[n]])}
        for name in (["raw", "pipeline"] if n % 2 == 0 else ["pipeline", "raw"]):
            _, timing = timed(steps[name])
            rows.append({"part": n, "step": name, "passages": len(texts[n]), **timing})
    total = {step: {key: sum(r[key] for r in rows if r["step"] == step) for key in ("wall_s", "cpu_s")}
             for step in ("raw", "pipeline")}
    passages = sum(len(t) for t in texts)
    again = index_run(settings, lambda p: p.index_documents(ROOT, documents))
    return {
        "documents": len(documents), "passages": passages, "chunks_stored": pipeline.store.count(),
        "rounds": rows, "raw": total["raw"], "pipeline": total["pipeline"], "reindex": again,
        "raw_passages_per_s": passages / total["raw"]["wall_s"],
        "pipeline_passages_per_s": passages / total["pipeline"]["wall_s"],
        "pipeline_over_raw_wall": total["raw"]["wall_s"] / total["pipeline"]["wall_s"],
        "pipeline_over_raw_cpu": total["raw"]["cpu_s"] / total["pipeline"]["cpu_s"],
        "pipeline_share_embedding": pipeline_embedder.seconds / total["pipeline"]["wall_s"],
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
    parser.add_argument("--rounds", type=int, default=4, help="parts, raw and pipeline alternating")
    parser.add_argument("--out", type=Path, default=corpora.RESULTS / "throughput.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="citebot-throughput-") as tmp:
        report = {"date": time.strftime("%Y-%m-%d"), "code": corpora.code_state(),
                  "cpus": len(os.sched_getaffinity(0)), "load_average_before": load_before,
                  "seeds": seeds_runs(Path(tmp) / "seeds"),
                  "scifact": scifact_runs(args.dataset, args.docs, args.rounds, Path(tmp) / "scifact"),
                  "load_average_after": os.getloadavg()}
    s = report["scifact"]
    print(f"SciFact {s['documents']} abstracts, {s['passages']} passages: raw embedder "
          f"{s['raw_passages_per_s']:.1f} p/s, pipeline {s['pipeline_passages_per_s']:.1f} p/s "
          f"(x{s['pipeline_over_raw_wall']:.2f} wall, x{s['pipeline_over_raw_cpu']:.2f} CPU; "
          f"{s['pipeline_share_embedding']:.0%} of the pipeline's time in the embedder)")
    print(f"re-index unchanged: {s['reindex']['summary']} in {s['reindex']['wall_s']:.2f} s")
    for name, r in (("seeds index", report["seeds"]["index"]), ("seeds re-index", report["seeds"]["reindex"])):
        print(f"{name}: {r['summary']} in {r['wall_s']:.2f} s")
    print(f"load average {load_before} before, {report['load_average_after']} after")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
