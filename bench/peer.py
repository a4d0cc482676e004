"""The peer: a plain LangChain RAG retriever beside our hybrid search, same corpus, same embedder, same queries.

    .venv/bin/python bench/peer.py ../shared/bench/scifact [--data DIR] [--peer-data DIR] [--k 10]

The peer is what a LangChain tutorial builds: ``langchain_chroma.Chroma`` with our ``LangChainEmbeddings``
(the same packaged model), filled with ``add_texts`` and queried with ``similarity_search(q, k)``. It holds
exactly our chunks (SciFact chunked with the default settings) and embeds them itself through LangChain, once
(kept in ``--peer-data``; about 15,000 chunks, tens of minutes on two shared cores). Ours is
``Pipeline.search`` over our own index of the same corpus in ``--data`` (built like ``citebot eval`` builds
it when missing). Both return ``k`` chunks per SciFact test claim, folded into document rankings and scored
with ``retrieval.evaluate.score``; our dense-only search runs too, as a check that the two stores agree. The
three run in one process, each question going to each in turn (order rotating), one warm-up first.
Results go to ``bench/results/peer.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import corpora
import numpy as np
from langchain_chroma import Chroma

from retrieval.chunking import split
from retrieval.evaluate import Dataset, dataset_settings, doc_ranking, load_beir, score
from retrieval.langchain_embeddings import LangChainEmbeddings
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from retrieval.types import Passage

logger = logging.getLogger(__name__)

PEER_COLLECTION = "langchain-scifact"
_ADD_STEP = 1000  # texts per add_texts call, so a long first run shows progress


def peer_store(data: Dataset, pipeline: Pipeline, directory: Path) -> tuple[Chroma, dict[str, Any]]:
    """The LangChain Chroma store holding our chunks, filled through LangChain on first use."""
    embeddings = LangChainEmbeddings(pipeline.store.embedder)
    store = Chroma(PEER_COLLECTION, embeddings, persist_directory=str(directory))
    settings = pipeline.settings
    chunks = [c for d in data.documents()
              for c in split(d, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)]
    if len(store.get(include=[])["ids"]) == len(chunks):
        return store, {"chunks": len(chunks), "indexed_now": False}
    store.reset_collection()
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(chunks), _ADD_STEP):
        batch = chunks[i : i + _ADD_STEP]
        store.add_texts([c.page_content for c in batch], [{"source": c.metadata["source"]} for c in batch],
                        ids=[f"{c.metadata['source']}:{c.metadata['chunk_index']}" for c in batch])
        logger.info("peer: %d of %d chunks added", i + len(batch), len(chunks))
    wall = time.perf_counter() - start
    return store, {"chunks": len(chunks), "indexed_now": True, "index_wall_s": wall,
                   "index_cpu_s": time.process_time() - cpu, "passages_per_s": len(chunks) / wall,
                   "load_average": os.getloadavg()}


def our_pipeline(data: Dataset, directory: Path) -> Pipeline:
    """Our index of the dataset in the collection ``citebot eval`` would use, built if incomplete."""
    defaults = RetrievalSettings(_env_file=None)  # type: ignore[call-arg]
    pipeline = Pipeline(corpora.settings_for(directory, dataset_settings(data, defaults).collection))
    report = pipeline.index_documents(f"beir:{data.name}", data.documents())
    logger.info("our index: %s", report.summary())
    return pipeline


def run(systems: dict[str, Callable[[str], list[str]]], queries: dict[str, str]) -> dict[str, Any]:
    """Every query through every system (order rotating): document rankings and milliseconds."""
    names = list(systems)
    runs: dict[str, dict[str, dict[str, float]]] = {n: {} for n in names}
    latencies: dict[str, list[float]] = {n: [] for n in names}
    for name in names:
        systems[name]("warm-up")
    for n, (qid, text) in enumerate(queries.items()):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            start = time.perf_counter()
            sources = systems[name](text)
            latencies[name].append((time.perf_counter() - start) * 1000)
            runs[name][qid] = doc_ranking([Passage(id=str(i), text="", metadata={"source": s})
                                           for i, s in enumerate(sources)])
    return {"runs": runs, "latencies": latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="BEIR-layout SciFact folder, e.g. ../shared/bench/scifact")
    parser.add_argument("--data", type=Path, default=Path("/tmp/citebot-bench/scifact-data"),
                        help="data directory of our index (built there when missing)")
    parser.add_argument("--peer-data", type=Path, default=corpora.RESULTS / "peer-data")
    parser.add_argument("--k", type=int, default=10, help="chunks each system returns per query")
    parser.add_argument("--out", type=Path, default=corpora.RESULTS / "peer.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data = load_beir(args.dataset)
    pipeline = our_pipeline(data, args.data)
    peer, peer_index = peer_store(data, pipeline, args.peer_data)
    k = args.k
    systems = {
        "langchain_similarity_search": lambda q: [d.metadata["source"] for d in peer.similarity_search(q, k=k)],
        "ours_hybrid": lambda q: [p.source for p in pipeline.searcher.search(q, k=k).passages],
        "ours_dense": lambda q: [p.source for p in pipeline.searcher.search(q, k=k, mode="dense").passages],
    }
    load_before = os.getloadavg()
    result = run(systems, data.queries)
    rows = {name: {**score(data.qrels, result["runs"][name]),
                   "p50_ms": float(np.percentile(result["latencies"][name], 50)),
                   "p95_ms": float(np.percentile(result["latencies"][name], 95))} for name in systems}
    peer_p50 = rows["langchain_similarity_search"]["p50_ms"]
    for row in rows.values():
        row["p50_over_peer"] = row["p50_ms"] / peer_p50
    report = {"date": time.strftime("%Y-%m-%d"), "code": corpora.code_state(),
              "k": k, "queries": len(data.queries), "peer_index": peer_index,
              "load_average_before": load_before, "load_average_after": os.getloadavg(), "results": rows}
    print(f"{'system':<30} nDCG@10  R@10   MRR@10  p50 ms  p95 ms  p50/peer   (k={k} chunks)")
    for name, r in rows.items():
        print(f"{name:<30} {r['nDCG@10']:.3f}    {r['Recall@10']:.3f}  {r['MRR@10']:.3f}  {r['p50_ms']:6.1f}  "
              f"{r['p95_ms']:6.1f}  {r['p50_over_peer']:.2f}")
    print(f"load average {load_before} before, {report['load_average_after']} after")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
