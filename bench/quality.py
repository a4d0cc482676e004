"""Retrieval quality on SciFact (or any BEIR-layout folder): the table, and the sweeps behind the defaults.

    CITEBOT_DATA_DIR=bench/results/data .venv/bin/python bench/quality.py ../shared/bench/scifact
    CITEBOT_DATA_DIR=bench/results/data .venv/bin/python bench/quality.py ../shared/bench/scifact --sweep

The table runs every judged query through the real ``Searcher``, as ``citebot eval`` does, into the same
collection (indexed on the first run, reused after): dense, BM25, hybrid with the configured settings, and
hybrid with reciprocal rank fusion (the former default). No PyPI package ships cross-encoder weights for
offline use (BENCHMARKS.md), so there is no hybrid + rerank row.

``--sweep`` also replays variants offline from each query's cosine similarity to every chunk and BM25 score
of every chunk, computed once: fusion method, weight and candidate depth; BM25 analyzer and parameters (one
index per variant); pseudo-relevance feedback on either side. The sweeps run on the test queries, so a value
they pick is tuned on the test set. Results: ``bench/results/quality.json`` and ``quality-sweep.json``
(``--name`` changes the name, e.g. for a run with other chunk settings, which indexes its own collection).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from retrieval import evaluate
from retrieval.keyword import analyze, keyword_text
from retrieval.pipeline import Pipeline
from retrieval.search import Mode, Searcher, rrf, score_fusion
from retrieval.settings import RetrievalSettings

logger = logging.getLogger(__name__)

RESULTS = Path(__file__).parent / "results"
# Table rows: (label, search mode, settings changed from the configured ones, as the bot searches).
# ``citebot eval`` asks each search for 200 chunks, so each side proposes 200 candidates (for Recall@100);
# the bot's own searches fuse ``candidates`` per side, which the "as the bot" rows keep (their Recall@100
# is then capped by the few documents returned).
ROWS: list[tuple[str, Mode, dict[str, Any], bool]] = [
    ("dense", "dense", {}, False),
    ("BM25", "keyword", {}, False),
    ("hybrid", "hybrid", {}, False),
    ("hybrid, RRF k=60", "hybrid", {"fusion": "rrf", "rrf_k": 60}, False),
    ("hybrid, as the bot", "hybrid", {}, True),
    ("hybrid, RRF, as the bot", "hybrid", {"fusion": "rrf", "rrf_k": 60}, True),
]
Ranker = Callable[[int], list[str]]  # query number -> chunk ids, best first


def open_dataset(folder: Path) -> tuple[evaluate.Dataset, Pipeline]:
    """The dataset and a pipeline on its own collection, indexed now unless it already is."""
    data = evaluate.load_beir(folder)
    pipeline = Pipeline(evaluate.dataset_settings(data, RetrievalSettings()))
    report = pipeline.index_documents(f"beir:{data.name}", data.documents())
    logger.info("%s in %s: %s", data.name, pipeline.store.name, report.summary())
    return data, pipeline


def table(data: evaluate.Dataset, pipeline: Pipeline) -> list[dict[str, Any]]:
    """One row per ``ROWS`` entry, through the real search path."""
    rows = []
    for label, mode, update, as_bot in ROWS:
        searcher = Searcher(pipeline.store, pipeline.settings.model_copy(update=update))
        chunks = {"chunks": searcher.settings.candidates} if as_bot else {}
        result = evaluate.run_queries(searcher, data, mode, **chunks)
        rows.append({"row": label, **result.to_dict()})
        logger.info("%s: %s", label, rows[-1])
    return rows


@dataclass
class Corpus:
    """Every chunk of the collection and every query, with what the offline sweeps replay."""

    qids: list[str]
    ids: list[str]  # chunk ids
    sources: list[str]  # each chunk's document
    texts: list[str]
    titles: list[str]
    vectors: np.ndarray  # chunk embeddings, (chunks, dim)
    query_vectors: np.ndarray  # (queries, dim)

    @classmethod
    def load(cls, data: evaluate.Dataset, pipeline: Pipeline) -> Corpus:
        ids = [c.id for c in pipeline.store.scan(documents=False)]
        chunks = [c for i in range(0, len(ids), 5000) for c in pipeline.store.get(ids[i : i + 5000], embeddings=True)]
        qids = list(data.queries)
        return cls(
            qids=qids,
            ids=[c.id for c in chunks],
            sources=[str(c.metadata["source"]) for c in chunks],
            texts=[c.text for c in chunks],
            titles=[str(c.metadata.get("title") or "") for c in chunks],
            vectors=np.asarray([c.embedding for c in chunks], dtype=np.float32),
            query_vectors=pipeline.store.embedder.embed([data.queries[q] for q in qids]),
        )

    def score(self, data: evaluate.Dataset, ranker: Ranker) -> dict[str, float]:
        """The metrics of ``ranker`` over every query, chunk hits folded into documents."""
        source = dict(zip(self.ids, self.sources, strict=True))
        run = {}
        for n, qid in enumerate(self.qids):
            ranking: dict[str, float] = {}
            for chunk_id in ranker(n):
                if len(ranking) == evaluate.DEPTH:
                    break
                ranking.setdefault(source[chunk_id], float(evaluate.DEPTH - len(ranking)))
            run[qid] = ranking
        return {k: round(v, 4) for k, v in evaluate.score(data.qrels, run).items()}


class Bm25:
    """A BM25 variant over the corpus: its own analyzer settings and bm25s parameters."""

    def __init__(
        self, corpus: Corpus, *, title: bool = True, stem: bool = True, stop_words: bool = True, **params: Any
    ) -> None:
        self.stem, self.stop_words = stem, stop_words
        texts = [keyword_text(t, ti) if title else t for t, ti in zip(corpus.texts, corpus.titles, strict=True)]
        self.tokens = [self.analyze(t) for t in texts]
        self.bm25 = bm25s.BM25(**params)
        self.bm25.index([t or [""] for t in self.tokens], show_progress=False)
        self.df = collections.Counter(term for tokens in self.tokens for term in set(tokens))

    def analyze(self, text: str) -> list[str]:
        return analyze(text, stem=self.stem, stop_words=self.stop_words)

    def scores(self, weights: dict[str, float]) -> np.ndarray:
        """Summed BM25 scores of weighted query terms, for every chunk."""
        total = np.zeros(len(self.tokens), dtype=np.float32)
        for term, weight in weights.items():
            if term in self.bm25.vocab_dict:
                total += weight * np.nan_to_num(self.bm25.get_scores([term]))
        return total

    def query_scores(self, texts: list[str]) -> np.ndarray:
        """(queries, chunks) BM25 scores of the query texts."""
        return np.stack([self.scores(dict(collections.Counter(self.analyze(t)))) for t in texts])


def _top(scores: np.ndarray, depth: int) -> np.ndarray:
    """Indices of the ``depth`` highest positive scores, best first."""
    top = np.argsort(-scores, kind="stable")[:depth]
    return top[scores[top] > 0]


def _zscores(scores: dict[str, float]) -> dict[str, float]:
    values = np.fromiter(scores.values(), dtype=np.float64)
    mean, std = values.mean(), values.std() or 1.0
    return {i: (s - mean) / std for i, s in scores.items()}


@dataclass(frozen=True)
class Fusion:
    """One way of fusing the two sides, as ``Searcher.search`` would with these settings."""

    method: str  # rrf, weighted-rrf, minmax (the library's score fusion) or zscore
    depth: int  # candidates per side
    weight: float = 0.5  # the dense side's share
    k: int = 60  # RRF constant

    def rank(self, corpus: Corpus, cosine: np.ndarray, bm25: np.ndarray) -> list[str]:
        """Chunk ids best first, from one query's cosine and BM25 scores of every chunk."""
        dense, keyword = np.argsort(-cosine)[: self.depth], _top(bm25, self.depth)
        union = {corpus.ids[n]: n for n in (*dense, *keyword)}
        cos = {i: float(cosine[n]) for i, n in union.items()}
        kw = {i: float(bm25[n]) for i, n in union.items()}
        if self.method == "minmax":
            fused = score_fusion(cos, kw, self.weight)
        elif self.method == "zscore":
            d, w = _zscores(cos), _zscores(kw)
            fused = {i: self.weight * d[i] + (1 - self.weight) * w[i] for i in union}
        else:  # rrf is weighted-rrf at weight 0.5, up to a factor
            d, w = rrf([[corpus.ids[n] for n in dense]], self.k), rrf([[corpus.ids[n] for n in keyword]], self.k)
            fused = {i: self.weight * d.get(i, 0.0) + (1 - self.weight) * w.get(i, 0.0) for i in union}
        return sorted(fused, key=fused.__getitem__, reverse=True)

    @property
    def label(self) -> str:
        if self.method == "rrf":
            return f"rrf k={self.k} depth={self.depth}"
        return f"{self.method} w={self.weight} depth={self.depth}" + (f" k={self.k}" if "rrf" in self.method else "")


