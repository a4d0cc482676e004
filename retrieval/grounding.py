"""Grounding a language model's answer in the passages it was given.

The passages go to the model numbered ``[1]..[k]`` (``number_passages``). What comes back is checked
sentence by sentence (``ground``): each ``[n]`` must name a given passage, and the words it closes (the
clause since the previous marker) must be supported by that passage: the passage sentence closest in
meaning must pass a cosine-similarity threshold (measured on SciFact rationales, see BENCHMARKS.md) and
every number the words state must occur in the passage or its title. Markers that fail are stripped; a
sentence with a clause left without a verified marker is dropped. The documents still cited are numbered
1..m in order of first use (two passages of one document share a number), each citation quoting the passage
sentence that supports it best.

The check is one of topic and wording, not of logic: a sentence saying the opposite of its passage in the
passage's words passes (BENCHMARKS.md measures how often).
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from retrieval.citations import MARKER, parse_markers, rewrite_markers
from retrieval.embeddings import Embedder
from retrieval.keyword import analyze
from retrieval.prompts import NOT_FOUND_PHRASE
from retrieval.sentences import spans
from retrieval.types import Citation, Passage

logger = logging.getLogger(__name__)

# Cosine similarity between a cited claim and its passage's closest sentence that counts as support; the
# same for both packaged embedders (bench/support_threshold.py; BENCHMARKS.md, "Citation support check").
SUPPORT_THRESHOLD = 0.55

_MARKER_RUN = re.compile(rf"{MARKER.pattern}(?:[ \t]*{MARKER.pattern})*")
# Quantities, not the digits of names like SHP-2, MEK1/2 or 3-kinase.
_NUMBER = re.compile(r"(?<![\w./-])\d+(?:[.,]\d+)*(?![\w/-])")
_MIN_SPAN_WORDS = 3  # passage fragments shorter than this ("Results", "- ") cannot support a claim
_CACHE_SIZE = 4096  # sentence vectors kept by a checker between calls


def number_passages(passages: Sequence[Passage]) -> str:
    """The passages as the model sees them: ``[n] title (location)`` then the text, blank-line separated."""
    blocks = []
    for number, passage in enumerate(passages, start=1):
        where = f" ({passage.location})" if passage.location else ""
        blocks.append(f"[{number}] {passage.title}{where}\n{passage.text.strip()}")
    return "\n\n".join(blocks)


def declines(text: str) -> bool:
    """Did the model say the documents do not answer: ``NOT_FOUND_PHRASE`` or close to it, uncited?"""
    words = _plain(text)
    phrase = _plain(NOT_FOUND_PHRASE)
    opening = words[: len(phrase)]
    close = difflib.SequenceMatcher(None, opening, phrase).ratio() >= 0.85
    return close or (phrase in words and not parse_markers(text))


def strip_markers(text: str) -> str:
    """``text`` without its ``[n]`` markers, and without the gaps they leave."""
    return _tidy(MARKER.sub("", text))


def _tidy(text: str) -> str:
    """Close the gaps a removed marker leaves: double spaces, a space before punctuation."""
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def _plain(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


@dataclass(frozen=True)
class Support:
    """How well a passage supports a claim: its closest sentence (span and cosine) and the numbers check."""

    score: float
    start: int
    end: int
    numbers_found: bool


class SupportChecker:
    """Decides whether a passage supports a claim; see the module docstring for the rule.

    Args:
        embedder: embeds claims and passage sentences.
        threshold: cosine similarity needed; by default the measured ``SUPPORT_THRESHOLD``.
    """

    def __init__(self, embedder: Embedder, threshold: float | None = None) -> None:
        self.embedder = embedder
        self.threshold = SUPPORT_THRESHOLD if threshold is None else threshold
        # Streaming checks each sentence as it completes, against the same passages: embed those once.
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        fresh = dict(zip(missing, self.embedder.embed(missing), strict=True)) if missing else {}
        with self._lock:
            if len(self._cache) > _CACHE_SIZE:
                self._cache.clear()
            self._cache.update(fresh)
            return {t: fresh[t] if t in fresh else self._cache[t] for t in texts}

    def assess(self, pairs: Sequence[tuple[str, Passage]]) -> list[Support]:
        """The support each passage lends its claim, for ``(claim, passage)`` pairs; one embedding call."""
        sentences = {p.id: _support_spans(p.text) for _, p in pairs}
        vectors = self._vectors([c for c, _ in pairs] + [p.text[a:b] for _, p in pairs for a, b in sentences[p.id]])
        out = []
        for claim, passage in pairs:
            candidates = sentences[passage.id]
            scores = [float(np.dot(vectors[claim], vectors[passage.text[a:b]])) for a, b in candidates]
            best = int(np.argmax(scores)) if scores else -1
            start, end = candidates[best] if scores else (0, 0)
            found = _numbers(claim) <= _numbers(f"{passage.title} {passage.text}")  # the model sees both
            out.append(Support(scores[best] if scores else 0.0, start, end, found))
        return out

    def supports(self, support: Support) -> bool:
        """Does this support pass the bar?"""
        return support.numbers_found and support.score >= self.threshold


def _support_spans(text: str) -> list[tuple[int, int]]:
    """The passage's sentences and lines that could carry a claim; the whole text if none is long enough."""
    long_enough = [(a, b) for a, b in spans(text) if len(text[a:b].split()) >= _MIN_SPAN_WORDS]
    if long_enough or not text.strip():
        return long_enough
    return [(len(text) - len(text.lstrip()), len(text.rstrip()))]


