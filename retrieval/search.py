"""Hybrid search: dense (Chroma) and keyword (BM25 in memory, ``keyword_index``) candidates, fused into one ranking.

The default fusion (``fusion="score"``) is a convex combination of min-max normalised scores: every
candidate either side proposes gets both its cosine similarity and its BM25 score (the side that did not
propose it is asked for its score), each scaled so the best candidate counts 1 and the worst 0, and
``dense_weight`` sets the mix. ``fusion="rrf"`` is reciprocal rank fusion. BENCHMARKS.md has the figures
behind the choice. Every returned passage carries its cosine similarity to the question, also for passages
only the keyword side found, because the answerer's "do the documents answer this?" threshold is a cosine
threshold.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from retrieval import acronyms
from retrieval.settings import RetrievalSettings
from retrieval.store import ChunkStore, StoredChunk
from retrieval.types import Passage, Scope

logger = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "keyword"]
# How often a search looks at the store's generation (one small read) for other writers' changes. This
# process's own writes reach the keyword catalog as they commit; another process's within this many seconds.
_RECHECK_SECONDS = 1.0
# How deep the keyword ranking is read for the BM25 scores of the dense side's candidates. A separate query
# for their scores made FTS5 score the whole matching corpus a second time (30 ms of 86 at 100k chunks).
_SCORED = 1000


def rrf(rankings: list[list[str]], k: int) -> dict[str, float]:
    """Reciprocal rank fusion: each id scores the sum of 1 / (k + rank) over the rankings it appears in."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return scores


def minmax(scores: dict[str, float]) -> dict[str, float]:
    """Scores scaled to [0, 1]: the best counts 1, the worst 0 (all 1 when they are equal)."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    span = high - low
    return {i: (s - low) / span if span > 0 else 1.0 for i, s in scores.items()}


def score_fusion(dense: dict[str, float], keyword: dict[str, float], dense_weight: float) -> dict[str, float]:
    """``dense_weight`` times the normalised dense score plus the rest times the normalised keyword score.

    Both dicts should score the same ids; an id one side lacks counts as that side's worst.
    """
    d, kw = minmax(dense), minmax(keyword)
    return {i: dense_weight * d.get(i, 0.0) + (1 - dense_weight) * kw.get(i, 0.0) for i in d.keys() | kw.keys()}


@dataclass
class SearchResult:
    passages: list[Passage]
    timings: dict[str, float] = field(default_factory=dict)
    question: str = ""  # what was searched: the question, its acronyms spelled out where the documents do


class Searcher:
    """Searches one store; keeps the store's keyword catalog in step with its generation."""

    def __init__(self, store: ChunkStore, settings: RetrievalSettings) -> None:
        self.store = store
        self.settings = settings
        self._checked = -_RECHECK_SECONDS  # time.monotonic() of the last look at the store's generation
        self._lock = threading.Lock()

    def catch_up(self, *, now: bool = False) -> None:
        """Apply other writers' changes to the keyword catalog (at most every ``_RECHECK_SECONDS``)."""
        with self._lock:
            if not now and time.monotonic() - self._checked < _RECHECK_SECONDS:
                return
            self._checked = time.monotonic()
        self.store.catch_up()

    def search(self, question: str, *, k: int | None = None, mode: Mode = "hybrid",
               scope: Scope | None = None) -> SearchResult:
        """The best ``k`` passages (settings.top_k by default) for ``question``, best first.

        ``mode`` "dense" or "keyword" ranks by one side only (for benchmarks); "hybrid" fuses both. With a
        ``scope``, both sides search only its folders: the passages are the scope's best, and none is outside.
        """
        k = k or self.settings.top_k
        self.catch_up()
        folders = self.store.folders(scope)
        found = self._search(question, k, mode, folders)
        # An acronym the passages spell out is searched again with its long form, which the embedder knows; the
        # keyword side keeps the question's own words (BM25 matches the acronym itself, and the long form's
        # words would outweigh the question's: SciFact nDCG@10 0.730 with them, BENCHMARKS "Reader").
        forms = {
            short: long for short, long in acronyms.long_forms(question, (p.text for p in found.passages)).items()
            if long.lower() not in question.lower()
        }
        if not forms:
            return found
        again = self._search(acronyms.expand(question, forms), k, mode, folders, keyword_question=question)
        again.timings = {name: again.timings[name] + found.timings[name] for name in again.timings}
        return again

    def _search(self, question: str, k: int, mode: Mode, folders: list[str] | None,
                keyword_question: str | None = None) -> SearchResult:
        candidates = max(k, self.settings.candidates)
        t0 = time.perf_counter()
        query = self.store.embedder.embed([question])[0]
        t1 = time.perf_counter()
        dense = self.store.query(query, candidates, folders) if mode != "keyword" else []
        t2 = time.perf_counter()
        # One keyword query: its best ``candidates`` are the keyword side's proposals, and the dense side's
        # proposals get their scores if they rank among its best ``_SCORED`` (one below scores 0, as one sharing
        # no term does).
        cosine = dict(dense)
        keyword, bm25 = self.store.keyword_rank(keyword_question or question, candidates, folders,
                                                scored=cosine.keys(), depth=_SCORED) if mode != "dense" else ([], {})
        bm25 |= dict(keyword)
        t3 = time.perf_counter()
        # Ids and scores first; texts and metadata only for the ``k`` passages kept (BENCHMARKS.md, Latency).
        missing = [i for i, _ in keyword if i not in cosine]
        cosine |= {i: float(np.dot(query, v)) for i, v in self.store.vectors(missing).items()}
        fused = self._fuse(
            [i for i, _ in dense], [i for i, _ in keyword], cosine, {i: bm25.get(i, 0.0) for i in cosine}, mode
        )
        ranked = sorted((i for i in fused if i in cosine), key=fused.__getitem__, reverse=True)[:k]
        dense_rank = {i: r for r, (i, _) in enumerate(dense, start=1)}
        keyword_rank = {i: r for r, (i, _) in enumerate(keyword, start=1)}
        passages = [  # a chunk deleted since the ranking is left out
            _passage(chunk, fused[chunk.id], cosine[chunk.id], dense_rank.get(chunk.id), keyword_rank.get(chunk.id))
            for chunk in self.store.chunks(ranked)
        ]
        timings = {"embed": t1 - t0, "dense": t2 - t1, "keyword": t3 - t2, "fuse": time.perf_counter() - t3}
        return SearchResult(passages, timings, question)

    def _fuse(
        self,
        dense: list[str],
        keyword: list[str],
        cosine: dict[str, float],
        bm25: dict[str, float],
        mode: Mode,
    ) -> dict[str, float]:
        """One score per candidate: a single side's own score, or the configured fusion of both."""
        if mode == "dense":
            return {i: cosine[i] for i in dense}
        if mode == "keyword":
            return {i: bm25[i] for i in keyword}
        if self.settings.fusion == "rrf":
            return rrf([dense, keyword], self.settings.rrf_k)
        return score_fusion(cosine, bm25, self.settings.dense_weight)


def _passage(chunk: StoredChunk, score: float, cosine: float, dense_rank, keyword_rank) -> Passage:
    return Passage(
        id=chunk.id,
        text=chunk.text,
        metadata=chunk.metadata,
        score=score,
        dense_score=cosine,
        dense_rank=dense_rank,
        keyword_rank=keyword_rank,
    )
