"""The reader: which sentences of the retrieved passages answer the question, and how likely each one does.

Every sentence of the passages is a candidate, described by a few features: how much of the question's
weight it covers (terms weighted by their rarity in English, from ``wordfreq``, so "MERS" counts more than
"cause"), the same with its neighbouring sentences, its passage's rank and scores, answer-type cues ("how
many" wants a number, "when" a date, "which option" a flag), what it says beyond the question's words (and
how specific that is) and its shape (length, a statement or a heading). A linear model of these cheap
features picks the most promising candidates, the packaged embedder adds each one's similarity to the
question (one batched call): the cosine of the sentence vectors, and how close each content word of the
question comes to some token of the sentence (late interaction over the same run's token vectors), and a
second linear model gives the probability that the sentence holds the answer. A third, over the question's
best candidate and how much of the question the passages cover (one passage, one document, all of them),
gives the probability that the documents answer the question. A sentence the source cut off ("...") is
never a candidate.

The weights are fitted on development questions (COVID-QA's papers and ``bench/data/manuals``, software
manuals) by ``bench/fit_reader.py`` and stored in ``reader_weights.json``; nothing here is hand-tuned.
BENCHMARKS.md ("Reader") has the figures.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
from wordfreq import zipf_frequency

from retrieval import acronyms
from retrieval.embeddings import TokenEmbedder, TokenVectors
from retrieval.keyword import analyze, stems
from retrieval.sentences import spans
from retrieval.types import Passage

# Features of the first (cheap) stage, then the ones only the second stage sees; names match the weights file.
CHEAP_FEATURES = (
    "overlap", "overlap_context", "overlap_anaphor", "overlap_untitled", "overlap_max", "overlap_gap", "matched",
    "bigrams", "run",
    "passage_score", "passage_rank", "dense_score", "document_share", "top_document", "position",
    "type_match", "type_miss", "listing", "lists_focus", "log_words", "short", "statement", "fragment", "question",
    "heading", "novel_share", "novel_rarity", "about_text", "bigrams_anaphor", "run_anaphor",
)  # fmt: skip
FEATURES = (*CHEAP_FEATURES, "cosine", "cosine_gap", "cosine_context", "cosine_x_overlap", "maxsim")
ANSWERABLE_FEATURES = (
    "best", "runner_up_gap", "best_cosine", "max_cosine", "coverage", "coverage_rare", "best_overlap",
    "best_bigrams", "max_bigrams", "max_run", "top_document_share", "rarest_found", "best_maxsim", "max_maxsim",
    "passage_coverage", "document_coverage",
)  # fmt: skip
_RARE = 0.75  # question terms at least this share of the rarest one's weight count as its rare terms

_MAX_ZIPF = 9.0  # wordfreq's Zipf scale: log10 of a word's frequency per billion words; 9 would be every word
_NUMBER = re.compile(r"\d")
_YEAR_OR_DATE = re.compile(
    r"\b(?:1[5-9]\d\d|20\d\d)\b|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d", re.I
)
_OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*|\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|`[^`]+`")
# It lists things ("include", "such as", commas): what "what are" questions often want.
_LISTING = re.compile(r"\b(?:include[sd]?|including|such as|consists? of|comprises?|e\.g\.)\b|,.*,", re.I)
# Answer-type cues of the question, each with the pattern a sentence that answers it matches.
_CUES = (
    (re.compile(r"\bhow (?:many|much|long|often|old|large|big|far|high|fast)\b|\bwhat (?:percentage|proportion|"
                r"fraction|number|rate|ratio|size|dose|amount)\b|\bhow .*\b(?:rate|number)\b", re.I), _NUMBER),
    (re.compile(r"\bwhen\b|\bwhat (?:year|date|month|day)\b|\bwhich year\b", re.I), _YEAR_OR_DATE),
    (re.compile(r"\b(?:option|flag|switch|variable|setting|parameter|command)s?\b", re.I), _OPTION),
    (re.compile(r"^\s*(?:what|which) (?:are|were)\b|\b(?:list|name) (?:the|all)\b", re.I), _LISTING),
)
_STATEMENT = re.compile(r"[.!;:)\]\"”']$")
# A line that asks instead of telling: "What are the therapeutic targets in tumor microenvironment" as a title.
_ASKS = re.compile(r"\?$|^(?:what|how|why|which|who|when|where|is|are|can|do|does|should)\b[^.!;:]*$", re.I)
# A heading in title case ("Therapeutic Targeting of the Tumor Microenvironment"): it names a topic, it does
# not answer. Lower-case function words may stand between the capitalised ones; a figure makes it a table row.
_HEADING = re.compile(r"^(?:[A-Z][\w'’-]*|of|the|a|an|in|on|for|to|and|or|with|by|at|from|as|vs\.?|via)"
                      r"(?:\s+(?:[A-Z][\w'’-]*|of|the|a|an|in|on|for|to|and|or|with|by|at|from|as|vs\.?|via))+$")
# "These targets include ...": a question term, then within a few words the verb that starts a list.
_LIST_VERB = re.compile(r"\b(?:include[sd]?|including|such as|consists? of|comprises?|are|were)\b", re.I)
_MIN_WORDS = 4  # fewer words are a heading, a label or a fragment, never an answer
# A sentence the source itself cut off ("... have emerged as a promising approach for..."): the teaser of
# another text, as a list of related publications shows it, never an answer.
_CUT_OFF = re.compile(r"(?:\.\.\.|…)\W*$")
# A sentence opening with one of these goes on from the one before ("These targets include ..."): it is read
# with that sentence's terms.
_ANAPHOR = re.compile(r"^(?:these|this|those|such|they|their|it|its|both|each|all of these)\b", re.I)
# A sentence about the text itself rather than its subject ("For more information ..., consult the full review
# article", "In this study, we ..."): it points at an answer without giving one.
_ABOUT_TEXT = re.compile(
    r"\b(?:for (?:more|further|additional) (?:information|details)|see (?:also|the)|refer to|consult|visit"
    r"|(?:this|the present|our|the current) (?:study|review|article|paper|report|work|chapter|section|document"
    r"|manual|guide)|here,? we|in this (?:study|review|article|paper|report|work))\b", re.I)


@dataclass(frozen=True)
class Candidate:
    """One sentence of a retrieved passage, and the probability that it answers the question."""

    passage: Passage
    rank: int  # the passage's rank in the search results
    start: int  # offsets of the sentence inside ``passage.text``
    end: int
    terms: frozenset[str]
    probability: float

    @property
    def text(self) -> str:
        return self.passage.text[self.start : self.end]

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass(frozen=True)
class Reading:
    """The reader's view of the passages: candidates best first, and whether they answer at all."""

    candidates: list[Candidate]
    answerable: float  # probability that the passages answer the question

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


