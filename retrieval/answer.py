"""The offline answer: sentences quoted from the retrieved passages, each followed by its citation.

No model writes anything here, so nothing can be invented: every sentence of the answer is a sentence of a
retrieved passage, chosen because it shares the question's terms, comes from a well-ranked passage, and
does not repeat a sentence already chosen. When the best passage is not similar enough to the question,
the answer says the documents do not answer it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.keyword import analyze
from retrieval.prompts import NOT_FOUND_PROMPT
from retrieval.settings import RetrievalSettings
from retrieval.types import Answer, Citation, Passage

# A sentence ends at . ! or ? followed by space, or at a line break (headings, list items, blocks).
_SENTENCE = re.compile(r"[^\n]+?(?:[.!?](?=\s)|$)", re.MULTILINE)
_ACRONYM = re.compile(r"((?:[A-Za-z][\w-]*\s+){1,6})\(([A-Z][A-Za-z]{1,9})\)")
# Statements only: headings, questions and snippets cut off with an ellipsis make poor answers.
_STATEMENT = re.compile(r"(?<!\.\.)(?<!…)[.!]$")
_ENUMERATION = re.compile(r"\b(?:include[sd]?|including|such as|consists? of|comprises?|e\.g\.)\b|,.*,", re.I)
_BOILERPLATE = re.compile(r"\b(?:for more information|click|visit our|subscribe|consult the full)\b", re.I)
_MIN_WORDS = 5
_REDUNDANT = 0.6  # Jaccard overlap of terms above which a sentence repeats one already chosen
# Weights of a sentence's features; the overlap with the question's terms counts 1.
_PASSAGE_WEIGHT = 0.35  # the rank of the passage it stands in
_ENUMERATION_WEIGHT = 0.4  # it lists things ("include", "such as", commas): what "what/which" questions want
_BOILERPLATE_WEIGHT = 0.5  # navigation and "for more information" text, subtracted
_RELATIVE_FLOOR = 0.5  # a sentence scoring under half the best one adds more noise than answer


@dataclass(frozen=True)
class Sentence:
    passage: Passage
    rank: int  # the passage's rank in the search results
    start: int
    end: int
    terms: frozenset[str]
    score: float = 0.0

    @property
    def text(self) -> str:
        return self.passage.text[self.start : self.end]


def split_sentences(passage: Passage, rank: int) -> list[Sentence]:
    """The passage's sentences with their offsets; fragments too short to stand alone are left out."""
    out = []
    for m in _SENTENCE.finditer(passage.text):
        raw = m.group()
        start = m.start() + len(raw) - len(raw.lstrip())
        end = m.start() + len(raw.rstrip())
        text = passage.text[start:end]
        if len(text.split()) >= _MIN_WORDS and _STATEMENT.search(text):
            out.append(Sentence(passage, rank, start, end, frozenset(analyze(text))))
    return out


def question_terms(question: str, passages: Sequence[Passage]) -> set[str]:
    """The question's terms, plus the long form of any acronym the passages define ("... (TME)")."""
    terms = set(analyze(question))
    asked = {w for w in re.findall(r"\b[A-Z][A-Za-z]{1,9}\b", question) if w.isupper() or w[1:].isupper()}
    for passage in passages:
        for long_form, short in _ACRONYM.findall(passage.text):
            words = long_form.split()[-len(short) :]
            if short in asked and "".join(w[0] for w in words).lower() == short.lower():
                terms |= set(analyze(" ".join(words)))
    return terms


def _score(sentence: Sentence, terms: set[str], best_score: float) -> float:
    overlap = len(sentence.terms & terms) / max(len(terms), 1)
    if not overlap:
        return 0.0
    text = sentence.text
    return (
        overlap
        + _PASSAGE_WEIGHT * sentence.passage.score / best_score
        + _ENUMERATION_WEIGHT * bool(_ENUMERATION.search(text))
        - _BOILERPLATE_WEIGHT * bool(_BOILERPLATE.search(text))
    )


def select_sentences(question: str, passages: Sequence[Passage], limit: int) -> list[Sentence]:
    """Up to ``limit`` relevant, non-redundant sentences, best first."""
    terms = question_terms(question, passages)
    best = max((p.score for p in passages), default=1.0) or 1.0
    candidates = [
        Sentence(s.passage, s.rank, s.start, s.end, s.terms, _score(s, terms, best))
        for rank, p in enumerate(passages)
        for s in split_sentences(p, rank)
    ]
    chosen: list[Sentence] = []
    ranked = sorted(candidates, key=lambda s: s.score, reverse=True)
    floor = ranked[0].score * _RELATIVE_FLOOR if ranked else 0.0
    for s in ranked:
        if s.score <= max(floor, 0.0) or len(chosen) == limit:
            break
        if all(_jaccard(s.terms, c.terms) < _REDUNDANT for c in chosen):
            chosen.append(s)
    return chosen


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / max(len(a | b), 1)


def is_relevant(passages: Sequence[Passage], settings: RetrievalSettings) -> bool:
    """Do the passages answer anything like the question? The best cosine similarity must pass the bar."""
    return any((p.dense_score or 0.0) >= settings.min_relevance for p in passages)


def declined(question: str, passages: Sequence[Passage]) -> Answer:
    """The honest answer when the documents do not answer: say so, keep the closest passages uncited."""
    return Answer(question=question, text=NOT_FOUND_PROMPT, citations=[], passages=list(passages), found=False)


def extractive_answer(question: str, passages: Sequence[Passage], settings: RetrievalSettings) -> Answer:
    """Answer ``question`` by quoting the passages' best sentences, each with its ``[n]``."""
    chosen = select_sentences(question, passages, settings.max_sentences) if is_relevant(passages, settings) else []
    if not chosen:
        return declined(question, passages)
    # Readable order: one paragraph per passage, the best paragraph first, sentences in their own order.
    best_in = {}
    for s in chosen:
        best_in[s.rank] = max(best_in.get(s.rank, 0.0), s.score)
    chosen.sort(key=lambda s: (-best_in[s.rank], s.rank, s.start))
    citations, paragraphs, current = [], [], -1
    for number, s in enumerate(chosen, start=1):
        citations.append(Citation(number, s.passage, s.text, s.start, s.end))
        if s.rank != current:
            paragraphs.append([])
            current = s.rank
        paragraphs[-1].append(f"{s.text} [{number}]")
    text = "\n\n".join(" ".join(p) for p in paragraphs)
    return Answer(question=question, text=text, citations=citations, passages=list(passages), found=True)