def default_fusion(settings: RetrievalSettings) -> Fusion:
    """The fusion the configured ``Searcher`` does."""
    if settings.fusion == "rrf":
        return Fusion("rrf", settings.candidates, k=settings.rrf_k)
    return Fusion("minmax", settings.candidates, weight=settings.dense_weight)


def sweep_fusion(data: evaluate.Dataset, corpus: Corpus, cosine: np.ndarray, bm25: np.ndarray) -> list[dict[str, Any]]:
    """Every fusion variant of the grid, on the same candidates."""
    grid = [Fusion("rrf", depth, k=k) for depth in (30, 100, 200) for k in (10, 30, 60)]
    grid += [Fusion("weighted-rrf", 30, weight=w) for w in (0.3, 0.7)]
    grid += [Fusion(m, depth, weight=w) for m in ("minmax", "zscore") for depth in (30, 100, 200)
             for w in (0.3, 0.4, 0.5, 0.6, 0.7)]
    return [_row(f.label, corpus.score(data, lambda n, f=f: f.rank(corpus, cosine[n], bm25[n]))) for f in grid]


BM25_VARIANTS: dict[str, dict[str, Any]] = {
    "default (title on every chunk, stemmed, no stop words, lucene k1=1.5 b=0.75)": {},
    "title only in the first chunk": {"title": False},
    "no stemming": {"stem": False},
    "stop words kept": {"stop_words": False},
    **{f"k1={k1}": {"k1": k1} for k1 in (0.9, 1.2, 2.0)},
    **{f"b={b}": {"b": b} for b in (0.4, 0.6, 0.9)},
    **{f"method={m}": {"method": m} for m in ("robertson", "atire", "bm25l", "bm25+")},
}