@dataclass(frozen=True)
class _Logistic:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    @classmethod
    def from_dict(cls, data: dict) -> _Logistic:
        return cls(
            tuple(data["features"]),
            np.asarray(data["mean"], dtype=np.float64),
            np.asarray(data["scale"], dtype=np.float64),
            np.asarray(data["weights"], dtype=np.float64),
            float(data["bias"]),
        )


@cache
def weights() -> dict:
    """The fitted models and thresholds (``reader_weights.json``, written by ``bench/fit_reader.py``)."""
    return json.loads(resources.files("retrieval").joinpath("reader_weights.json").read_text(encoding="utf-8"))


@cache
def _model(name: str) -> _Logistic:
    """One of the fitted models: "cheap", "sentence" or "answerable"."""
    return _Logistic.from_dict(weights()[name])


@cache
def rarity(word: str) -> float:
    """A word's weight: how rare it is in English (0 for the commonest, 9 for unseen words).

    An option ("-k", "--keep") is no word of English: wordfreq would weigh "-k" as the letter k, one of the
    commonest tokens, so it counts as unseen.
    """
    return _MAX_ZIPF if word.startswith("-") else _MAX_ZIPF - zipf_frequency(word, "en")


def question_weights(question: str, passages: Sequence[Passage] = ()) -> dict[str, float]:
    """The question's stemmed terms, each with the rarity of its rarest spelling in the question.

    An acronym the question uses and a passage spells out ("tumor microenvironment (TME)") also brings the
    long form's terms, at the acronym's weight.
    """
    out: dict[str, float] = {}
    for word, stem in zip(analyze(question, stem=False), analyze(question), strict=True):
        out[stem] = max(out.get(stem, 0.0), rarity(word))
    for short, long in acronyms.long_forms(question, (p.text for p in passages)).items():
        for stem in analyze(long):
            out.setdefault(stem, rarity(short.lower()))
    return out


