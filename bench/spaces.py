"""What a document space costs: ask latency with a space's filter against none, and recall inside a space.

    .venv/bin/python bench/spaces.py ../shared/bench/scifact [--size 100000] [--queries 200] [--data DIR]
        [--skip-latency] [--skip-recall] [--filters] [--chroma-port P]

Latency: a recombined corpus (``bench/corpora.py``'s chunks and vectors) of ``--size`` chunks whose sources
sit in ten folders ``part0`` .. ``part9`` (chunk ``n`` in ``part{n % 10}``), so the space ``part3`` holds 10%
of the chunks. Every SciFact test claim (the first ``--queries``) is asked (``Pipeline.ask``, extractive)
without a scope and with the space, the order alternating per question so load hits both alike; one
warm-up each first. Reported: p50 and p95 of the answer and of the search alone, and the ratio of the p50s.

Filters (``--filters``): the dense side's two ways of searching a scope on the latency corpus, Chroma's
``where`` on the folder metadata and the catalog's chunk ids (``ids=``), for spaces of 1, 2, 3, 5 and 10 of the
ten folders: p50 of ``collection.query`` over 30 claims, the JSON size of the ids, and for 1 and 5 folders the
recall of both against the exact top 30 of the space (numpy over its stored vectors).

``--chroma-port P`` runs latency and filters through ``HttpClient`` against a Chroma server on 127.0.0.1:P,
which must serve the data directory's store (``chroma run --host 127.0.0.1 --port P --path DIR/chroma``).

Recall: SciFact's corpus cut in two halves by file order (folders ``a`` and ``b``), indexed once together
and once each on its own (the half's chunks and vectors copied from the full index, so the vectors are the
same). Each half's queries (those with a relevant document in it, judged on its documents only) are searched
with the half's scope on the full index and without a scope on the half's own index, per mode; reported are
the metrics of ``retrieval.evaluate`` for both and the share of queries whose top 10 documents are the same.
Results go to ``bench/results/spaces-<parts>.json`` (e.g. ``spaces-latency-recall.json``; ``-http`` with a
server).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

import corpora
import numpy as np
from langchain_core.documents import Document

from retrieval.evaluate import DEPTH, Dataset, doc_ranking, load_beir, score
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from retrieval.types import Scope, folder_of

logger = logging.getLogger(__name__)

DEFAULT_DATA = Path("/tmp/citebot-bench/spaces")
FOLDERS = 10
SPACE = Scope.of(["part3"])
TARGET_RATIO = 2.0  # a space's ask p50 over the unfiltered one, at most


def build_parts(dataset_dir: Path, data_dir: Path, size: int, port: int | None = None) -> Pipeline:
    """``bench/corpora.py``'s ``size``-chunk corpus with its sources spread over ten folders (through a Chroma
    server on ``port`` when given)."""
    settings = corpora.settings_for(data_dir, f"spaces-{size}")
    if port:
        settings = settings.model_copy(update={"chroma_host": "127.0.0.1", "chroma_port": port})
    pipeline = Pipeline(settings)
    if pipeline.store.count() == size:
        return pipeline
    parts = corpora.halves(dataset_dir)
    chunks, vectors = corpora.recombined(parts, corpora.half_vectors(parts, pipeline.store.embedder), size,
                                         pipeline.settings)
    for n, chunk in enumerate(chunks):
        chunk.metadata["source"] = f"part{n % FOLDERS}/{chunk.metadata['source']}"
    start = time.perf_counter()
    for i in range(0, size, 5000):
        pipeline.store.write(corpora.ROOT, chunks[i : i + 5000], vectors[i : i + 5000])
    logger.info("spaces-%d written in %.0f s", size, time.perf_counter() - start)
    return pipeline


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def latency(pipeline: Pipeline, questions: list[str]) -> dict[str, Any]:
    """Ask and search p50/p95 without a scope and with ``SPACE``, alternating which goes first."""
    rows: dict[str, list[float]] = {"ask": [], "ask_space": [], "search": [], "search_space": []}
    k = max(pipeline.settings.top_k, pipeline.settings.read_k)
    for scope in (None, SPACE):
        pipeline.ask("warm-up question", scope=scope)
    leaked = 0
    for n, question in enumerate(questions):
        for scope in ((None, SPACE) if n % 2 else (SPACE, None)):
            suffix = "" if scope is None else "_space"
            start = time.perf_counter()
            answer = pipeline.ask(question, scope=scope)
            rows["ask" + suffix].append(_ms(start))
            start = time.perf_counter()
            found = pipeline.search(question, k=k, scope=scope).passages
            rows["search" + suffix].append(_ms(start))
            if scope is not None:
                leaked += sum(not scope.covers(folder_of(p.source)) for p in found + answer.passages)
    out: dict[str, Any] = {name: {"p50": statistics.median(v), "p95": statistics.quantiles(v, n=20)[-1]}
                           for name, v in rows.items()}
    out["ask_ratio"] = out["ask_space"]["p50"] / out["ask"]["p50"]
    out["search_ratio"] = out["search_space"]["p50"] / out["search"]["p50"]
    out["passages_outside_the_space"] = leaked
    out["space_chunks"] = sum(c for f, (_, c) in pipeline.folders().items() if SPACE.covers(f))
    return out


def filters(pipeline: Pipeline, questions: list[str], k: int = 30) -> dict[str, Any]:
    """Chroma's ``where`` on the folders against the catalog's ids, per space size: p50 ms and recall."""
    collection = pipeline.store.client.get_collection(pipeline.store.name)
    queries = pipeline.embedder.embed(questions)

    def p50(**scope: Any) -> float:
        times = []
        for q in queries:
            start = time.perf_counter()
            collection.query(query_embeddings=[q], n_results=k, include=["distances"], **scope)
            times.append(_ms(start))
        return statistics.median(times)

    out: dict[str, Any] = {"unfiltered_ms": p50()}
    for n in (1, 2, 3, 5, 10):
        folders = [f"part{(3 + i) % FOLDERS}" for i in range(n)]
        start = time.perf_counter()
        ids = pipeline.store.catalog.ids_in(folders)
        row: dict[str, Any] = {"chunks": len(ids), "catalog_ids_ms": _ms(start),
                               "ids_json_kb": len(json.dumps(ids)) / 1024,
                               "where_ms": p50(where={"folder": {"$in": folders}}), "ids_ms": p50(ids=ids)}
        if n in (1, 5):
            row |= _filter_recall(collection, queries, ids, folders, k)
        out[f"{n}_folders"] = row
        logger.info("%d folders: %s", n, row)
    return out


def _filter_recall(collection: Any, queries: np.ndarray, ids: list[str], folders: list[str], k: int) -> dict[str, Any]:
    """Recall@k of both filters against the exact top k of the space, and any id outside it."""
    names, vectors = [], []
    for i in range(0, len(ids), 5000):  # Chroma's get refuses too many ids at once
        got = collection.get(ids=ids[i : i + 5000], include=["embeddings"])
        names += got["ids"]
        vectors += list(got["embeddings"])
    space = np.asarray(vectors, dtype=np.float32)
    space /= np.linalg.norm(space, axis=1, keepdims=True)
    inside, recall, outside = set(ids), {"where": [], "ids": []}, 0
    for q in queries:
        exact = {names[j] for j in np.argsort(-(space @ (q / np.linalg.norm(q))))[:k]}
        for name, scope in (("where", {"where": {"folder": {"$in": folders}}}), ("ids", {"ids": ids})):
            found = collection.query(query_embeddings=[q], n_results=k, include=["distances"], **scope)["ids"][0]
            recall[name].append(len(exact & set(found)) / k)
            outside += sum(i not in inside for i in found)
    return {"recall_where": statistics.fmean(recall["where"]), "recall_ids": statistics.fmean(recall["ids"]),
            "outside": outside}


def _halved(data: Dataset) -> dict[str, str]:
    """Each document's half: the first half of the corpus file in "a", the rest in "b"."""
    ids = list(data.corpus)
    return {doc_id: "a" if n < len(ids) // 2 else "b" for n, doc_id in enumerate(ids)}


def build_halves(data: Dataset, data_dir: Path, embedder: str) -> dict[str, Pipeline]:
    """The SciFact index of both halves ("all") and one per half, with the very same chunks and vectors."""
    half = _halved(data)

    def settings(name: str) -> RetrievalSettings:
        return corpora.settings_for(data_dir, f"spaces-scifact-{name}-{embedder}").model_copy(
            update={"embedder": embedder})

    full = Pipeline(settings("all"))
    docs = [dataclasses.replace(d, source=f"{half[d.source]}/{d.source}") for d in data.documents()]
    full.index_documents("bench:scifact-halves", docs)
    out = {"all": full}
    for name in ("a", "b"):
        own = Pipeline(settings(name), embedder=full.embedder)
        stored = list(full.store.scan(where={"folder": name}, embeddings=True))
        if own.store.count() != len(stored):
            if own.store.count():  # an earlier run's incomplete copy: start from an empty collection
                for collection in (own.store.name, f"{own.store.name}-documents"):
                    own.store.client.delete_collection(collection)
                own = Pipeline(settings(name), embedder=full.embedder)
            by_document: dict[str, list[Any]] = {}
            for c in stored:
                by_document.setdefault(str(c.metadata["source"]), []).append(c)
            # Whole documents per write: a write replaces every chunk of its documents, so a document cut
            # between two writes would keep only its second part.
            documents = list(by_document.values())
            for i in range(0, len(documents), 500):
                part = [c for document in documents[i : i + 500] for c in document]
                chunks = [Document(page_content=c.text, metadata={k: v for k, v in c.metadata.items()
                                                                   if k not in ("root", "folder")}) for c in part]
                own.store.write("bench:scifact-halves", chunks,
                                np.asarray([c.embedding for c in part], dtype=np.float32))
            assert own.store.count() == len(stored), "the half's own index must hold exactly its chunks"
        out[name] = own
    return out


def recall(data: Dataset, pipelines: dict[str, Pipeline]) -> dict[str, Any]:
    """Per half and mode: the metrics of the scoped search on the full index and of the half's own index."""
    half = _halved(data)
    out: dict[str, Any] = {}
    for name in ("a", "b"):
        qrels = {q: {d: r for d, r in rel.items() if half.get(d) == name} for q, rel in data.qrels.items()}
        qrels = {q: rel for q, rel in qrels.items() if rel}
        scope = Scope.of([name])
        for mode in ("dense", "keyword", "hybrid"):
            runs: dict[str, dict[str, dict[str, float]]] = {"space": {}, "own": {}}
            for qid in qrels:
                text = data.queries[qid]
                scoped = pipelines["all"].searcher.search(text, k=2 * DEPTH, mode=mode, scope=scope).passages
                own = pipelines[name].searcher.search(text, k=2 * DEPTH, mode=mode).passages
                runs["space"][qid] = {doc.split("/", 1)[1]: s for doc, s in doc_ranking(scoped).items()}
                runs["own"][qid] = {doc.split("/", 1)[1]: s for doc, s in doc_ranking(own).items()}
            same = statistics.fmean(_top(runs["space"][q]) == _top(runs["own"][q]) for q in qrels)
            out[f"{name}/{mode}"] = {"queries": len(qrels), "space": score(qrels, runs["space"]),
                                     "own_index": score(qrels, runs["own"]), "same_top10": same}
    return out


def _top(ranking: dict[str, float]) -> list[str]:
    return sorted(ranking, key=lambda d: -ranking[d])[:10]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="BEIR-layout SciFact folder, e.g. ../shared/bench/scifact")
    parser.add_argument("--size", type=int, default=100_000, help="chunks of the latency corpus")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-recall", action="store_true")
    parser.add_argument("--filters", action="store_true", help="also time where against ids per space size")
    parser.add_argument("--chroma-port", type=int, default=None,
                        help="latency and filters through a Chroma server on 127.0.0.1 serving DATA/chroma")
    parser.add_argument("--recall-embedder", default="minilm-l6-int8",
                        help="embedder of the recall indexes (the comparison holds for any; l3 is faster)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data = load_beir(args.dataset)
    result: dict[str, Any] = {"code": corpora.code_state(), "load_before": os.getloadavg()}
    questions = list(data.queries.values())
    if not args.skip_latency or args.filters:
        pipeline = build_parts(args.dataset, args.data, args.size, args.chroma_port)
        result["client"] = "http" if args.chroma_port else "embedded"
    if not args.skip_latency:
        result["latency"] = {"size": pipeline.store.count(), **latency(pipeline, questions[: args.queries])}
        print(json.dumps(result["latency"], indent=1))
    if args.filters:
        result["filters"] = filters(pipeline, questions[:30])
        print(json.dumps(result["filters"], indent=1))
    if not args.skip_recall:
        result["recall"] = {"embedder": args.recall_embedder,
                            **recall(data, build_halves(data, args.data, args.recall_embedder))}
        print(json.dumps(result["recall"], indent=1))
    result["load_after"] = os.getloadavg()
    parts = [name for name, run in (("latency", not args.skip_latency), ("filters", args.filters),
                                    ("recall", not args.skip_recall), ("http", args.chroma_port)) if run]
    path = corpora.RESULTS / f"spaces-{'-'.join(parts)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