def sweep_bm25(
    data: evaluate.Dataset, corpus: Corpus, cosine: np.ndarray, fusion: Fusion
) -> list[dict[str, Any]]:
    """Each BM25 variant alone and in the configured fusion."""
    rows = []
    queries = [data.queries[q] for q in corpus.qids]
    for label, options in BM25_VARIANTS.items():
        bm25 = Bm25(corpus, **options).query_scores(queries)
        alone = corpus.score(data, lambda n, s=bm25: [corpus.ids[i] for i in _top(s[n], evaluate.DEPTH * 2)])
        fused = corpus.score(data, lambda n, s=bm25: fusion.rank(corpus, cosine[n], s[n]))
        rows.append({**_row(f"BM25 {label}", alone), "hybrid": fused})
        logger.info("%s: BM25 %s, hybrid %s", label, alone["nDCG@10"], fused["nDCG@10"])
    return rows


def sweep_feedback(
    data: evaluate.Dataset, corpus: Corpus, cosine: np.ndarray, bm25: Bm25, fusion: Fusion
) -> list[dict[str, Any]]:
    """Pseudo-relevance feedback from the top fused chunks: Rocchio on the dense side, RM3 on the BM25 side."""
    queries = [data.queries[q] for q in corpus.qids]
    scores = bm25.query_scores(queries)
    position = {i: n for n, i in enumerate(corpus.ids)}

    def feedback(n: int, depth: int) -> list[int]:
        return [position[i] for i in fusion.rank(corpus, cosine[n], scores[n])[:depth]]

    rows = [_row("no feedback", corpus.score(data, lambda n: fusion.rank(corpus, cosine[n], scores[n])))]
    for depth in (3, 10):
        for beta in (0.3, 1.0):
            def rocchio(n: int, depth: int = depth, beta: float = beta) -> list[str]:
                vector = corpus.query_vectors[n] + beta * corpus.vectors[feedback(n, depth)].mean(axis=0)
                return fusion.rank(corpus, corpus.vectors @ (vector / np.linalg.norm(vector)), scores[n])
            rows.append(_row(f"Rocchio dense, top {depth}, beta {beta}", corpus.score(data, rocchio)))
        for terms in (10, 20):
            for mix in (0.3, 0.5):
                def rm3(n: int, depth: int = depth, terms: int = terms, mix: float = mix) -> list[str]:
                    weights = _rm3(bm25, queries[n], feedback(n, depth), terms, mix)
                    return fusion.rank(corpus, cosine[n], bm25.scores(weights))
                rows.append(_row(f"RM3 BM25, top {depth}, {terms} terms, mix {mix}", corpus.score(data, rm3)))
        logger.info("feedback depth %d done", depth)
    return rows


