"""Peak memory (RSS) of `citebot ask` and of indexing, each measured on its own child process.

    .venv/bin/python bench/memory.py ../shared/bench/scifact [--sizes 1000 10000 100000] [--index-docs 3500]
        [--build-100k]

- ``ask``: ``citebot ask --json`` on each recombined corpus of ``bench/corpora.py`` (built on first use) and on
  the two seed documents: the whole process, from start to printed answer.
- ``embed``: the embedder alone on the first ``--embed-chunks`` SciFact chunks (default settings), in a
  child process: the part of indexing whose memory grows with the texts' lengths.
- ``index (real embedding)``: ``citebot index`` of the first ``--index-docs`` SciFact abstracts written as
  .txt files (3,500 abstracts make about 10,000 chunks), into an empty store.
- ``index (precomputed vectors)``: with ``--build-100k``, ``bench/corpora.py`` writing the 100,000-chunk
  corpus into an empty store with its precomputed vectors (no model run) and building its keyword index.

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
    rows = []
    for size in sizes:
        corpora.build(dataset, data, size)
        rows.append({"corpus": f"recombined-{size}", "chunks": size, "question": claim,
                     **citebot(["ask", "--json", claim], data, f"bench-{size}", tmp)})
    seeds = tmp / "seeds-data"
    citebot(["index", str(BENCH.parent / "seeds")], seeds, "seeds", tmp)
    rows.append({"corpus": "seeds", "question": QUESTION, **citebot(["ask", "--json", QUESTION], seeds, "seeds", tmp)})
    return rows


def index_real(dataset: Path, docs: int, tmp: Path) -> dict[str, Any]:
    """``citebot index`` of ``docs`` SciFact abstracts as .txt files into an empty store."""
    folder = tmp / "abstracts"
    folder.mkdir()
    for doc in itertools.islice(load_beir(dataset).documents(), docs):
        (folder / f"{doc.source}.txt").write_text(doc.text, encoding="utf-8")
    run = citebot(["index", str(folder)], tmp / "index-data", "abstracts", tmp)
    chunks = Pipeline(corpora.settings_for(tmp / "index-data", "abstracts")).store.count()
    return {"what": "citebot index, real embedding", "documents": docs, "chunks": chunks, **run}


def embed_child(dataset: Path, count: int) -> None:
    """In a child process: embed the first ``count`` SciFact chunks; print seconds and CPU seconds as JSON."""
    settings = corpora.settings_for(Path(tempfile.gettempdir()), "unused")
    texts = [c.page_content for d in load_beir(dataset).documents()
             for c in split(d, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)][:count]
    embedder = get_embedder(settings.embedder, batch_size=settings.embed_batch_size)
    embedder.load()
    wall, cpu = time.perf_counter(), time.process_time()
    embedder.embed(texts)
    print(json.dumps({"embed_wall_s": round(time.perf_counter() - wall, 1),
                      "embed_cpu_s": round(time.process_time() - cpu, 1)}))


def embed_run(dataset: Path, count: int, tmp: Path) -> dict[str, Any]:
    """The embedder alone on ``count`` chunks, in a child: its peak RSS, wall and CPU seconds."""
    out = tmp / "embed.json"
    run = peak_rss([sys.executable, __file__, str(dataset), "--child-embed", str(count)], {}, tmp, out)
    return {"what": f"embedder alone, {count} SciFact chunks", "chunks": count, **run,
            **json.loads(out.read_text())}


def index_precomputed(dataset: Path, tmp: Path) -> dict[str, Any]:
    """``bench/corpora.py`` writing the 100k-chunk corpus with precomputed vectors into an empty store."""
    cmd = [sys.executable, str(BENCH / "corpora.py"), str(dataset), "--sizes", "100000", "--data",
           str(tmp / "corpus-100k")]
    return {"what": "ChunkStore.write with precomputed vectors + keyword index", "chunks": 100_000,
            **peak_rss(cmd, {}, tmp)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="BEIR-layout SciFact folder, e.g. ../shared/bench/scifact")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10_000, 100_000])
    parser.add_argument("--data", type=Path, default=corpora.DEFAULT_DATA, help="data directory of the corpora")
    parser.add_argument("--index-docs", type=int, default=3500, help="abstracts indexed with real embedding")
    parser.add_argument("--embed-chunks", type=int, default=1500, help="chunks the embedder alone embeds")
    parser.add_argument("--only-embed", action="store_true", help="run the embed stage alone")
    parser.add_argument("--child-embed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--build-100k", action="store_true", help="also build the 100k corpus afresh")
    parser.add_argument("--out", type=Path, default=corpora.RESULTS / "memory.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    dataset = args.dataset.resolve()
    if args.child_embed:
        embed_child(dataset, args.child_embed)
        return
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "code": corpora.code_state(),
                              "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="citebot-memory-") as name:
        tmp = Path(name)
        report["embed"] = embed_run(dataset, args.embed_chunks, tmp)
        report["ask"] = [] if args.only_embed else ask_runs(dataset, args.sizes, args.data.resolve(), tmp)
        real = args.index_docs and not args.only_embed
        report["index"] = [index_real(dataset, args.index_docs, tmp)] if real else []
        if args.build_100k:
            report["index"].append(index_precomputed(dataset, tmp))
    report["load_average_after"] = os.getloadavg()
    e = report["embed"]
    print(f"{e['what']}: peak RSS {e['peak_rss_mb']} MB ({e['embed_wall_s']} s, {e['embed_cpu_s']} CPU s)")
    for row in report["ask"]:
        print(f"citebot ask on {row['corpus']}: peak RSS {row['peak_rss_mb']} MB ({row['seconds']} s)")
    for row in report["index"]:
        print(f"{row['what']}, {row['chunks']} chunks: peak RSS {row['peak_rss_mb']} MB ({row['seconds']} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
