"""The keyword side's analyser: stemmed, stop-word-free terms (the index itself is ``catalog``'s FTS5 table).

Each chunk is indexed with its document's title in front (``keyword_text``): only a document's first chunk
holds the title, and a question often names the topic the title states (measured on SciFact in
BENCHMARKS.md). ``analyze`` is also what the extractive answerer uses to match question terms to sentences.
"""

from __future__ import annotations

import re
from functools import lru_cache

import bm25s
import Stemmer

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN) | {"what", "which", "who", "whom", "how", "why", "does"}


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