@dataclass
class _Clause:
    """Words of an answer sentence and the markers that close them."""

    raw: str  # as written, markers included
    markers: list[int] = field(default_factory=list)

    @property
    def claim(self) -> str:
        return strip_markers(self.raw)


def _clauses(sentence: str) -> list[_Clause]:
    """Split a sentence after each run of markers; trailing words join the last clause.

    A clause without words of its own (a sentence opening with ``[1]``) lends its markers to the next.
    """
    clauses: list[_Clause] = []
    start, pending = 0, _Clause("")
    runs = list(_MARKER_RUN.finditer(sentence))
    for i, run in enumerate(runs):
        end = len(sentence) if i == len(runs) - 1 else run.end()
        pending = _Clause(pending.raw + sentence[start:end], pending.markers + parse_markers(run.group()))
        start = end
        if analyze(pending.claim):
            clauses.append(pending)
            pending = _Clause("")
    if pending.markers and clauses:
        last = clauses[-1]
        clauses[-1] = _Clause(last.raw + pending.raw, last.markers + pending.markers)
    return clauses


@dataclass(frozen=True)
class Grounded:
    """A verified answer: renumbered text, its citations, and how many sentences were dropped."""

    text: str
    citations: list[Citation]
    removed: int


def ground(text: str, passages: Sequence[Passage], checker: SupportChecker) -> Grounded:
    """Keep the sentences of ``text`` whose citations verify against ``passages`` (numbered from 1)."""
    found = spans(text)
    sentences = [_clauses(text[a:b]) for a, b in found]
    pairs = list(
        dict.fromkeys(
            (clause.claim, n)
            for clauses in sentences
            for clause in clauses
            for n in clause.markers
            if 1 <= n <= len(passages)
        )
    )
    results = dict(zip(pairs, checker.assess([(c, passages[n - 1]) for c, n in pairs]), strict=True))
    verified = {pair for pair, support in results.items() if checker.supports(support)}
    kept: list[str] = []
    best: dict[int, Support] = {}
    removed = 0
    for (a, b), clauses in zip(found, sentences, strict=True):
        keep = [{n for n in c.markers if (c.claim, n) in verified} for c in clauses]
        if clauses and all(keep):
            kept.append(_rewrite(clauses, keep) + _separator(text, b))
            for clause, numbers in zip(clauses, keep, strict=True):
                for n in numbers:
                    support = results[(clause.claim, n)]
                    if n not in best or support.score > best[n].score:
                        best[n] = support
        elif analyze(text[a:b]):
            removed += 1
            logger.info("dropped unsupported sentence: %r", text[a:b])
    body = "".join(kept).strip()
    cited = parse_markers(body)
    numbers: dict[tuple[str, str], int] = {}  # one number per document, in order of first use
    for old in cited:
        numbers.setdefault(passages[old - 1].document, len(numbers) + 1)
    final = _MARKER_RUN.sub(
        lambda run: "".join(f"[{n}]" for n in parse_markers(run.group())),
        rewrite_markers(body, lambda old: numbers[passages[old - 1].document]),
    )
    citations = [_citation(numbers[passages[old - 1].document], passages[old - 1], best[old]) for old in cited]
    return Grounded(final, sorted(citations, key=lambda c: c.number), removed)


def _rewrite(clauses: list[_Clause], keep: list[set[int]]) -> str:
    """The sentence with each clause's unverified markers removed."""
    parts = [rewrite_markers(c.raw, lambda n, k=k: n if n in k else None) for c, k in zip(clauses, keep, strict=True)]
    return _tidy("".join(parts))


def _separator(text: str, end: int) -> str:
    """The white space after a sentence: a line break where the answer had one, else a space."""
    gap = text[end : len(text) - len(text[end:].lstrip())]
    return "\n" * min(gap.count("\n"), 2) if "\n" in gap else " "


def _citation(number: int, passage: Passage, support: Support) -> Citation:
    return Citation(number, passage, passage.text[support.start : support.end], support.start, support.end)


class VerifiedStream:
    """Passes on, as a model streams, only the sentences whose citations verify, without their markers.

    A reader watching the answer arrive sees nothing that the final check would remove: not a recited
    prompt, not a claim its passage does not support. Call it with each token, then ``finish()``.
    """

    def __init__(self, passages: Sequence[Passage], checker: SupportChecker, on_text: Callable[[str], None]) -> None:
        self.passages, self.checker, self.on_text = passages, checker, on_text
        self._text = ""
        self._done = 0  # where the sentence still being written starts

    def __call__(self, token: str) -> None:
        self._text += token
        found = spans(self._text[self._done :])
        for a, b in found[:-1]:  # the last one may still grow
            self._emit(self._text[self._done + a : self._done + b])
        if len(found) > 1:
            self._done += found[-1][0]

    def finish(self) -> None:
        """Check the last sentence, which no boundary followed."""
        self._emit(self._text[self._done :])
        self._done = len(self._text)

    def _emit(self, sentence: str) -> None:
        if sentence.strip() and ground(sentence, self.passages, self.checker).citations:
            self.on_text(strip_markers(sentence) + " ")
