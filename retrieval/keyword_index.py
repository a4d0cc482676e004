"""The keyword side in memory: the catalog's terms as numpy postings, ranked by FTS5's BM25, kept in step.

The catalog's FTS5 table stays the durable index every process shares; ranking a question there cost 4.3 ms
at 10k chunks, because FTS5 computes ``bm25()`` for every matching row before it returns one (BENCHMARKS.md,
"Search against e0e347b"). Here each term's postings (chunk slot, term frequency) are numpy arrays and a
question costs a few array operations per term. The scores are FTS5's own, operation for operation
(``_contribution``): the same k1 and b, the same IDF clamped at 1e-6, the catalog's padding rows counted in the
row count and the average length, and the same pruning of common terms; a scope is scored with its own
statistics, as an index of its documents alone would score it.

Keeping in step: every catalog change logs the documents it touched (``Catalog.changed_since``). Before a query
the index compares the log's last number with its own and, when another thread or process changed the
catalog, drops the changed documents' chunks and reads their current ones: a change costs its documents. New
chunks go to a small second segment and removed ones are masked out until the two segments are merged, which
happens once the changes since the last merge reach a tenth of the index (``_MERGE_SHARE``).
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.catalog import PAD_ROWS, PAD_TERMS, Catalog, IndexedChunk
from retrieval.keyword import analyze

# FTS5's bm25() parameters (fixed in SQLite).
_K1, _B = 1.2, 0.75
# A term in more than this share of the chunks (and in more than _COMMON_MIN of them) weighs at most
# log(5.7) against 6-10 for the terms that decide the ranking, so it is left out of the query: SciFact hybrid
# nDCG@10 0.740 instead of 0.735, and a third of FTS5's time at 100k chunks (BENCHMARKS.md, "Live index").
_COMMON_SHARE = 0.15
_COMMON_MIN = 1000
# Merge the second segment (and drop removed chunks' postings) once the chunks added or removed since the
# last merge pass this share of the index or _MERGE_MIN: a merge copies every posting (about 0.1 s at 100k).
_MERGE_SHARE = 0.1
_MERGE_MIN = 1000


@dataclass
class _Segment:
    """Postings sorted by term id: ``terms[n]`` holds ``slots[n]`` ``freqs[n]`` times."""

    terms: np.ndarray
    slots: np.ndarray
    freqs: np.ndarray

    @classmethod
    def empty(cls) -> _Segment:
        return cls(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32))

    @classmethod
    def of(cls, terms: np.ndarray, slots: np.ndarray, freqs: np.ndarray) -> _Segment:
        order = np.argsort(terms, kind="stable")  # a merge's input is two sorted runs: linear
        return cls(terms[order], slots[order], freqs[order])

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        # the bounds in the terms' own dtype: another one makes numpy convert the whole array first
        lo, hi = self.terms.searchsorted(np.array([term, term + 1], self.terms.dtype))
        return self.slots[lo:hi], self.freqs[lo:hi]


class KeywordIndex:
    """BM25 over the catalog's chunks, held in memory; safe to share between threads.

    Args:
        catalog: the catalog it loads from (on the first query) and follows.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._seq: int | None = None  # the last catalog change applied; None: nothing loaded yet
        self._reset()

    def _reset(self) -> None:
        self._vocabulary: dict[str, int] = {}
        self._base = self._added = _Segment.empty()
        # (term, slot, freq) of the postings added since ``_added`` was sorted: C ints, 12 bytes a posting (a
        # full load of 100k chunks adds 7 million)
        self._pending = tuple(array("i") for _ in range(3))
        self._ids: list[str] = []
        self._slot_of: dict[str, int] = {}
        self._documents: dict[tuple[str, str], list[int]] = {}
        self._length = np.zeros(0, np.float64)
        self._folder = np.zeros(0, np.int32)
        self._alive = np.zeros(0, bool)
        self._folders: dict[str, int] = {}
        self._free: list[int] = []
        self._live = self._tokens = self._changed = 0
        self._scopes: dict[tuple[str, ...], tuple[np.ndarray, int, int]] = {}

    def search(self, query: str, k: int, folders: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """Up to ``k`` (chunk id, BM25 score) pairs for ``query``, best first (equal scores by chunk id); only
        chunks of ``folders`` when given, scored with the statistics of those folders alone."""
        return self.rank(query, k, folders)[0]

    def rank(
        self, query: str, k: int, folders: Sequence[str] | None = None, *, scored: Collection[str] = (),
        depth: int = 0,
    ) -> tuple[list[tuple[str, float]], dict[str, float]]:
        """``search(query, k, folders)``, and the BM25 score of each id of ``scored`` that ranks among the best
        ``depth`` (one ranked lower, or matching no term, is left out: it counts as scoring 0)."""
        if k <= 0 or (folders is not None and not folders):
            return [], {}
        terms = analyze(query)
        with self._lock:
            self._follow()
            if not terms:
                return [], {}
            mask, rows, tokens = self._scope(folders)
            scores = self._scores(terms, mask, rows, tokens)
            matched = np.flatnonzero(scores > 0)
            values = scores[matched]
            low = _nth_best(values, k)  # every tie of the k-th best is read, so ties rank by chunk id
            ranking = sorted(((self._ids[s], float(scores[s])) for s in matched[values >= low]),
                             key=_best_first)[:k]
            floor = _nth_best(values, depth)
            slots = ((i, self._slot_of.get(i)) for i in scored)
            found = {i: float(scores[s]) for i, s in slots if s is not None and scores[s] > 0 and scores[s] >= floor}
        return ranking, found

    def _scores(self, terms: list[str], mask: np.ndarray, rows: int, tokens: int) -> np.ndarray:
        """Every slot's BM25 score for ``terms`` over the chunks of ``mask`` (0 for the rest), as FTS5 computes
        it for a table of ``rows`` chunks holding ``tokens`` terms, plus the catalog's padding rows."""
        postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term in set(terms):
            number = self._vocabulary.get(term)
            parts = [segment.postings(number) for segment in (self._base, self._added)] if number is not None else []
            slots = np.concatenate([s for s, _ in parts]) if parts else np.zeros(0, np.int32)
            freqs = np.concatenate([f for _, f in parts]) if parts else np.zeros(0, np.int32)
            inside = mask[slots]
            postings[term] = slots[inside], freqs[inside].astype(np.float64)
        common = max(_COMMON_MIN, _COMMON_SHARE * rows)
        kept = [t for t in terms if len(postings[t][0]) <= common] or terms  # a repeated term counts each time
        n_rows = rows + PAD_ROWS
        average = (tokens + PAD_ROWS * PAD_TERMS) / n_rows
        scores = np.zeros(len(self._ids), np.float64)
        for term in kept:
            slots, freqs = postings[term]
            scores[slots] += _contribution(n_rows, len(slots), freqs, self._length[slots], average)
        return scores

    def _scope(self, folders: Sequence[str] | None) -> tuple[np.ndarray, int, int]:
        """Which slots count (live, and in ``folders`` when given), how many chunks that is and their terms."""
        if folders is None:
            return self._alive, self._live, self._tokens
        key = tuple(sorted(folders))
        if key not in self._scopes:  # emptied whenever the index changes
            codes = [self._folders[f] for f in key if f in self._folders]
            mask = self._alive & np.isin(self._folder, codes)
            self._scopes[key] = mask, int(mask.sum()), int(self._length[mask].sum())
        return self._scopes[key]

    def _follow(self) -> None:
        """Apply the catalog's changes since the last look: the changed documents only, or everything when the
        index is not loaded yet or the log no longer reaches back to it."""
        seq = self.catalog.last_change()
        if seq == self._seq:
            return
        with self.catalog.reading():
            seq = self.catalog.last_change()
            changed = self.catalog.changed_since(self._seq) if self._seq is not None else None
            if changed is None:
                self._reset()
                self._add(self.catalog.indexed())
            else:
                for key in changed:
                    self._drop(key)
                self._add(self.catalog.indexed(changed))
        self._seq = seq
        self._scopes.clear()
        if self._changed > max(_MERGE_MIN, _MERGE_SHARE * self._live):
            self._merge()
        elif self._pending[0]:
            self._added = _Segment.of(*self._with_pending(self._added))

    def _with_pending(self, segment: _Segment) -> list[np.ndarray]:
        """The segment's postings followed by the pending ones (terms, slots, freqs), which are then cleared."""
        pending = [np.frombuffer(p, np.int32) for p in self._pending]
        joined = [np.concatenate(p) for p in zip((segment.terms, segment.slots, segment.freqs), pending, strict=True)]
        self._pending = tuple(array("i") for _ in range(3))
        return joined

    def _add(self, chunks: Iterable[IndexedChunk]) -> None:
        vocabulary = self._vocabulary
        terms, slots, freqs = self._pending
        for chunk in chunks:
            if self._free:
                slot = self._free.pop()
                self._ids[slot] = chunk.id
            else:
                slot = len(self._ids)
                self._ids.append(chunk.id)
                if slot >= len(self._alive):
                    self._resize(max(1024, 2 * slot))
            self._slot_of[chunk.id] = slot
            self._documents.setdefault((chunk.root, chunk.source), []).append(slot)
            self._length[slot] = len(chunk.terms)
            self._folder[slot] = self._folders.setdefault(chunk.folder, len(self._folders))
            self._alive[slot] = True
            self._live += 1
            self._tokens += len(chunk.terms)
            self._changed += 1
            counts = Counter(chunk.terms)
            terms.extend([vocabulary.setdefault(term, len(vocabulary)) for term in counts])
            slots.extend([slot] * len(counts))
            freqs.extend(counts.values())

    def _drop(self, key: tuple[str, str]) -> None:
        """Mask out a document's chunks; their postings stay (masked) until the next merge."""
        for slot in self._documents.pop(key, []):
            self._alive[slot] = False
            del self._slot_of[self._ids[slot]]
            self._live -= 1
            self._tokens -= int(self._length[slot])
            self._changed += 1

    def _merge(self) -> None:
        """One segment of the live chunks' postings; the removed chunks' slots become free."""
        added = self._with_pending(self._added)
        parts = [np.concatenate(p) for p in zip((self._base.terms, self._base.slots, self._base.freqs), added,
                                                strict=True)]
        live = self._alive[parts[1]]
        self._base = _Segment.of(*(p[live] for p in parts))
        self._added, self._changed = _Segment.empty(), 0
        self._free = [int(s) for s in np.flatnonzero(~self._alive[: len(self._ids)])]

    def _resize(self, size: int) -> None:
        self._length = np.resize(self._length, size)
        self._folder = np.resize(self._folder, size)
        alive = np.zeros(size, bool)
        alive[: len(self._alive)] = self._alive
        self._alive = alive


def _contribution(rows: int, hits: int, freqs: np.ndarray, lengths: np.ndarray, average: float) -> np.ndarray:
    """One query term's part of each chunk's score, in the order of operations of SQLite's fts5Bm25Function
    (fts5_aux.c), so the sums are FTS5's to the last bit: IDF log((N - n + 0.5) / (n + 0.5)), at least 1e-6."""
    idf = math.log((rows - hits + 0.5) / (hits + 0.5))
    idf = idf if idf > 0.0 else 1e-6
    return idf * ((freqs * (_K1 + 1.0)) / (freqs + _K1 * (1 - _B + _B * lengths / average)))


def _best_first(scored: tuple[str, float]) -> tuple[float, str]:
    return -scored[1], scored[0]


def _nth_best(scores: np.ndarray, n: int) -> float:
    """The ``n``-th highest of ``scores`` (the lowest when there are fewer; above all of them when ``n`` is 0)."""
    if n <= 0 or not len(scores):
        return math.inf
    if n >= len(scores):
        return float(scores.min())
    return float(np.partition(scores, len(scores) - n)[len(scores) - n])
