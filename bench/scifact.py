"""Shared helpers of the bench scripts: read a BEIR-layout folder and score a run with pytrec_eval.

A folder holds ``corpus.jsonl`` (``_id``/``id``, ``title``, ``text``), ``queries.jsonl`` (``_id``/``id``,
``text``) and ``qrels.tsv`` (``query-id``, ``corpus-id``, ``score`` with a header line). The test split is the
set of queries that appear in ``qrels.tsv``. Bench scripts import this module as ``scifact`` (they run with
``bench/`` as their script directory).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytrec_eval

logger = logging.getLogger(__name__)

MEASURES = {"ndcg_cut.10": "ndcg@10", "recall.10": "recall@10", "recall.100": "recall@100"}


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


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _id(record: dict[str, Any]) -> str:
    return str(record.get("_id", record.get("id")))


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``qrels.tsv`` as {query id: {doc id: relevance}}; the header line is skipped."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t")
        next(rows)
        for query_id, doc_id, score in rows:
            qrels.setdefault(query_id, {})[doc_id] = int(score)
    return qrels


def load(folder: Path) -> Dataset:
    """Read corpus, queries and qrels of ``folder``; keep the queries present in the qrels."""
    qrels = read_qrels(folder / "qrels.tsv")
    records = _read_jsonl(folder / "corpus.jsonl")
    corpus = [Doc(_id(r), r.get("title") or "", r.get("text") or "") for r in records]
    queries = {_id(r): r["text"] for r in _read_jsonl(folder / "queries.jsonl") if _id(r) in qrels}
    logger.info("%s: %d documents, %d test queries", folder, len(corpus), len(queries))
    return Dataset(corpus=corpus, queries=queries, qrels=qrels)


def evaluate(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean nDCG@10, Recall@10 and Recall@100 of ``run`` ({query id: {doc id: score}}) over judged queries.

    A judged query missing from the run counts as 0, as it would for a user.
    """
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, set(MEASURES))
    per_query = evaluator.evaluate(run)
    return {
        label: sum(per_query.get(q, {}).get(measure.replace(".", "_"), 0.0) for q in qrels) / len(qrels)
        for measure, label in MEASURES.items()
    }
