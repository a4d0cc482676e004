"""Shared helpers of the bench scripts: a BEIR-layout folder as a list of documents, and run scoring.

Reading and scoring are ``retrieval.evaluate``'s (the same code `citebot eval` uses); this module only gives
the raw-embedder benchmarks the shapes they work with. Bench scripts import it as ``scifact`` (they run with
``bench/`` as their script directory).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from retrieval.evaluate import load_beir, score

logger = logging.getLogger(__name__)

# retrieval.evaluate's metric names -> the keys the bench JSON has always used.
MEASURES = {"nDCG@10": "ndcg@10", "Recall@10": "recall@10", "Recall@100": "recall@100"}


@dataclass(frozen=True)
class Doc:
    """One corpus entry."""

    id: str
    title: str
    text: str

    @property
    def passage(self) -> str:
        """What gets embedded or indexed: the title, a space, the abstract."""
        return f"{self.title} {self.text}".strip()


@dataclass(frozen=True)
class Dataset:
    """A BEIR-layout dataset restricted to its test split."""

    corpus: list[Doc]  # in file order
    queries: dict[str, str]  # query id -> text, only queries with relevance judgements
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}


def load(folder: Path) -> Dataset:
    """Read corpus, queries and qrels of ``folder``; keep the queries present in the qrels."""
    data = load_beir(folder)
    corpus = [Doc(doc_id, title, text) for doc_id, (title, text) in data.corpus.items()]
    logger.info("%s: %d documents, %d test queries", folder, len(corpus), len(data.queries))
    return Dataset(corpus=corpus, queries=data.queries, qrels=data.qrels)


def evaluate(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean nDCG@10, Recall@10 and Recall@100 of ``run`` over the judged queries (missing ones count 0)."""
    metrics = score(qrels, run)
    return {key: metrics[name] for name, key in MEASURES.items()}
