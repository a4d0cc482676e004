"""Citation markers: parse them, rewrite or strip them, and verify an answer's citations.

An answer refers to source documents with ``[n]`` markers (``[2]``, ``[1, 3]`` and ``[1][3]`` all parse): one
number per document, however many of its sentences are quoted, each quote a ``Citation`` with that number. Whatever
wrote the text, extractive code or a language model, ``verify`` is the last check before a user sees it:
every marker must resolve to a citation, and every citation must quote its retrieved passage exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from retrieval.types import Answer

MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def parse_markers(text: str) -> list[int]:
    """The citation numbers in ``text`` in order of first appearance, without repeats."""
    seen: dict[int, None] = {}
    for match in MARKER.finditer(text):
        for number in match.group(1).split(","):
            seen.setdefault(int(number), None)
    return list(seen)


def rewrite_markers(text: str, mapping: Callable[[int], int | None]) -> str:
    """Replace each marker number ``n`` by ``mapping(n)``; numbers mapped to None are removed."""

    def _replace(match: re.Match[str]) -> str:
        numbers = [mapping(int(n)) for n in match.group(1).split(",")]
        kept = list(dict.fromkeys(n for n in numbers if n is not None))
        return "".join(f"[{n}]" for n in kept)

    return MARKER.sub(_replace, text)


def verify(answer: Answer) -> list[str]:
    """Problems with an answer's citations, as sentences; an empty list means every citation checks out.

    Checks: each marker has a citation, each citation is used, one number names one document, each cited
    passage was retrieved for this answer, and each quote is the passage text at the recorded offsets.
    """
    problems: list[str] = []
    numbers = [c.number for c in answer.citations]
    documents: dict[int, set[tuple[str, str]]] = {}
    for c in answer.citations:
        documents.setdefault(c.number, set()).add(c.document)
    problems += [f"[{n}] names {len(docs)} documents" for n, docs in sorted(documents.items()) if len(docs) > 1]
    markers = set(parse_markers(answer.text))
    problems += [f"[{n}] has no citation" for n in sorted(markers - set(numbers))]
    problems += [f"citation [{n}] is never used in the text" for n in sorted(set(numbers) - markers)]
    retrieved = {p.id for p in answer.passages}
    for c in answer.citations:
        if c.passage.id not in retrieved:
            problems.append(f"[{c.number}] cites a passage that was not retrieved")
        if not c.quote or c.passage.text[c.start : c.end] != c.quote:
            problems.append(f"[{c.number}] quote is not the passage's text at its offsets")
    return problems