def quotable(sentence: str) -> bool:
    """Can this sentence stand in an answer: a statement of a few words that the source did not cut off?"""
    return len(sentence.split()) >= _MIN_WORDS and not _CUT_OFF.search(sentence)


def _covered(terms: frozenset[str] | set[str], wanted: dict[str, float]) -> float:
    total = sum(wanted.values())
    return sum(w for t, w in wanted.items() if t in terms) / total if total else 0.0


def _cue(question: str) -> re.Pattern[str] | None:
    return next((answer for cue, answer in _CUES if cue.search(question)), None)


@dataclass
class _Row:
    passage: Passage
    rank: int
    start: int
    end: int
    terms: frozenset[str]
    cheap: list[float]

    @property
    def text(self) -> str:
        return self.passage.text[self.start : self.end]


def _bigrams(terms: Sequence[str]) -> set[tuple[str, str]]:
    return set(zip(terms, terms[1:], strict=False))


def _longest_run(question: Sequence[str], sentence: Sequence[str]) -> int:
    """The most consecutive question terms the sentence holds in the same order, side by side."""
    best, previous = 0, [0] * (len(sentence) + 1)
    for q in question:
        current = [0] * (len(sentence) + 1)
        for j, t in enumerate(sentence, start=1):
            if q == t:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def _rows(question: str, passages: Sequence[Passage], wanted: dict[str, float]) -> list[_Row]:
    """Every candidate sentence with its cheap features."""
    cue = _cue(question)
    asked = analyze(question)
    asked_pairs = _bigrams(asked)
    top = max(wanted.values(), default=0.0)
    best_score = max((p.score for p in passages), default=1.0) or 1.0
    mass: dict[tuple[str, str], float] = {}
    for p in passages:
        mass[p.document] = mass.get(p.document, 0.0) + max(p.score, 0.0)
    total_mass = sum(mass.values()) or 1.0
    top_document = max(mass, key=mass.__getitem__, default=None)
    rows: list[_Row] = []
    for rank, passage in enumerate(passages):
        # The question's terms the document's title does not already state: what the sentence must add.
        # When the title states them all, every sentence of the document is on the question: plain coverage.
        untitled = {t: w for t, w in wanted.items() if t not in set(analyze(passage.title))} or wanted
        found = spans(passage.text)
        words = [analyze(passage.text[a:b], stem=False) for a, b in found]
        ordered = [stems(w) for w in words]
        terms = [frozenset(t) for t in ordered]
        for i, (a, b) in enumerate(found):
            text = passage.text[a:b]
            n_words = len(text.split())
            if not quotable(text):
                continue
            context = terms[i].union(*terms[max(i - 1, 0) : i + 2])
            # "These targets include ...": read with the sentence before it, whose words it goes on from.
            anaphor = bool(i) and bool(_ANAPHOR.match(text))
            read_with = terms[i] | terms[i - 1] if anaphor else terms[i]
            ordered_with = ordered[i - 1] + ordered[i] if anaphor else ordered[i]
            matched = bool(cue.search(text)) if cue else False
            # What the sentence says beyond the question's words, and how specific that is: an echo of the
            # question ("The review of therapeutic targets in the tumor microenvironment ...") adds little, an
            # answer adds names, figures and rare terms.
            novel = [rarity(w) for w, t in zip(words[i], ordered[i], strict=True) if t not in wanted]
            rows.append(
                _Row(passage, rank, a, b, terms[i], [
                    _covered(terms[i], wanted),
                    _covered(context, wanted),
                    _covered(read_with, wanted),
                    _covered(terms[i], untitled),
                    float(any(wanted[t] == top for t in terms[i] if t in wanted)),
                    0.0,  # overlap_gap, set once every row is known
                    sum(w for t, w in wanted.items() if t in terms[i]),
                    len(asked_pairs & _bigrams(ordered[i])) / len(asked_pairs) if asked_pairs else 0.0,
                    _longest_run(asked, ordered[i]) / len(asked) if asked else 0.0,
                    passage.score / best_score,
                    1.0 / (1 + rank),
                    passage.dense_score or 0.0,
                    mass[passage.document] / total_mass,
                    float(passage.document == top_document),
                    1.0 / (1 + i),
                    float(matched),
                    float(cue is not None and not matched),
                    float(bool(_LISTING.search(text))),
                    float(_lists_focus(text, wanted)),
                    math.log1p(n_words),
                    float(n_words < 6),
                    float(bool(_STATEMENT.search(text))),
                    float(text[:1].islower()),
                    float(bool(_ASKS.search(text))),
                    float(bool(_HEADING.match(text)) and not _NUMBER.search(text)),
                    len(novel) / len(words[i]) if words[i] else 0.0,
                    sum(novel) / len(novel) if novel else 0.0,
                    float(bool(_ABOUT_TEXT.search(text))),
                    len(asked_pairs & _bigrams(ordered_with)) / len(asked_pairs) if asked_pairs else 0.0,
                    _longest_run(asked, ordered_with) / len(asked) if asked else 0.0,
                ])
            )  # fmt: skip
    best_overlap = max((r.cheap[0] for r in rows), default=0.0)
    gap = CHEAP_FEATURES.index("overlap_gap")
    for r in rows:
        r.cheap[gap] = r.cheap[0] - best_overlap
    return rows


