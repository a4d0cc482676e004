"""What the offline reader costs per question, by embedding budget and batch padding, paired in one run.

    CITEBOT_DATA_DIR=bench/results/data .venv/bin/python bench/reader_cost.py ../shared/bench/covidqa \
        [--queries 120] [--budgets 20 12]

The reader embeds the question and its most promising candidate sentences (``embed_limit`` of them, fitted by
``bench/fit_reader.py``) in one call; that call is nearly all of an offline answer's time. Each question's
read passages are searched once, then read by every variant in a rotating order (so the machine's load falls
on all alike): each budget, with the embedder's batches padded to their longest text as before
(``pad_growth`` unbounded) and grown by at most ``embeddings.PAD_GROWTH`` as now. Search and the whole
``Pipeline.ask`` are timed beside them. Results go to ``bench/results/reader_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from retrieval import evaluate, reader
from retrieval.embeddings import MODELS, PAD_GROWTH, OnnxEmbedder
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings

RESULTS = Path(__file__).parent / "results"


def p50_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--queries", type=int, default=120)
    parser.add_argument("--budgets", type=int, nargs="+", default=[20, reader.weights()["embed_limit"]])
    args = parser.parse_args()
    data = evaluate.load_beir(args.dataset)
    pipeline = Pipeline(evaluate.dataset_settings(data, RetrievalSettings()))
    pipeline.index_documents(f"beir:{data.name}", data.documents())
    spec = MODELS[pipeline.settings.embedder]
    paddings = {"padded to the longest": float("inf"), f"grown {PAD_GROWTH}x at most": PAD_GROWTH}
    embedders = {name: OnnxEmbedder(spec, pad_growth=growth) for name, growth in paddings.items()}
    variants = [(padding, budget) for padding in paddings for budget in args.budgets]
    questions = list(data.queries.values())[: args.queries]
    timings: dict[str, list[float]] = {f"{p}, {b} sentences": [] for p, b in variants}
    timings |= {"search": [], "ask": []}
    load = [os.getloadavg()[0]]
    found = [pipeline.search(q, k=pipeline.settings.read_k).passages for q in questions[:1]]
    for embedder in embedders.values():  # warm-up: load the models, first-call allocations
        reader.features(questions[0], found[0], embedder, limit=args.budgets[0])
    for i, question in enumerate(questions):
        t = time.perf_counter()
        passages = pipeline.search(question, k=pipeline.settings.read_k).passages
        timings["search"].append(time.perf_counter() - t)
        for padding, budget in variants[i % len(variants) :] + variants[: i % len(variants)]:
            t = time.perf_counter()
            reader.features(question, passages, embedders[padding], limit=budget)
            timings[f"{padding}, {budget} sentences"].append(time.perf_counter() - t)
        t = time.perf_counter()
        pipeline.ask(question)
        timings["ask"].append(time.perf_counter() - t)
    load.append(os.getloadavg()[0])
    baseline = p50_ms(timings[f"padded to the longest, {args.budgets[0]} sentences"])
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cores": len(os.sched_getaffinity(0)),
        "load_average": load,
        "questions": len(questions),
        "chunks": pipeline.store.count(),
        "p50_ms": {name: p50_ms(v) for name, v in timings.items()},
        "ratio_to_first": {name: round(p50_ms(v) / baseline, 2) for name, v in timings.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reader_cost.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
