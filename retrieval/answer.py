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
_MIN_WORDS = 5
_REDUNDANT = 0.6  # Jaccard overlap of terms above which a sentence repeats one already chosen
_PASSAGE_WEIGHT = 0.35  # how much the passage's rank counts against the sentence's own term overlap


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
        if len(text.split()) >= _MIN_WORDS:
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
    return overlap + _PASSAGE_WEIGHT * sentence.passage.score / best_score if overlap else 0.0


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
    for s in sorted(candidates, key=lambda s: s.score, reverse=True):
        if s.score <= 0 or len(chosen) == limit:
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
    # Readable order: passages as ranked, sentences in the order they stand in their passage.
    chosen.sort(key=lambda s: (s.rank, s.start))
    citations, paragraphs, current = [], [], -1
    for number, s in enumerate(chosen, start=1):
        citations.append(Citation(number, s.passage, s.text, s.start, s.end))
        if s.rank != current:
            paragraphs.append([])
            current = s.rank
        paragraphs[-1].append(f"{s.text} [{number}]")
    text = "\n\n".join(" ".join(p) for p in paragraphs)
    return Answer(question=question, text=text, citations=citations, passages=list(passages), found=True)
