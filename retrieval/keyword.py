"""The keyword side's analyser: stemmed, stop-word-free terms (the index itself is ``catalog``'s FTS5 table).

Each chunk is indexed with its document's title in front (``keyword_text``): only a document's first chunk
holds the title, and a question often names the topic the title states (measured on SciFact in
BENCHMARKS.md). ``analyze`` is also what the extractive answerer uses to match question terms to sentences.
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path

import Stemmer


def _bm25s_stop_words() -> frozenset[str]:
    """bm25s's English stop words (the keyword side was fitted with them), read from their module alone:
    importing the bm25s package loads scipy, 0.8 s of every question's start-up."""
    package = importlib.util.find_spec("bm25s")  # finds, does not import, a top-level package
    assert package is not None and package.origin is not None, "bm25s is a dependency"
    spec = importlib.util.spec_from_file_location("_bm25s_stopwords", Path(package.origin).with_name("stopwords.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return frozenset(module.STOPWORDS_EN)


_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = _bm25s_stop_words() | {"what", "which", "who", "whom", "how", "why", "does"}


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def analyze(text: str, *, stem: bool = True, stop_words: bool = True) -> list[str]:
    """Lower-cased, stemmed terms of ``text`` without stop words, in order (benchmarks turn steps off)."""
    words = [w for w in _TOKEN.findall(text.lower()) if not stop_words or w not in _STOPWORDS]
    return stems(words) if stem else words


def stems(words: list[str]) -> list[str]:
    """The stems of words ``analyze(text, stem=False)`` gave: ``analyze(text)`` without a second split."""
    return _stemmer().stemWords(words)


def keyword_text(text: str, title: str) -> str:
    """What BM25 indexes for a chunk: its document's title, then the chunk (which may already start with it)."""
    return text if not title or text.startswith(title) else f"{title}\n\n{text}"
