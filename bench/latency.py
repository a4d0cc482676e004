"""Query latency: question to finished offline answer at 1k, 10k and 100k chunks, and where the time goes.

    .venv/bin/python bench/latency.py ../shared/bench/scifact [--sizes 1000 10000 100000] [--queries 300]
        [--scifact-data DIR --scifact-collection NAME] [--seeds] [--data DIR]

Each corpus comes from ``bench/corpora.py`` (SciFact abstracts split and recombined; built on first use).
The questions are the SciFact test claims (the first ``--queries`` of them). All corpora are open in one
process and every question goes to each of them in turn (the order rotating per question), so a change in
the machine's load hits every size alike and the growth ratio stays fair. One warm-up question per corpus runs
first, and the keyword index is loaded into memory, as a serving process has it. Per question it records
``Pipeline.ask`` (extractive answer) wall and CPU milliseconds and the pipeline's own split (embed, dense,
keyword, fuse, answer), then times the parts again on their own: the store's ``count()`` (run once per side
per query), the HNSW query without it, the BM25 retrieval without the freshness check, and ``store.get`` of
the passages only the keyword side found.

``--scifact-data`` adds the real SciFact index (e.g. a copy of ``bench/results/data``, collection
``eval-scifact-<hash>``) and ``--seeds`` the two seed documents (indexed into a temporary folder, asked the
questions of ``bench/load.py``). Results go to ``bench/results/latency.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import corpora
import load as load_bench
import numpy as np

from retrieval.evaluate import load_beir
from retrieval.pipeline import Pipeline

logger = logging.getLogger(__name__)

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
TARGET_P50_MS = 150.0  # at 10k chunks
TARGET_GROWTH = 2.0  # p50 at 100k over p50 at 10k


@dataclass
class Series:
    """One corpus, its pipeline, its questions and a row of timings per question."""

    name: str
    pipeline: Pipeline
    questions: list[str]
    rows: list[dict[str, float]] = field(default_factory=list)


def _ms(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1000


def measure(pipeline: Pipeline, question: str) -> dict[str, float]:
    """One answer timed as a whole and by part, then the parts that hide inside those parts."""
    cpu = time.process_time()
    answer, total = _ms(lambda: pipeline.ask(question))
    row = {"total": total, "cpu": (time.process_time() - cpu) * 1000}
    row |= {name: seconds * 1000 for name, seconds in answer.timings.items() if name != "total"}
    store = pipeline.store
    vector = store.embedder.embed([question])[0]
    candidates = max(pipeline.settings.top_k, pipeline.settings.candidates)
    _, row["count"] = _ms(store.count)
    collection = store.client.get_collection(store.name)
    _, row["hnsw_ids_only"] = _ms(lambda: collection.query(query_embeddings=[vector], n_results=candidates,
                                                           include=["distances"]))
    dense, row["store_query"] = _ms(lambda: store.query(vector, candidates))  # HNSW, ids and distances
    keyword, row["bm25"] = _ms(lambda: store.keyword_search(question, candidates))
    seen = {i for i, _ in dense}
    keyword_only = [i for i, _ in keyword if i not in seen]
    _, row["get_keyword_only"] = _ms(lambda: store.vectors(keyword_only))
    _, row["get_kept"] = _ms(lambda: store.get([p.id for p in answer.passages[: pipeline.settings.top_k]]))
    row["keyword_only_candidates"] = len(keyword_only)
    row["found"] = float(answer.found)
    return row


def run(series: list[Series]) -> None:
    """Warm each corpus up, then ask every question of each, rotating which corpus goes first."""
    for s in series:
        s.pipeline.ask(s.questions[0])
        s.pipeline.store.keywords.load()  # what a serving process has a second after its second question
    rounds = max(len(s.questions) for s in series)
    for n in range(rounds):
        turn = series[n % len(series) :] + series[: n % len(series)]
        for s in turn:
            if n < len(s.questions):
                s.rows.append(measure(s.pipeline, s.questions[n]))
        if n % 50 == 49:
            logger.info("%d questions, load average %.1f", n + 1, os.getloadavg()[0])


def summary(s: Series) -> dict[str, Any]:
    """p50/p95 of the whole answer and of the search, and the median of every part."""
    column = {key: np.array([r[key] for r in s.rows]) for key in s.rows[0]}
    return {
        "corpus": s.name,
        "chunks": s.pipeline.store.count(),
        "questions": len(s.rows),
        "answered": int(column.pop("found").sum()),
        "ask_p50_ms": float(np.percentile(column["total"], 50)),
        "ask_p95_ms": float(np.percentile(column["total"], 95)),
        "search_p50_ms": float(np.percentile(column["search"], 50)),
        "search_p95_ms": float(np.percentile(column["search"], 95)),
        "ask_cpu_p50_ms": float(np.percentile(column["cpu"], 50)),
        "parts_p50_ms": {k: float(np.percentile(v, 50)) for k, v in column.items()
                         if k not in ("total", "search", "cpu", "keyword_only_candidates")},
        "keyword_only_candidates_mean": float(column["keyword_only_candidates"].mean()),
    }


def open_series(args: argparse.Namespace, tmp: Path) -> list[Series]:
    claims = list(load_beir(args.dataset).queries.values())[: args.queries]
    series = [Series(f"recombined-{size}", corpora.build(args.dataset, args.data, size), claims)
              for size in args.sizes]
    if args.scifact_data:
        settings = corpora.settings_for(args.scifact_data, args.scifact_collection)
        series.append(Series("scifact-real", Pipeline(settings), claims))
    if args.seeds:
        pipeline = Pipeline(corpora.settings_for(tmp / "seeds", "seeds"))
        pipeline.index([SEEDS])
        repeats = -(-args.queries // len(load_bench.QUESTIONS))
        series.append(Series("seeds", pipeline, (load_bench.QUESTIONS * repeats)[: args.queries]))
    return series


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets, where the run has the 10k and 100k corpora."""
    by_size = {r["chunks"]: r for r in rows if r["corpus"].startswith("recombined-")}
    if 10_000 not in by_size or 100_000 not in by_size:
        return {}
    growth = by_size[100_000]["ask_p50_ms"] / by_size[10_000]["ask_p50_ms"]
    return {"p50_10k_ms": by_size[10_000]["ask_p50_ms"], "growth_10k_to_100k": growth,
            "search_growth_10k_to_100k": by_size[100_000]["search_p50_ms"] / by_size[10_000]["search_p50_ms"],
            "meets_p50": by_size[10_000]["ask_p50_ms"] <= TARGET_P50_MS, "meets_growth": growth <= TARGET_GROWTH}


