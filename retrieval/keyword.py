"""The keyword side's analyser: stemmed, stop-word-free terms (the index itself is ``catalog``'s FTS5 table).

A command-line option is a term of its own, spelled with its dashes and never stemmed: "-k" is not the letter
k (which no term holds), "--keep" is not the word keep, so "What does bzip2 -k do?" finds the line that
names ``-k``. A long option also brings its words ("--keep" adds keep), so a question in words still finds
the line that names it (BENCHMARKS.md, "Options as terms"). Names with underscores (``PIP_CERT``) are one
word already.

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


_WORD = r"\b\w\w+\b"
# An option: one or two dashes that start a word (after a space, an opening bracket or quote, "=", "/" or a
# list's comma; not inside "x-y", nor after ")" as in "SARS (severe ...)-CoV-2", which the acronym re-search
# writes), then a name ending in a letter or digit ("--no-deps", "-name") or one letter or digit ("-k", "-9");
# a dash before a number ("-0.45", "-12") is a minus sign, not an option.
OPTION = r"(?<![^\s(\[{\"'`‘“=/,;|])--?(?:[^\W\d_][\w-]*\w|[^\W_](?![.,]?\d))"
_TOKEN = re.compile(rf"(?u)({OPTION})|({_WORD})")
_WORDS = re.compile(rf"(?u){_WORD}")
# The question words bm25s's list lacks: they say what kind of answer is wanted (the reader's cues read the
# question itself), never which passage holds it; "Where can I park?" is about parking.
_STOPWORDS = _bm25s_stop_words() | {"what", "which", "who", "whom", "how", "why", "where", "when", "does"}


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def analyze(text: str, *, stem: bool = True, stop_words: bool = True) -> list[str]:
    """Lower-cased, stemmed terms of ``text`` without stop words, in order (benchmarks turn steps off); an
    option stays as written (lower-cased), followed by its words."""
    pairs = _TOKEN.findall(text.lower())  # (option, "") or ("", word)
    if not any(option for option, _ in pairs):  # most text names no option: the plain words, as fast as before
        words = [w for _, w in pairs if not stop_words or w not in _STOPWORDS]
        return stems(words) if stem else words
    terms: list[str] = []
    for option, word in pairs:
        if option:
            terms.append(option)
        terms += [w for w in (_WORDS.findall(option) if option else [word]) if not stop_words or w not in _STOPWORDS]
    return stems(terms) if stem else terms


def stems(words: list[str]) -> list[str]:
    """The terms of words ``analyze(text, stem=False)`` gave, as ``analyze(text)`` gives them: stemmed, but
    an option ("-k", "--keep": only an option starts with a dash) as written."""
    return [w if w.startswith("-") else s for w, s in zip(words, _stemmer().stemWords(words), strict=True)]


def keyword_text(text: str, title: str) -> str:
    """What BM25 indexes for a chunk: its document's title, then the chunk (which may already start with it)."""
    return text if not title or text.startswith(title) else f"{title}\n\n{text}"
