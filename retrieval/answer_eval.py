"""Answer quality on a BEIR-layout folder that also holds gold answers (``answers.jsonl``).

Each record is ``{"id": query id, "doc_id": ..., "answers": [{"text": ..., "answer_start": ...}]}``. An answer
"holds the gold answer" when it contains at least 60% of the gold span's content words (lower-cased
alphanumeric tokens minus a short stop list), as COVID-QA's PROVENANCE.md describes the judgement; the same
is measured for the answer's first sentence, and its length in words is reported beside it.

Declines are measured honestly: the *unanswerable variant* asks each question against an index that lacks
the one document holding its answer. The documents that hold answers are split in two halves, and each half's
questions are asked against a collection holding every other document (``without_half``), so the question is
in-domain, its neighbours are indexed, and only its own paper is missing.

Questions are split into folds by their document (``fold``): the reader's weights and thresholds are fitted on
the "tune" fold, and figures are reported on the "held" fold too, so a score is never only a training score.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from retrieval.citations import MARKER
from retrieval.embeddings import TokenVectors
from retrieval.evaluate import Dataset
from retrieval.loaders import LoadedDocument
from retrieval.pipeline import Pipeline
from retrieval.sentences import spans
from retrieval.settings import RetrievalSettings
from retrieval.sync import ProgressFn
from retrieval.types import Answer

HOLDS = 0.6  # share of the gold span's content words an answer must contain
_STOP = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it", "its",
        "of", "on", "or", "that", "the", "this", "to", "was", "were", "which", "with",
    }
)  # fmt: skip
_WORD = re.compile(r"[a-z0-9]+")

Fold = Literal["tune", "held"]


@dataclass(frozen=True)
class Gold:
    """A question's gold answer spans and the document they come from."""

    query_id: str
    doc_id: str
    answers: tuple[str, ...]


def load_answers(folder: Path) -> dict[str, Gold]:
    """``answers.jsonl`` of a dataset folder, by query id; empty when the folder has none."""
    path = folder / "answers.jsonl"
    if not path.exists():
        return {}
    golds = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                r = json.loads(line)
                texts = tuple(a["text"] for a in r["answers"] if a.get("text", "").strip())
                if texts:
                    golds[str(r["id"])] = Gold(str(r["id"]), str(r["doc_id"]), texts)
    return golds


def fold(doc_id: str) -> Fold:
    """The fold of a document's questions: a stable half by the hash of its id."""
    return "tune" if hashlib.sha256(doc_id.encode()).digest()[0] % 2 == 0 else "held"


def half(doc_id: str) -> int:
    """Which unanswerable-variant collection lacks this document (0 or 1), independent of ``fold``."""
    return hashlib.sha256(f"half:{doc_id}".encode()).digest()[0] % 2


def content_words(text: str) -> set[str]:
    """Lower-cased alphanumeric tokens minus stop words."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def holds(text: str, gold: Gold) -> bool:
    """Does ``text`` contain at least ``HOLDS`` of some gold span's content words?"""
    words = content_words(text)
    for answer in gold.answers:
        wanted = content_words(answer)
        if wanted and len(wanted & words) >= HOLDS * len(wanted):
            return True
    return False


def plain(text: str) -> str:
    """Answer text as read, without ``[n]`` markers."""
    return re.sub(r"[ \t]{2,}", " ", MARKER.sub("", text)).strip()


def first_sentence(text: str) -> str:
    found = spans(plain(text))
    return plain(text)[found[0][0] : found[0][1]] if found else ""


