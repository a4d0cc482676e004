"""Sentence boundaries, shared by the extractive answer and the grounding check.

A line break always ends a sentence (headings, list items and table rows are lines of their own; the loaders
re-join lines that were only wrapped); inside a line, nupunkt's Punkt model decides, so "e.g.", "et al.",
"Fig. 2" and "Dr. Smith" do not end one (BENCHMARKS.md, "Sentence segmenter", compares it with pysbd,
blingfire, sentencex and the regex it replaced). Citation markers written after the full stop
("... pathways. [1]") stay with the sentence they close.
"""

from __future__ import annotations

import re
from functools import lru_cache

import nupunkt

from retrieval.citations import MARKER

_LINE = re.compile(r"[^\n]+")
_LEADING_MARKERS = re.compile(rf"(?:[ \t]*{MARKER.pattern})+")


@lru_cache(maxsize=1)
def _tokenizer() -> nupunkt.PunktSentenceTokenizer:
    return nupunkt.load_default_model()


def spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``, white space trimmed, in order."""
    tokenizer = _tokenizer()
    out: list[tuple[int, int]] = []
    for line in _LINE.finditer(text):
        first = len(out)
        for a, b in tokenizer.span_tokenize(line.group()):
            start, end = line.start() + a, line.start() + b
            markers = _LEADING_MARKERS.match(text, start, end)
            if markers and len(out) > first:  # "[1]" after the previous sentence's full stop belongs to it
                out[-1] = (out[-1][0], markers.end())
                start = markers.end()
            out.append((start, end))
    return [_trim(text, a, b) for a, b in out if text[a:b].strip()]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    piece = text[start:end]
    return start + len(piece) - len(piece.lstrip()), end - len(piece) + len(piece.rstrip())
