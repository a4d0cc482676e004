"""Cost of a one-document change: add, then delete, one small file at 10k and 100k chunks.

    .venv/bin/python bench/change.py ../shared/bench/scifact [--sizes 10000 100000] [--rounds 5] [--data DIR]

Each corpus comes from ``bench/corpora.py`` (built on first use; a store built by an older citebot gets its
catalog rebuilt once, outside the timing). The file is a new two-paragraph note in a folder of its own;
``Pipeline.index`` of that folder embeds and writes it (add), and after the file is deleted the same call
removes it (delete): what ``citebot index`` does after the imports. Both corpora are open in one process and
the rounds alternate between them, so load from other processes falls on both sizes alike; the figure is the
median per size and its ratio 100k / 10k. Peak RSS is the whole process's (both corpora open). Results go to
``bench/results/change.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import corpora

from retrieval.pipeline import Pipeline

TARGET_SECONDS = 2.0  # at 100k chunks
TARGET_GROWTH = 1.5  # 100k over 10k
NOTE = (
    "Pump maintenance note {n}\n\nError P{n:04d} on the dosing pump means the impeller is clogged by "
    "crystallised reagent. Flush the impeller with warm water and restart the pump.\n\n"
    "If the error returns within a day, replace the inlet filter and check the reagent concentration."
)


def one_round(pipeline: Pipeline, folder: Path, n: int) -> dict[str, float]:
    """Add a note, check it is found, delete it, check it is gone; the two index calls timed."""
    note = folder / f"note-{n}.txt"
    note.write_text(NOTE.format(n=n))
    start = time.perf_counter()
    added = pipeline.index([folder])
    add = time.perf_counter() - start
    assert added.added == [note.name], added.summary()
    assert pipeline.search(f"error P{n:04d} dosing pump").passages[0].source == note.name
    note.unlink()
    start = time.perf_counter()
    removed = pipeline.index([folder])
    delete = time.perf_counter() - start
    assert removed.removed == [note.name], removed.summary()
    assert all(p.source != note.name for p in pipeline.search(f"error P{n:04d} dosing pump").passages)
    return {"add_s": add, "delete_s": delete}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="BEIR-layout SciFact folder, e.g. ../shared/bench/scifact")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=corpora.DEFAULT_DATA, help="data directory of the corpora")
    args = parser.parse_args()
    pipelines = {size: corpora.build(args.dataset, args.data, size) for size in args.sizes}
    folder = Path(tempfile.mkdtemp(prefix="citebot-change-"))
    rows: dict[int, list[dict[str, float]]] = {size: [] for size in args.sizes}
    load = [os.getloadavg()[0]]
    try:
        for size, pipeline in pipelines.items():  # warm-up: the embedder's first run and the caches
            rows[size].append(one_round(pipeline, folder, 9999))
            rows[size].clear()
        for n in range(args.rounds):
            order = args.sizes[n % len(args.sizes):] + args.sizes[: n % len(args.sizes)]
            for size in order:
                rows[size].append(one_round(pipelines[size], folder, n))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    load.append(os.getloadavg()[0])
    result = {
        "code": corpora.code_state(),
        "rounds": args.rounds,
        "load_average": load,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "sizes": {size: {"chunks": pipelines[size].store.count(),
                         **{k: statistics.median(r[k] for r in rows[size]) for k in ("add_s", "delete_s")}}
                  for size in args.sizes},
    }
    if len(args.sizes) > 1:
        small, large = result["sizes"][min(args.sizes)], result["sizes"][max(args.sizes)]
        result["growth"] = {k: large[k] / small[k] for k in ("add_s", "delete_s")}
    corpora.RESULTS.mkdir(parents=True, exist_ok=True)
    (corpora.RESULTS / "change.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