def features(
    question: str,
    passages: Sequence[Passage],
    embedder: TokenEmbedder,
    *,
    limit: int | None = None,
    wanted: dict[str, float] | None = None,
) -> tuple[list[_Row], np.ndarray]:
    """Candidates and their full feature matrix (for fitting and reading).

    With ``limit``, only the ``limit`` candidates the cheap model likes best are embedded and returned.
    ``wanted`` is ``question_weights(question, passages)`` when the caller has it already.
    """
    rows = _rows(question, passages, question_weights(question, passages) if wanted is None else wanted)
    if limit is not None and len(rows) > limit:
        cheap = _model("cheap")(np.asarray([r.cheap for r in rows]))
        keep = sorted(np.argsort(-cheap, kind="stable")[:limit])
        rows = [rows[i] for i in keep]
    if not rows:
        return rows, np.zeros((0, len(FEATURES)))
    vectors, tokens = embedder.embed_tokens([question, *(r.text for r in rows)])
    cosine = vectors[1:] @ vectors[0]
    context = np.array([_context_cosine(rows, cosine, i) for i in range(len(rows))])
    cheap = np.asarray([r.cheap for r in rows])
    overlap = cheap[:, CHEAP_FEATURES.index("overlap")]
    words, weight = _content_tokens(tokens[0])
    maxsim = [_maxsim(words, weight, t) for t in tokens[1:]]
    return rows, np.column_stack([cheap, cosine, cosine - cosine.max(), context, cosine * overlap, maxsim])


def _content_tokens(question: TokenVectors) -> tuple[np.ndarray, np.ndarray]:
    """The vectors of the question's content words (whole-word tokens that are not stop words), and their
    rarity as weights."""
    keep = [i for i, t in enumerate(question.tokens) if not t.startswith("##") and analyze(t)]
    return question.vectors[keep], np.array([rarity(question.tokens[i]) for i in keep])


