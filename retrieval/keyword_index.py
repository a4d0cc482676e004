"""The keyword side in memory: the catalog's terms as numpy postings, ranked by FTS5's BM25, kept in step.

The catalog's FTS5 table stays the durable index every process shares; ranking a question there cost 4.3 ms
at 10k chunks, because FTS5 computes ``bm25()`` for every matching row before it returns one (BENCHMARKS.md,
"Search against e0e347b"). Here each term's postings (chunk slot, term frequency) are numpy arrays and a
question costs a few array operations per term. The scores are FTS5's own, operation for operation
(``bm25.contribution``): the same k1 and b, the same IDF clamped at 1e-6, the catalog's padding rows counted in the
row count and the average length, and the same pruning of common terms; a scope is scored with its own
statistics, as an index of its documents alone would score it.

Loading reads every chunk's terms (0.5-0.6 CPU-s at 10k chunks, 6.5 s at 100k), more than a one-shot
``citebot ask`` should pay, so a process's first question is ranked by the catalog's FTS5 query (the same
scores) and its second starts the load in a thread of its own; FTS5 answers until the load is done.

Keeping in step: every catalog change logs the documents it touched (``Catalog.changed_since``). Before a query
the index compares the log's last number with its own and, when another thread or process changed the
catalog, drops the changed documents' chunks and reads their current ones: a change costs its documents. New
chunks go to a small second segment and removed ones are masked out until the two segments are merged, which
happens once the changes since the last merge reach a tenth of the index (``_MERGE_SHARE``).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence

import numpy as np

from retrieval.bm25 import best, common, contribution, nth_best
from retrieval.catalog import PAD_ROWS, PAD_TERMS, Catalog, IndexedChunk
from retrieval.keyword import analyze

logger = logging.getLogger(__name__)

# Merge the second segment (and drop removed chunks' postings) once the chunks added or removed since the
# last merge pass this share of the index or _MERGE_MIN: a merge copies every posting.
_MERGE_SHARE = 0.1
_MERGE_MIN = 1000


class _Segment:
    """Postings grouped by term id: term ``t`` holds ``slots[starts[t]:starts[t + 1]]``, each ``freqs`` times."""

    def __init__(self, terms: np.ndarray, slots: np.ndarray, freqs: np.ndarray, n_terms: int) -> None:
        order = np.argsort(terms, kind="stable")  # a merge's input is two sorted runs: linear
        self.slots = slots[order].astype(np.int32)
        # 2 bytes a frequency unless a chunk repeats a term 65,536 times
        self.freqs = freqs[order].astype(np.uint16 if freqs.max(initial=0) < 2**16 else np.int32)
        self.starts = np.zeros(n_terms + 1, np.int64)
        np.cumsum(np.bincount(terms, minlength=n_terms), out=self.starts[1:])

    def postings_by_term(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every posting as (term, slot, freq) arrays, in term order."""
        terms = np.repeat(np.arange(len(self.starts) - 1, dtype=np.int32), np.diff(self.starts))
        return terms, self.slots, self.freqs.astype(np.int32)

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        if term + 1 >= len(self.starts):
            return self.slots[:0], self.freqs[:0]
        lo, hi = self.starts[term], self.starts[term + 1]
        return self.slots[lo:hi], self.freqs[lo:hi]


