"""Retrieval quality on a BEIR-layout dataset, through the same search the bot uses.

A dataset folder holds ``corpus.jsonl`` (``_id`` or ``id``, ``title``, ``text``), ``queries.jsonl`` (id, ``text``)
and ``qrels.tsv`` (``query-id``, ``corpus-id``, ``score``, with a header); its test split is the queries that
have judgements. The corpus is indexed into a collection of its own (incrementally, so a second run reuses
it), each query is searched, chunk hits are folded into document rankings, and ``pytrec_eval`` scores them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytrec_eval
from langchain_core.documents import Document

from retrieval.cleaning import clean
from retrieval.loaders import LoadedDocument
from retrieval.search import Mode, Searcher
from retrieval.settings import RetrievalSettings
from retrieval.types import Passage

logger = logging.getLogger(__name__)

# pytrec_eval measure -> the name we print. MRR@10 is recip_rank over runs cut at 10.
MEASURES = {"ndcg_cut_10": "nDCG@10", "recall_10": "Recall@10", "recall_100": "Recall@100"}
DEPTH = 100  # documents ranked per query: enough for Recall@100
_CHUNKS_PER_DOC = 2  # chunks fetched per document wanted, since a document may fill several ranks


@dataclass(frozen=True)
class Dataset:
    """A BEIR-layout dataset, restricted to the queries that have relevance judgements."""

    name: str
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def documents(self) -> Iterator[LoadedDocument]:
        """The corpus as loaded documents: title, blank line, text, cleaned as a text file is."""
        for doc_id, (title, text) in self.corpus.items():
            full = clean(f"{title}\n\n{text}" if title else text)
            yield LoadedDocument(
                source=doc_id,
                text=full,
                segments=[Document(page_content=full, metadata={"offset": 0})],
                metadata={"title": title or doc_id, "format": "beir"},
                content_hash=hashlib.sha256(full.encode()).hexdigest(),
            )


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        yield from (json.loads(line) for line in fh if line.strip())


def _id(record: dict[str, Any]) -> str:
    """BEIR writes ``_id``; many exports write ``id``."""
    return str(record["_id"] if "_id" in record else record["id"])


def load_beir(folder: Path) -> Dataset:
    """Read a BEIR-layout folder."""
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    corpus = {_id(r): (r.get("title") or "", r.get("text") or "") for r in _jsonl(folder / "corpus.jsonl")}
    queries = {_id(r): r["text"] for r in _jsonl(folder / "queries.jsonl") if _id(r) in qrels}
    return Dataset(folder.resolve().name, corpus, queries, {q: qrels[q] for q in queries})


def collection_name(dataset: str, settings_key: str) -> str:
    """A Chroma collection name for this dataset and index settings (names allow [a-zA-Z0-9._-])."""
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", dataset).strip("-")[:40] or "data"
    return f"eval-{slug}-{hashlib.sha256(settings_key.encode()).hexdigest()[:8]}"


def dataset_settings(dataset: Dataset, settings: RetrievalSettings) -> RetrievalSettings:
    """``settings`` pointed at the dataset's own collection, one per embedder and chunking."""
    key = f"{settings.embedder}/{settings.chunk_size}/{settings.chunk_overlap}"
    return settings.model_copy(update={"collection": collection_name(dataset.name, key)})


def doc_ranking(passages: Sequence[Passage], depth: int = DEPTH) -> dict[str, float]:
    """Fold ranked chunks into the top ``depth`` documents (a document ranks where its best chunk does)."""
    ranking: dict[str, float] = {}
    for passage in passages:
        if len(ranking) == depth:
            break
        ranking.setdefault(passage.source, float(depth - len(ranking)))
    return ranking


def score(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean nDCG@10, Recall@10, Recall@100 and MRR@10 of ``run`` over the queries in ``qrels``."""
    full = pytrec_eval.RelevanceEvaluator(qrels, set(MEASURES)).evaluate(run)
    cut = {q: dict(sorted(docs.items(), key=lambda kv: -kv[1])[:10]) for q, docs in run.items()}
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
    out = {name: statistics.fmean(full[q][m] if q in full else 0.0 for q in qrels) for m, name in MEASURES.items()}
    out["MRR@10"] = statistics.fmean(mrr[q]["recip_rank"] if q in mrr else 0.0 for q in qrels)
    return out


@dataclass
class ModeResult:
    mode: str
    metrics: dict[str, float]
    latencies_ms: list[float] = field(repr=False)

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.latencies_ms, n=20)[-1] if len(self.latencies_ms) > 1 else self.p50

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, **self.metrics, "latency_p50_ms": self.p50, "latency_p95_ms": self.p95}


def run_queries(
    searcher: Searcher, dataset: Dataset, mode: Mode, *, chunks: int = DEPTH * _CHUNKS_PER_DOC
) -> ModeResult:
    """Search every test query with ``mode`` and score the document rankings.

    Each search asks for ``chunks`` passages, so each side proposes at least that many candidates: enough
    for Recall@100 by default, more than the bot's own searches (``settings.candidates``) consider.
    """
    run: dict[str, dict[str, float]] = {}
    latencies = []
    searcher.search("warm-up", mode=mode)  # loads the model and the keyword index outside the timings
    for qid, text in dataset.queries.items():
        t0 = time.perf_counter()
        passages = searcher.search(text, k=chunks, mode=mode).passages
        latencies.append((time.perf_counter() - t0) * 1000)
        run[qid] = doc_ranking(passages)
    return ModeResult(mode, score(dataset.qrels, run), latencies)
