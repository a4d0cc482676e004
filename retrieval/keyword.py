"""Keyword search: BM25 (the ``bm25s`` library) over stemmed, stop-word-free terms.

The index is built from the chunks in the store and saved next to it, so a bot process loads it in
milliseconds instead of rebuilding; it is rebuilt whenever the store's chunk count no longer matches, or
when it was saved in an older ``FORMAT``. Each chunk is indexed with its document's title in front
(``keyword_text``): only a document's first chunk holds the title, and a question often names the topic the
title states (measured on SciFact in BENCHMARKS.md). ``analyze`` is also what the extractive answerer uses
to match question terms to sentences.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN) | {"what", "which", "who", "whom", "how", "why", "does"}
# Bumped whenever what an index holds changes (analyzer, indexed text), so older saved indexes are rebuilt.
FORMAT = 2


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def analyze(text: str, *, stem: bool = True, stop_words: bool = True) -> list[str]:
    """Lower-cased, stemmed terms of ``text`` without stop words, in order (benchmarks turn steps off)."""
    words = [w for w in _TOKEN.findall(text.lower()) if not stop_words or w not in _STOPWORDS]
    return _stemmer().stemWords(words) if stem else words


def keyword_text(text: str, title: str) -> str:
    """What BM25 indexes for a chunk: its document's title, then the chunk (which may already start with it)."""
    return text if not title or text.startswith(title) else f"{title}\n\n{text}"


class KeywordIndex:
    """A BM25 index over chunk ids, persisted in ``directory``."""

    def __init__(self, bm25: bm25s.BM25, ids: Sequence[str]) -> None:
        self._bm25 = bm25
        self.ids = list(ids)
        self._positions = {chunk_id: n for n, chunk_id in enumerate(self.ids)}

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str]) -> KeywordIndex:
        """Index ``texts`` (one per id)."""
        bm25 = bm25s.BM25()
        # bm25s cannot index an empty corpus; a single empty document keeps the shape valid.
        bm25.index([analyze(t) or [""] for t in texts] or [[""]], show_progress=False)
        return cls(bm25, ids)

    def save(self, directory: Path) -> None:
        """Write the index atomically: a reader never sees half of it."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".keyword-"))
        self._bm25.save(tmp, show_progress=False)
        (tmp / "ids.json").write_text(json.dumps(self.ids))
        (tmp / "format.json").write_text(json.dumps(FORMAT))
        old = directory.with_name(directory.name + ".old")
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> KeywordIndex | None:
        """The saved index, or None when there is none, it is unreadable or of an older format."""
        try:
            saved_format = json.loads((directory / "format.json").read_text())
            ids = json.loads((directory / "ids.json").read_text())
            bm25 = bm25s.BM25.load(directory, mmap=True, show_progress=False)
        except (OSError, ValueError) as exc:
            logger.info("no usable keyword index in %s (%s)", directory, exc)
            return None
        if saved_format != FORMAT:
            logger.info("keyword index in %s has format %s, not %s", directory, saved_format, FORMAT)
            return None
        return cls(bm25, ids)

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every indexed chunk for ``query``, in ``ids`` order."""
        terms = [t for t in analyze(query) if t in self._bm25.vocab_dict]
        if not terms or not self.ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.nan_to_num(self._bm25.get_scores(terms), nan=0.0)

    def best(self, scores: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Up to ``k`` (chunk id, score) pairs of ``scores`` (from ``scores()``) that are positive, best first."""
        k = min(k, len(self.ids))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[int(i)], float(scores[i])) for i in top if scores[i] > 0]

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Up to ``k`` (chunk id, BM25 score) pairs with a positive score, best first."""
        return self.best(self.scores(query), k)

    def position(self, chunk_id: str) -> int | None:
        """Where ``chunk_id`` sits in ``ids`` (and so in ``scores()``), or None when it is not indexed."""
        return self._positions.get(chunk_id)