@dataclass
class AnswerScores:
    """Per-question outcomes, summed up by ``summary``."""

    answered: list[dict[str, Any]] = field(default_factory=list)
    unanswerable: list[dict[str, Any]] = field(default_factory=list)

    def add(self, gold: Gold, answer: Answer, *, answerable: bool) -> None:
        row = {
            "id": gold.query_id,
            "fold": fold(gold.doc_id),
            "declined": not answer.found,
            "holds": answer.found and holds(plain(answer.text), gold),
            "first": answer.found and holds(first_sentence(answer.text), gold),
            "words": len(plain(answer.text).split()) if answer.found else 0,
            "drawn": any(holds(p.text, gold) for p in answer.passages),
        }
        (self.answered if answerable else self.unanswerable).append(row)

    def summary(self, which: Fold | None = None) -> dict[str, float]:
        """The figures over one fold, or all questions."""
        rows = [r for r in self.answered if which in (None, r["fold"])]
        void = [r for r in self.unanswerable if which in (None, r["fold"])]
        found = [r for r in rows if not r["declined"]]
        return {
            "questions": len(rows),
            "holds_gold": _share(r["holds"] for r in rows),
            "first_sentence_holds_gold": _share(r["first"] for r in rows),
            "mean_words": statistics.fmean(r["words"] for r in found) if found else 0.0,
            "drawn_on": _share(r["drawn"] for r in rows),
            "declined_answerable": _share(r["declined"] for r in rows),
            "unanswerable_questions": len(void),
            "declined_unanswerable": _share(r["declined"] for r in void),
        }


def _share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else 0.0


def open_variants(
    pipeline: Pipeline, dataset: Dataset, golds: dict[str, Gold], *, progress: ProgressFn | None = None
) -> dict[int, Pipeline]:
    """The two unanswerable-variant pipelines beside ``pipeline`` (indexed on first use, reused after).

    Their chunks are the full collection's, so the variants take its vectors instead of embedding them again.
    """
    variants = {}
    known: _Known | None = None
    for which in (0, 1):
        settings = without_settings(pipeline.settings, which)
        variant = Pipeline(settings, embedder=pipeline.embedder)
        if not variant.store.count():
            known = known or _Known(pipeline)
            variant = Pipeline(settings, embedder=known)
        root = f"beir:{dataset.name}-without-{which}"
        variant.index_documents(root, without_documents(dataset, golds, which), progress=progress)
        variants[which] = variant
    return variants


class _Known:
    """The pipeline's embedder, answering from its collection's stored vectors for texts already embedded."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.embedder = pipeline.embedder
        self.name, self.dim = self.embedder.name, self.embedder.dim
        self.vectors = {c.text: c.embedding for c in pipeline.store.scan(embeddings=True)}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, self.embedder.embed(missing), strict=True))
        return np.asarray([self.vectors[t] for t in texts], dtype=np.float32)

    def embed_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[TokenVectors]]:
        return self.embedder.embed_tokens(texts)  # the reader's sentences, never stored


def score_answers(
    pipeline: Pipeline, dataset: Dataset, golds: dict[str, Gold], *, progress: ProgressFn | None = None
) -> AnswerScores:
    """Ask every question with a gold answer as the bot would, and again of the index lacking its document."""
    variants = open_variants(pipeline, dataset, golds, progress=progress)
    scores = AnswerScores()
    for qid, gold in golds.items():
        if qid in dataset.queries:
            question = dataset.queries[qid]
            scores.add(gold, pipeline.ask(question), answerable=True)
            scores.add(gold, variants[half(gold.doc_id)].ask(question), answerable=False)
    return scores


def without_settings(dataset_settings: RetrievalSettings, which: int) -> RetrievalSettings:
    """Settings of the unanswerable variant's collection that lacks half ``which`` of the answer documents."""
    return dataset_settings.model_copy(update={"collection": f"{dataset_settings.collection}-without-{which}"})


def without_documents(dataset: Dataset, golds: dict[str, Gold], which: int) -> Iterator[LoadedDocument]:
    """The dataset's documents less the answer-holding ones of half ``which``."""
    missing = {g.doc_id for g in golds.values() if half(g.doc_id) == which}
    return (d for d in dataset.documents() if d.source not in missing)