def _rm3(bm25: Bm25, query: str, feedback: list[int], terms: int, mix: float) -> dict[str, float]:
    """Query term weights: (1 - mix) of the query's own terms, ``mix`` of the feedback chunks' best terms."""
    n_docs = len(bm25.tokens)
    expansion: collections.Counter[str] = collections.Counter()
    for doc in feedback:
        counts = collections.Counter(bm25.tokens[doc])
        length = sum(counts.values()) or 1
        for term, tf in counts.items():
            expansion[term] += tf / length * math.log(n_docs / bm25.df[term]) / len(feedback)
    best = dict(expansion.most_common(terms))
    own = collections.Counter(bm25.analyze(query))
    weights = {t: (1 - mix) * c / max(sum(own.values()), 1) for t, c in own.items()}
    for term, weight in best.items():
        weights[term] = weights.get(term, 0.0) + mix * weight / (sum(best.values()) or 1.0)
    return weights


def _row(label: str, metrics: dict[str, float]) -> dict[str, Any]:
    return {"variant": label, **metrics}


def sweep(data: evaluate.Dataset, pipeline: Pipeline) -> dict[str, list[dict[str, Any]]]:
    """The offline sweeps: fusion, BM25 variants, pseudo-relevance feedback."""
    corpus = Corpus.load(data, pipeline)
    cosine = corpus.query_vectors @ corpus.vectors.T
    bm25 = Bm25(corpus)
    fusion = default_fusion(pipeline.settings)
    scores = bm25.query_scores([data.queries[q] for q in corpus.qids])
    logger.info("offline scores ready over %d chunks", len(corpus.ids))
    return {
        "fusion": sweep_fusion(data, corpus, cosine, scores),
        "bm25": sweep_bm25(data, corpus, cosine, fusion),
        "feedback": sweep_feedback(data, corpus, cosine, bm25, fusion),
    }


def _machine() -> dict[str, Any]:
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "load_average": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="BEIR-layout folder, e.g. ../shared/bench/scifact")
    parser.add_argument("--sweep", action="store_true", help="also run the offline sweeps")
    parser.add_argument("--no-table", action="store_true", help="skip the table (with --sweep)")
    parser.add_argument("--name", default="quality", help="results file name: NAME.json and NAME-sweep.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    data, pipeline = open_dataset(args.dataset)
    settings = pipeline.settings.model_dump(include={"embedder", "chunk_size", "chunk_overlap", "candidates",
                                                     "fusion", "dense_weight", "rrf_k"})
    header = {"dataset": data.name, "queries": len(data.queries), "settings": settings, "machine": _machine()}
    if not args.no_table:
        rows = table(data, pipeline)
        (RESULTS / f"{args.name}.json").write_text(json.dumps({**header, "rows": rows}, indent=2))
        for r in rows:
            print(f"{r['row']:<20} " + "  ".join(f"{k} {r[k]:.3f}" for k in evaluate.MEASURES.values())
                  + f"  MRR@10 {r['MRR@10']:.3f}  p50 {r['latency_p50_ms']:.0f} ms  p95 {r['latency_p95_ms']:.0f} ms")
    if args.sweep:
        results = sweep(data, pipeline)
        (RESULTS / f"{args.name}-sweep.json").write_text(json.dumps({**header, **results}, indent=2))
        for name, rows in results.items():
            print(f"\n{name}")
            for r in rows:
                print(f"  {r['variant']:<70} nDCG@10 {r['nDCG@10']:.4f}  R@10 {r['Recall@10']:.4f}"
                      + (f"  hybrid {r['hybrid']['nDCG@10']:.4f}" if "hybrid" in r else ""))


if __name__ == "__main__":
    main()