class _Memory:
    """The postings of every chunk of the settled documents, and what BM25 needs of each chunk."""

    def __init__(self) -> None:
        self.vocabulary: defaultdict[str, int] = defaultdict(itertools.count().__next__)  # term -> its id
        empty = np.zeros(0, np.int32)
        self.base = self.added = _Segment(empty, empty, empty, 0)
        # postings added since ``added`` was built, as C ints (no Python int per posting: a load adds millions)
        self.pending_terms, self.pending_freqs = array("i"), array("i")
        self.pending_slots: list[int] = []  # one per chunk, with how many postings it added
        self.pending_widths: list[int] = []
        self.ids: list[str] = []
        self.slot_of: dict[str, int] = {}
        self.documents: dict[tuple[str, str], list[int]] = {}
        self.length = np.zeros(1024, np.float64)
        self.folder = np.zeros(1024, np.int32)
        self.alive = np.zeros(1024, bool)
        self.folders: dict[str, int] = {}
        self.free: list[int] = []
        self.live = self.tokens = self.changed = 0
        self.scopes: dict[tuple[str, ...], tuple[np.ndarray, int, int]] = {}

    def add(self, chunks: Iterable[IndexedChunk]) -> None:
        term_id = self.vocabulary.__getitem__
        # Python lists take the postings (extending an array item by item cost 3x more), moved into the
        # arrays every 1,024 chunks so a load never holds a Python int per posting
        terms: list[int] = []
        freqs: list[int] = []
        for n, chunk in enumerate(chunks, start=1):
            if self.free:
                slot = self.free.pop()
                self.ids[slot] = chunk.id
            else:
                slot = len(self.ids)
                self.ids.append(chunk.id)
                if slot >= len(self.alive):
                    self._grow(2 * slot)
            self.slot_of[chunk.id] = slot
            self.documents.setdefault((chunk.root, chunk.source), []).append(slot)
            self.length[slot] = len(chunk.terms)
            self.folder[slot] = self.folders.setdefault(chunk.folder, len(self.folders))
            self.alive[slot] = True
            self.live += 1
            self.tokens += len(chunk.terms)
            self.changed += 1
            counts = Counter(chunk.terms)
            terms += map(term_id, counts)
            freqs += counts.values()
            self.pending_slots.append(slot)
            self.pending_widths.append(len(counts))
            if n % 1024 == 0:
                self.pending_terms.frombytes(np.array(terms, np.int32).tobytes())
                self.pending_freqs.frombytes(np.array(freqs, np.int32).tobytes())
                terms, freqs = [], []
        self.pending_terms.frombytes(np.array(terms, np.int32).tobytes())
        self.pending_freqs.frombytes(np.array(freqs, np.int32).tobytes())

    def drop(self, key: tuple[str, str]) -> None:
        """Mask out a document's chunks; their postings stay (masked) until the next merge."""
        for slot in self.documents.pop(key, []):
            self.alive[slot] = False
            del self.slot_of[self.ids[slot]]
            self.live -= 1
            self.tokens -= int(self.length[slot])
            self.changed += 1

    def settle(self) -> None:
        """Index the pending postings: into the second segment, or all into one when enough has changed."""
        self.scopes.clear()
        if self.changed > max(_MERGE_MIN, _MERGE_SHARE * self.live):
            parts = [np.concatenate(p) for p in zip(self.base.postings_by_term(), self.added.postings_by_term(),
                                                    self._pending(), strict=True)]
            live = self.alive[parts[1]]
            self.base = _Segment(*(p[live] for p in parts), len(self.vocabulary))
            self.added = _Segment(*(p[:0] for p in parts), 0)
            self.changed = 0
            self.free = [int(s) for s in np.flatnonzero(~self.alive[: len(self.ids)])]
        elif self.pending_slots:
            parts = [np.concatenate(p) for p in zip(self.added.postings_by_term(), self._pending(), strict=True)]
            self.added = _Segment(*parts, len(self.vocabulary))

    def scores(self, terms: list[str], folders: Sequence[str] | None) -> np.ndarray:
        """Every slot's BM25 score for ``terms`` over the chunks of ``folders`` (all when None; 0 for the
        rest), as FTS5 computes it for a table of those chunks and the catalog's padding rows."""
        mask, rows, tokens = self._scope(folders)
        postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term in set(terms):
            number = self.vocabulary.get(term)
            parts = [s.postings(number) for s in (self.base, self.added)] if number is not None else []
            slots = np.concatenate([s for s, _ in parts]) if parts else np.zeros(0, np.int32)
            freqs = np.concatenate([f for _, f in parts]) if parts else np.zeros(0, np.int32)
            inside = mask[slots]
            postings[term] = slots[inside], freqs[inside].astype(np.float64)
        too_common = common(rows)
        kept = [t for t in terms if len(postings[t][0]) <= too_common] or terms  # a repeated term counts each time
        n_rows = rows + PAD_ROWS
        average = (tokens + PAD_ROWS * PAD_TERMS) / n_rows
        scores = np.zeros(len(self.ids), np.float64)
        for term in kept:
            slots, freqs = postings[term]
            scores[slots] += contribution(n_rows, len(slots), freqs, self.length[slots], average)
        return scores

    def _scope(self, folders: Sequence[str] | None) -> tuple[np.ndarray, int, int]:
        """Which slots count (live, and in ``folders`` when given), how many chunks that is and their terms."""
        if folders is None:
            return self.alive, self.live, self.tokens
        key = tuple(sorted(folders))
        if key not in self.scopes:  # emptied whenever the index changes
            codes = [self.folders[f] for f in key if f in self.folders]
            mask = self.alive & np.isin(self.folder, codes)
            self.scopes[key] = mask, int(mask.sum()), int(self.length[mask].sum())
        return self.scopes[key]

    def _pending(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pending postings (terms, slots, freqs), which are then cleared."""
        terms = np.frombuffer(self.pending_terms, np.int32).copy()
        freqs = np.frombuffer(self.pending_freqs, np.int32).copy()
        slots = np.repeat(np.array(self.pending_slots, np.int32), self.pending_widths)
        self.pending_terms, self.pending_freqs, self.pending_slots, self.pending_widths = array("i"), array("i"), [], []
        return terms, slots, freqs

    def _grow(self, size: int) -> None:
        for name in ("length", "folder", "alive"):
            old = getattr(self, name)
            new = np.zeros(size, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)


class KeywordIndex:
    """BM25 over the catalog's chunks, in memory once loaded (FTS5 until then); safe to share between threads.

    Args:
        catalog: the catalog it loads from and follows.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._memory: _Memory | None = None
        self._seq = 0  # the last catalog change the memory holds
        self._questions = 0
        self._loader: threading.Thread | None = None

    def search(self, query: str, k: int, folders: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """``Catalog.search``, the same pairs in the same order, from memory."""
        return self.rank(query, k, folders)[0]

    def rank(
        self, query: str, k: int, folders: Sequence[str] | None = None, *, scored: Collection[str] = (),
        depth: int = 0,
    ) -> tuple[list[tuple[str, float]], dict[str, float]]:
        """``Catalog.rank`` from memory; until the memory is loaded, the catalog's own."""
        with self._lock:
            self._questions += 1
            if self._memory is not None:
                self._follow(self._memory)
            memory = self._memory
            if memory is None or k <= 0 or (folders is not None and not folders):
                if memory is None and self._questions >= 2 and self._loader is None:
                    self._loader = threading.Thread(target=self.load, name="keyword-index-load", daemon=True)
                    self._loader.start()
                return self.catalog.rank(query, k, folders, scored=scored, depth=depth)
            terms = analyze(query)
            if not terms:
                return [], {}
            scores = memory.scores(terms, folders)
            matched = np.flatnonzero(scores > 0)
            values = scores[matched]
            low = nth_best(values, k)  # every tie of the k-th best is read, so ties rank by chunk id
            ranking = best({memory.ids[s]: float(scores[s]) for s in matched[values >= low]}, k)
            floor = nth_best(values, depth)
            slots = ((i, memory.slot_of.get(i)) for i in scored)
            found = {i: float(scores[s]) for i, s in slots if s is not None and scores[s] > 0 and scores[s] >= floor}
        return ranking, found

    def load(self) -> None:
        """Read every settled chunk's terms into memory (off the lock: FTS5 answers meanwhile), then use them."""
        start = time.perf_counter()
        memory = _Memory()
        try:
            with self.catalog.reading():
                seq = self.catalog.last_change()
                memory.add(self.catalog.indexed())
            memory.settle()
        finally:
            with self._lock:
                self._loader = None  # a failed load is tried again at the next question
        with self._lock:
            self._memory, self._seq = memory, seq
        logger.info("keyword index loaded: %d chunks in %.2f s", memory.live, time.perf_counter() - start)

    def _follow(self, memory: _Memory) -> None:
        """Apply the catalog's changes since the memory's last look: the changed documents only; everything
        again (in a thread, FTS5 answering meanwhile) when the log no longer reaches back or was cleared."""
        if self.catalog.last_change() == self._seq:
            return
        with self.catalog.reading():
            seq = self.catalog.last_change()
            changed = self.catalog.changed_since(self._seq)
            if changed is not None:
                for key in changed:
                    memory.drop(key)
                memory.add(self.catalog.indexed(changed))
        if changed is None:
            self._memory, self._questions = None, 1  # the next question starts the load again
            return
        memory.settle()
        self._seq = seq