def _maxsim(words: np.ndarray, weight: np.ndarray, sentence: TokenVectors) -> float:
    """How closely the sentence's tokens match the question's content words: for each word its most similar
    token of the sentence (late interaction, as ColBERT scores), averaged by the words' rarity."""
    if not len(words) or not len(sentence.vectors) or not weight.sum():
        return 0.0
    best = (words @ sentence.vectors.T).max(axis=1)
    return float(best @ weight / weight.sum())


def question_features(
    question: str,
    passages: Sequence[Passage],
    rows: Sequence[_Row],
    matrix: np.ndarray,
    probability: np.ndarray,
    *,
    wanted: dict[str, float] | None = None,
) -> np.ndarray:
    """What the answerable model sees: the best candidates, and how much of the question the passages cover."""
    wanted = question_weights(question, passages) if wanted is None else wanted
    if not rows:
        return np.zeros(len(ANSWERABLE_FEATURES))
    order = np.argsort(-probability, kind="stable")
    best = int(order[0])
    runner_up = float(probability[order[1]]) if len(order) > 1 else 0.0
    covered = frozenset().union(*(r.terms for r in rows))
    top = max(wanted.values(), default=0.0)
    rare = {t: w for t, w in wanted.items() if w >= top * _RARE}
    column = {
        name: matrix[:, FEATURES.index(name)] for name in ("cosine", "bigrams", "run", "document_share", "maxsim")
    }
    # How much of the question one passage, and one document, covers: the paper that answers a question
    # usually names most of what it asks; without it the terms are spread over several near-topic papers.
    by_passage = [frozenset(analyze(p.text)) for p in passages]
    by_document: dict[tuple[str, str], frozenset[str]] = {}
    for p, terms in zip(passages, by_passage, strict=True):
        by_document[p.document] = by_document.get(p.document, frozenset()) | terms
    return np.array([
        probability[best],
        probability[best] - runner_up,
        column["cosine"][best],
        column["cosine"].max(),
        _covered(covered, wanted),
        _covered(covered, rare),
        matrix[best, FEATURES.index("overlap")],
        column["bigrams"][best],
        column["bigrams"].max(),
        column["run"].max(),
        column["document_share"].max(),
        float(_rarest(wanted) in frozenset().union(*by_passage)),
        column["maxsim"][best],
        column["maxsim"].max(),
        max(_covered(t, wanted) for t in by_passage),
        max(_covered(t, wanted) for t in by_document.values()),
    ])  # fmt: skip


def _rarest(wanted: dict[str, float]) -> str | None:
    return max(wanted, key=wanted.__getitem__, default=None)


def _lists_focus(text: str, wanted: dict[str, float]) -> bool:
    """Does a question term stand just before a verb that starts a list ("These targets include ...")?"""
    for verb in _LIST_VERB.finditer(text):
        before = analyze(text[max(0, verb.start() - 40) : verb.start()])[-3:]
        if any(t in wanted for t in before):
            return True
    return False


def _context_cosine(rows: list[_Row], cosine: np.ndarray, i: int) -> float:
    """The best cosine among the sentence and its neighbours in the same passage (those that were embedded)."""
    near = [j for j in (i - 1, i, i + 1) if 0 <= j < len(rows) and rows[j].passage.id == rows[i].passage.id]
    return float(max(cosine[j] for j in near))


def read(question: str, passages: Sequence[Passage], embedder: TokenEmbedder) -> Reading:
    """Score every candidate sentence of ``passages``; candidates come back best first."""
    wanted = question_weights(question, passages)
    rows, matrix = features(question, passages, embedder, limit=weights()["embed_limit"], wanted=wanted)
    if not rows:
        return Reading([], 0.0)
    probability = _model("sentence")(matrix)
    answerable = _model("answerable")(
        question_features(question, passages, rows, matrix, probability, wanted=wanted)[None, :]
    )
    candidates = [
        Candidate(rows[i].passage, rows[i].rank, rows[i].start, rows[i].end, rows[i].terms, float(probability[i]))
        for i in np.argsort(-probability, kind="stable")
    ]
    return Reading(candidates, float(answerable[0]))
