"""Peak memory (RSS) of `citebot ask` and of indexing, each stage measured on its own child process.

    .venv/bin/python bench/memory.py ../shared/bench/scifact [--stages embed,ask,index,rebuild,build]
        [--sizes 1000 10000 100000] [--embed-chunks 1500] [--index-docs 3500]

- ``embed``: the embedder alone on the first ``--embed-chunks`` SciFact chunks (default settings): the part
  of indexing whose memory grows with the texts' lengths.
- ``ask``: ``citebot --help`` (the imports alone), then ``citebot ask --json`` on each recombined corpus of
  ``bench/corpora.py`` (built on first use) and on the two seed documents: the whole process.
- ``index``: ``citebot index`` of the first ``--index-docs`` SciFact abstracts written as .txt files (3,500
  abstracts make about 10,000 chunks) into an empty store, with real embedding.
- ``rebuild``: the keyword catalog rebuilt from the largest recombined corpus (what opening a store indexed
  by an older citebot does once), in a fresh process.
- ``build``: ``bench/corpora.py`` writing the 100,000-chunk corpus into an empty store with precomputed
  vectors (no model run), the keyword catalog with it.

Peak RSS is the child's own ``ru_maxrss`` from ``os.wait4``. Results go to ``bench/results/memory.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import corpora

from retrieval.catalog import Catalog
from retrieval.chunking import split
from retrieval.embeddings import get_embedder
from retrieval.evaluate import load_beir
from retrieval.pipeline import Pipeline

logger = logging.getLogger(__name__)

BENCH = Path(__file__).resolve().parent
CITEBOT = Path(sys.executable).parent / "citebot"
QUESTION = "What are the therapeutic targets in the TME?"


def peak_rss(cmd: list[str], env: dict[str, str], cwd: Path, stdout: Path | None = None) -> dict[str, Any]:
    """Run ``cmd`` to completion; its wall seconds and its own peak RSS in MB (output to ``stdout`` or dropped)."""
    start = time.perf_counter()
    with (cwd / "stderr.log").open("w") as stderr, open(stdout or os.devnull, "w") as out:
        child = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=stderr)
        # wait4 rather than Popen.wait: it returns this child's own resource usage.
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {(cwd / 'stderr.log').read_text()[-2000:]}")
    return {"seconds": round(time.perf_counter() - start, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024),
            "load_average": os.getloadavg()[0]}


def citebot(args: list[str], data_dir: Path, collection: str, cwd: Path) -> dict[str, Any]:
    """``citebot ARGS`` on this store, run from ``cwd`` (no .env of the checkout applies)."""
    env = {"CITEBOT_DATA_DIR": str(data_dir), "CITEBOT_COLLECTION": collection}
    return peak_rss([str(CITEBOT), *args], env, cwd)


def ask_runs(dataset: Path, sizes: list[int], data: Path, tmp: Path) -> list[dict[str, Any]]:
    """``citebot ask`` on every recombined corpus and on the seeds."""
    claim = next(iter(load_beir(dataset).queries.values()))
    rows = [{"stage": "ask", "what": "citebot --help (imports only)", **citebot(["--help"], tmp, "none", tmp)}]
    for size in sizes:
        corpora.build(dataset, data, size)
        rows.append({"stage": "ask", "what": f"citebot ask on recombined-{size}", "chunks": size,
                     "question": claim, **citebot(["ask", "--json", claim], data, f"bench-{size}", tmp)})
    seeds = tmp / "seeds-data"
    citebot(["index", str(BENCH.parent / "seeds")], seeds, "seeds", tmp)
    rows.append({"stage": "ask", "what": "citebot ask on the seeds", "chunks": Pipeline(
        corpora.settings_for(seeds, "seeds")).store.count(), "question": QUESTION,
        **citebot(["ask", "--json", QUESTION], seeds, "seeds", tmp)})
    return rows


def index_real(dataset: Path, docs: int, tmp: Path) -> dict[str, Any]:
    """``citebot index`` of ``docs`` SciFact abstracts as .txt files into an empty store."""
    folder = tmp / "abstracts"
    folder.mkdir()
    for doc in itertools.islice(load_beir(dataset).documents(), docs):
        (folder / f"{doc.source}.txt").write_text(doc.text, encoding="utf-8")
    run = citebot(["index", str(folder)], tmp / "index-data", "abstracts", tmp)
    chunks = Pipeline(corpora.settings_for(tmp / "index-data", "abstracts")).store.count()
    return {"stage": "index", "what": f"citebot index of {docs} abstracts, real embedding", "chunks": chunks,
            **run}


def child(stage: str, dataset: Path, arg: int, data: Path) -> dict[str, Any]:
    """In the child process: run one measured stage and return its own timings."""
    wall, cpu = time.perf_counter(), time.process_time()
    if stage == "embed":
        settings = corpora.settings_for(data, "unused")
        texts = [c.page_content for d in load_beir(dataset).documents()
                 for c in split(d, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)][:arg]
        embedder = get_embedder(settings.embedder, batch_size=settings.embed_batch_size)
        embedder.load()
        wall, cpu = time.perf_counter(), time.process_time()
        embedder.embed(texts)
    else:  # rebuild
        settings = corpora.settings_for(data, f"bench-{arg}")
        Catalog(settings.data_dir / "catalog" / f"{settings.collection}.sqlite").set_meta(identity="")
        Pipeline(settings)  # finds the catalog outdated and rebuilds it from the store
    return {"stage_wall_s": round(time.perf_counter() - wall, 1), "stage_cpu_s": round(time.process_time() - cpu, 1)}


def child_run(stage: str, dataset: Path, arg: int, data: Path, tmp: Path) -> dict[str, Any]:
    """``child(stage, ...)`` in a child process: its peak RSS and its timings."""
    out = tmp / f"{stage}.json"
    cmd = [sys.executable, __file__, str(dataset), "--data", str(data), "--child", stage, str(arg)]
    return {**peak_rss(cmd, {}, tmp, out), **json.loads(out.read_text())}


def embed_run(dataset: Path, count: int, tmp: Path) -> dict[str, Any]:
    return {"stage": "embed", "what": f"embedder alone, {count} SciFact chunks", "chunks": count,
            **child_run("embed", dataset, count, tmp, tmp)}


def rebuild_run(dataset: Path, size: int, data: Path, tmp: Path) -> dict[str, Any]:
    corpora.build(dataset, data, size)
    return {"stage": "rebuild", "what": f"keyword catalog rebuilt from bench-{size}", "chunks": size,
            **child_run("rebuild", dataset, size, data, tmp)}


def build_run(dataset: Path, tmp: Path) -> dict[str, Any]:
    """``bench/corpora.py`` writing the 100k-chunk corpus with precomputed vectors into an empty store."""
    cmd = [sys.executable, str(BENCH / "corpora.py"), str(dataset), "--sizes", "100000", "--data",
           str(tmp / "corpus-100k")]
    return {"stage": "build", "what": "ChunkStore.write with precomputed vectors + keyword index",
            "chunks": 100_000, **peak_rss(cmd, {}, tmp)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="BEIR-layout SciFact folder, e.g. ../shared/bench/scifact")
    parser.add_argument("--stages", default="embed,ask,index,rebuild,build")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10_000, 100_000])
    parser.add_argument("--data", type=Path, default=corpora.DEFAULT_DATA, help="data directory of the corpora")
    parser.add_argument("--embed-chunks", type=int, default=1500, help="chunks the embedder alone embeds")
    parser.add_argument("--index-docs", type=int, default=3500, help="abstracts indexed with real embedding")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # STAGE ARG, run inside a child process
    parser.add_argument("--out", type=Path, default=corpora.RESULTS / "memory.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    dataset, data = args.dataset.resolve(), args.data.resolve()
    if args.child:
        print(json.dumps(child(args.child[0], dataset, int(args.child[1]), data)))
        return
    stages = args.stages.split(",")
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "code": corpora.code_state(),
                              "load_average_before": os.getloadavg(), "rows": []}
    with tempfile.TemporaryDirectory(prefix="citebot-memory-") as name:
        tmp, rows = Path(name), report["rows"]
        rows += [embed_run(dataset, args.embed_chunks, tmp)] if "embed" in stages else []
        rows += ask_runs(dataset, args.sizes, data, tmp) if "ask" in stages else []
        rows += [index_real(dataset, args.index_docs, tmp)] if "index" in stages else []
        rows += [rebuild_run(dataset, max(args.sizes), data, tmp)] if "rebuild" in stages else []
        rows += [build_run(dataset, tmp)] if "build" in stages else []
    report["load_average_after"] = os.getloadavg()
    for row in report["rows"]:
        print(f"{row['stage']:<8} {row['what']:<60} {row.get('chunks', ''):>7}  peak RSS {row['peak_rss_mb']:>5} MB"
              f"  {row['seconds']:>6} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