def print_table(rows: list[dict[str, Any]]) -> None:
    parts = list(rows[0]["parts_p50_ms"])
    print(f"{'corpus':<19}{'chunks':>8}  ask p50   p95  search p50   p95  cpu p50  | p50 of: " + " ".join(parts))
    for r in rows:
        print(f"{r['corpus']:<19}{r['chunks']:>8}  {r['ask_p50_ms']:7.1f} {r['ask_p95_ms']:5.0f}"
              f"  {r['search_p50_ms']:10.1f} {r['search_p95_ms']:5.0f}  {r['ask_cpu_p50_ms']:7.1f}  | "
              + " ".join(f"{r['parts_p50_ms'][p]:.1f}" for p in parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="BEIR-layout SciFact folder, e.g. ../shared/bench/scifact")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300, help="SciFact claims asked (the first N)")
    parser.add_argument("--data", type=Path, default=corpora.DEFAULT_DATA, help="data directory of the corpora")
    parser.add_argument("--scifact-data", type=Path, help="data directory of a real SciFact index")
    parser.add_argument("--scifact-collection", default="eval-scifact-3c71ef18")
    parser.add_argument("--seeds", action="store_true", help="also the two seed documents")
    parser.add_argument("--out", type=Path, default=corpora.RESULTS / "latency.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="citebot-latency-") as tmp:
        series = open_series(args, Path(tmp))
        load_before = os.getloadavg()
        start = time.perf_counter()
        run(series)
        rows = [summary(s) for s in series]
    report = {"date": time.strftime("%Y-%m-%d"), "code": corpora.code_state(), "cpus": len(os.sched_getaffinity(0)),
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "seconds": round(time.perf_counter() - start), "results": rows, "targets": verdict(rows)}
    print_table(rows)
    print(json.dumps(report["targets"]), f"load average {statistics.fmean(load_before):.1f} before,",
          f"{statistics.fmean(report['load_average_after']):.1f} after")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
