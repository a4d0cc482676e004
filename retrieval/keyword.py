"""Keyword search: BM25 (the ``bm25s`` library) over stemmed, stop-word-free terms.

The index is built from the chunks in the store and saved next to it, so a bot process loads it in
milliseconds instead of rebuilding; it is rebuilt whenever the store's chunk count no longer matches.
``analyze`` is also what the extractive answerer uses to match question terms to sentences.
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


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def analyze(text: str) -> list[str]:
    """Lower-cased, stemmed terms of ``text`` without stop words, in order."""
    words = [w for w in _TOKEN.findall(text.lower()) if w not in _STOPWORDS]
    return _stemmer().stemWords(words)


class KeywordIndex:
    """A BM25 index over chunk ids, persisted in ``directory``."""

    def __init__(self, bm25: bm25s.BM25, ids: Sequence[str]) -> None:
        self._bm25 = bm25
        self.ids = list(ids)

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
        old = directory.with_name(directory.name + ".old")
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> KeywordIndex | None:
        """The saved index, or None when there is none (or it is unreadable)."""
        try:
            ids = json.loads((directory / "ids.json").read_text())
            bm25 = bm25s.BM25.load(directory, mmap=True, show_progress=False)
        except (OSError, ValueError) as exc:
            logger.info("no usable keyword index in %s (%s)", directory, exc)
            return None
        return cls(bm25, ids)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Up to ``k`` (chunk id, BM25 score) pairs with a positive score, best first."""
        terms = analyze(query)
        if not terms or not self.ids:
            return []
        k = min(k, len(self.ids))
        docs, scores = self._bm25.retrieve([terms], k=k, show_progress=False, n_threads=1)
        return [
            (self.ids[int(d)], float(s))
            for d, s in zip(docs[0], scores[0], strict=True)
            if s > 0 and not np.isnan(s)
        ]
