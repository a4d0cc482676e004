"""BM25 as SQLite's FTS5 computes it, for the scores FTS5 cannot give itself: a scope ranked with its own
statistics (``catalog``) and the in-memory index (``keyword_index``). Both rank exactly as FTS5 would."""

from __future__ import annotations

import math

import numpy as np

# FTS5's bm25() parameters (fixed in SQLite).
K1, B = 1.2, 0.75
# FTS5 scores every row holding any question term, and that is what a query costs (66 ms at 100k chunks).
# A term in more than this share of the chunks (and in more than COMMON_MIN of them) weighs at most
# log(5.7) against 6-10 for the terms that decide the ranking, so it is left out of the query: a third of
# the time at 100k chunks, and SciFact hybrid nDCG@10 0.740 instead of 0.735 (BENCHMARKS.md, "Live index").
COMMON_SHARE = 0.15
COMMON_MIN = 1000


def common(chunks: int) -> float:
    """How many chunks a term may be in before it is too common to be searched for."""
    return max(COMMON_MIN, COMMON_SHARE * chunks)


def contribution(rows: int, hits: int, freqs, lengths, average: float):
    """One query term's part of each chunk's score (numbers or numpy arrays), in the order of operations of
    SQLite's fts5Bm25Function (fts5_aux.c), so the sums are FTS5's to the last bit: IDF log((N - n + 0.5) /
    (n + 0.5)), at least 1e-6."""
    idf = math.log((rows - hits + 0.5) / (hits + 0.5))
    idf = idf if idf > 0.0 else 1e-6
    return idf * ((freqs * (K1 + 1.0)) / (freqs + K1 * (1 - B + B * lengths / average)))


def best(scores: dict[str, float], k: int) -> list[tuple[str, float]]:
    """The ``k`` best (chunk id, score) pairs, best first, equal scores by chunk id."""
    return sorted(scores.items(), key=_best_first)[:k]


def nth_best(scores: np.ndarray, n: int) -> float:
    """The ``n``-th highest of ``scores`` (the lowest when there are fewer; above all of them when ``n`` is 0)."""
    if n <= 0 or not len(scores):
        return math.inf
    if n >= len(scores):
        return float(scores.min())
    return float(np.partition(scores, len(scores) - n)[len(scores) - n])


def _best_first(scored: tuple[str, float]) -> tuple[float, str]:
    return -scored[1], scored[0]
