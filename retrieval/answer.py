"""The offline answer: sentences quoted from the retrieved passages, the one that answers first.

No model writes anything here, so nothing can be invented: every sentence of the answer is a sentence of a
retrieved passage. The reader (``reader.read``) gives each candidate sentence the probability that it holds
the answer, and the passages as a whole the probability that they answer the question at all. The answer is

- declined ("Not found in the documents") when that second probability is under
  ``settings.min_answer_probability``, the operating point chosen on COVID-QA (BENCHMARKS.md, "Declines");
- otherwise a lead of the best sentence (with the next one when it alone is cut short, or when the next best
  sentence follows it), about ``LEAD_WORDS`` words at most, then up to ``MAX_SUPPORT`` supporting sentences
  that pass ``settings.min_support_probability`` and do not repeat what is already said, another document's
  best one before more of a document already quoted.

Citations are numbered per source document: ``[1]`` is one document however many of its sentences are
quoted, each quote a ``Citation`` of its own with that number and its offsets.
"""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.citations import MARKER
from retrieval.embeddings import TokenEmbedder
from retrieval.keyword import analyze
from retrieval.prompts import NOT_FOUND_PROMPT
from retrieval.reader import Candidate, Reading, quotable, read
from retrieval.sentences import spans
from retrieval.settings import RetrievalSettings
from retrieval.types import Answer, Citation, Passage

LEAD_WORDS = 60  # a lead longer than this is one sentence, never two
MAX_SUPPORT = 3
MAX_WORDS = 100  # the whole answer, lead and support: what a reader takes in at a glance
_SHORT_LEAD = 12  # words under which a lead sentence takes its successor along, when that fits
_REDUNDANT = 0.6  # Jaccard overlap of terms above which a sentence repeats one already chosen


def is_relevant(passages: Sequence[Passage], settings: RetrievalSettings) -> bool:
    """Are the passages on the question's topic at all? The best cosine similarity must pass the floor."""
    return any((p.dense_score or 0.0) >= settings.min_relevance for p in passages)


def declined(question: str, passages: Sequence[Passage]) -> Answer:
    """The honest answer when the documents do not answer: say so, keep the closest passages uncited."""
    return Answer(question=question, text=NOT_FOUND_PROMPT, citations=[], passages=list(passages), found=False)


def extractive_answer(
    question: str, passages: Sequence[Passage], settings: RetrievalSettings, embedder: TokenEmbedder
) -> Answer:
    """Answer ``question`` by quoting the sentences of ``passages`` that answer it, each with its ``[n]``."""
    if not is_relevant(passages, settings):
        return declined(question, passages)
    return compose(question, passages, read(question, passages, embedder), settings)


def compose(question: str, passages: Sequence[Passage], reading: Reading, settings: RetrievalSettings) -> Answer:
    """The answer a reading supports: lead, supporting sentences and per-document citations, or a decline."""
    best = reading.best
    if best is None or reading.answerable < settings.min_answer_probability:
        return declined(question, passages)
    lead = _lead(best, reading.candidates)
    support = _support(lead, reading.candidates[1:], settings.min_support_probability)
    numbers: dict[tuple[str, str], int] = {}  # document -> its [n]
    citations: list[Citation] = []

    def cite(q: Candidate) -> str:
        number = numbers.setdefault(q.passage.document, len(numbers) + 1)
        citations.append(Citation(number, q.passage, q.text, q.start, q.end))
        # The document's own reference markers ("... cite [9] ...") would read as ours: the answer leaves them
        # out; the citation keeps the exact quote.
        return f"{' '.join(MARKER.sub('', q.text).split())} [{number}]"

    paragraphs = [" ".join(cite(q) for q in lead)]
    if support:
        paragraphs.append(" ".join(cite(q) for q in support))
    return Answer(question=question, text="\n\n".join(paragraphs), citations=citations, passages=list(passages),
                  found=True)


def _support(lead: list[Candidate], candidates: Sequence[Candidate], threshold: float) -> list[Candidate]:
    """Up to ``MAX_SUPPORT`` sentences past ``threshold`` that do not repeat what is already said, best first.

    The best such sentence of each document not yet quoted is taken before more of a quoted one: a second
    source saying it is worth more to a reader than a third sentence of the first.
    """
    eligible = [c for c in candidates if c.probability >= threshold]
    chosen, support = list(lead), []
    quoted = {c.passage.document for c in lead}
    words = sum(c.words for c in lead)
    for other_documents_first in (True, False):
        for c in eligible:
            if len(support) == MAX_SUPPORT:
                break
            if c in support or (other_documents_first and c.passage.document in quoted):
                continue
            if words + c.words > MAX_WORDS or any(_repeats(c, q) for q in chosen):
                continue
            support.append(c)
            chosen.append(c)
            quoted.add(c.passage.document)
            words += c.words
    return sorted(support, key=lambda c: -c.probability)


def _repeats(a: Candidate, b: Candidate) -> bool:
    """The same words (overlapping chunks quote them twice) or mostly the same terms."""
    same_place = a.passage.document == b.passage.document and a.text == b.text
    union = a.terms | b.terms
    return same_place or (bool(union) and len(a.terms & b.terms) / len(union) >= _REDUNDANT)


def _lead(best: Candidate, candidates: Sequence[Candidate]) -> list[Candidate]:
    """The best sentence, joined by the sentence after it when that one is the next best or completes it."""
    lead = [best]
    following = _next_sentence(best)
    if following is None:
        return lead
    a, b = following
    runner_up = candidates[1] if len(candidates) > 1 else None
    follows = runner_up is not None and runner_up.passage.id == best.passage.id and runner_up.start == a
    words = best.words + len(best.passage.text[a:b].split())
    if (follows or best.words < _SHORT_LEAD) and words <= LEAD_WORDS:
        lead.append(Candidate(best.passage, best.rank, a, b, frozenset(analyze(best.passage.text[a:b])), 0.0))
    return lead


def _next_sentence(c: Candidate) -> tuple[int, int] | None:
    """The sentence after ``c`` in its passage, when it can be quoted."""
    later = [(a, b) for a, b in spans(c.passage.text) if a >= c.end]
    return later[0] if later and quotable(c.passage.text[slice(*later[0])]) else None

