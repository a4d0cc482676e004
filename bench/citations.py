"""Citation quality of the offline (extractive) answer on SciFact: are the cited passages the gold ones?

    CITEBOT_DATA_DIR=bench/results/data .venv/bin/python bench/citations.py ../shared/bench/scifact

Every test claim is asked through ``Pipeline.ask`` (no language model configured, so the answer quotes
retrieved sentences), on the collection ``citebot eval`` and ``bench/quality.py`` use. For each answer:

- citation precision: the share of citations whose passage comes from a gold-relevant abstract (qrels); per
  answer, whether at least one and whether every citation is gold;
- citation recall: the share of a claim's gold abstracts that the answer cites, next to the share found among
  the passages the answer was drawn from (the most citing could reach);
- rationale overlap: the share of quotes from gold abstracts that cover a gold rationale sentence of
  ``rationales_test.tsv`` (at least half of the quote lies in one). SciFact numbers sentences in its own
  split; the abstract text here is those sentences joined, so they are found again by splitting at end
  punctuation, which is close but not exact.

Runs with the configured settings, with reciprocal rank fusion (the former default), and with answers drawn
from fewer passages or quoting fewer sentences (what trades recall for precision). Results:
``bench/results/citations.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval import evaluate
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from retrieval.types import Answer, Citation

logger = logging.getLogger(__name__)

RESULTS = Path(__file__).parent / "results"
VARIANTS: dict[str, dict[str, Any]] = {
    "configured": {},
    "RRF k=60": {"fusion": "rrf", "rrf_k": 60},
    "top 3 passages": {"top_k": 3},
    "2 sentences at most": {"max_sentences": 2},
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
Spans = dict[tuple[str, str], list[tuple[int, int]]]  # (claim id, abstract id) -> gold sentence spans


def rationale_spans(folder: Path, data: evaluate.Dataset) -> Spans:
    """(claim id, abstract id) -> character spans of its gold rationale sentences in the indexed text."""
    spans: Spans = {}
    with (folder / "rationales_test.tsv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            title, text = data.corpus[row["corpus-id"]]
            offset = len(title) + 2 if title else 0  # the indexed text is title, blank line, abstract
            bounds = _sentence_bounds(text)
            for index in (int(i) for i in row["sentence-indices"].split(",")):
                if index < len(bounds):
                    start, end = bounds[index]
                    spans.setdefault((row["query-id"], row["corpus-id"]), []).append((offset + start, offset + end))
    return spans


def _sentence_bounds(text: str) -> list[tuple[int, int]]:
    starts = [0] + [m.end() for m in _SENTENCE_END.finditer(text)]
    ends = [m.start() for m in _SENTENCE_END.finditer(text)] + [len(text)]
    return list(zip(starts, ends, strict=True))


def covers_rationale(citation: Citation, spans: list[tuple[int, int]]) -> bool:
    """Does at least half of the quote lie inside one gold rationale sentence?"""
    start, end = citation.source_start, citation.source_end
    return any(min(end, e) - max(start, s) >= (end - start) / 2 for s, e in spans)


@dataclass
class Tally:
    """Counts over all claims, turned into the shares ``summary`` reports."""

    claims: int = 0
    answered: int = 0
    any_gold: int = 0
    all_gold: int = 0
    citations: int = 0
    gold_citations: int = 0
    rationale_citations: int = 0
    gold_docs: int = 0
    gold_cited: int = 0
    gold_retrieved: int = 0

    def add(self, answer: Answer, gold: set[str], spans: Spans, qid: str) -> None:
        self.claims += 1
        self.gold_docs += len(gold)
        self.gold_retrieved += len(gold & {p.source for p in answer.passages})
        if not answer.found:
            return
        cited = [c for c in answer.citations if c.passage.source in gold]
        self.answered += 1
        self.any_gold += bool(cited)
        self.all_gold += len(cited) == len(answer.citations)
        self.citations += len(answer.citations)
        self.gold_citations += len(cited)
        self.rationale_citations += sum(covers_rationale(c, spans.get((qid, c.passage.source), [])) for c in cited)
        self.gold_cited += len({c.passage.source for c in cited})

    def summary(self) -> dict[str, float]:
        return {
            "answered": self.answered / self.claims,
            "answers_with_a_gold_citation": self.any_gold / max(self.answered, 1),
            "answers_citing_only_gold": self.all_gold / max(self.answered, 1),
            "citation_precision": self.gold_citations / max(self.citations, 1),
            "citation_recall": self.gold_cited / self.gold_docs,
            "gold_in_passages": self.gold_retrieved / self.gold_docs,
            "gold_quotes_on_a_rationale": self.rationale_citations / max(self.gold_citations, 1),
            "citations_per_answer": self.citations / max(self.answered, 1),
        }


def measure(pipeline: Pipeline, data: evaluate.Dataset, spans: Spans) -> dict[str, float]:
    """Ask every claim and tally its citations."""
    tally, latencies = Tally(), []
    for qid, claim in data.queries.items():
        t0 = time.perf_counter()
        answer = pipeline.ask(claim)
        latencies.append((time.perf_counter() - t0) * 1000)
        tally.add(answer, set(data.qrels[qid]), spans, qid)
    return {**tally.summary(), "latency_p50_ms": statistics.median(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="SciFact in BEIR layout with rationales_test.tsv")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data = evaluate.load_beir(args.dataset)
    spans = rationale_spans(args.dataset, data)
    settings = evaluate.dataset_settings(data, RetrievalSettings())
    report: dict[str, Any] = {"dataset": data.name, "claims": len(data.queries), "top_k": settings.top_k,
                              "max_sentences": settings.max_sentences, "date": time.strftime("%Y-%m-%d")}
    for label, update in VARIANTS.items():
        pipeline = Pipeline(settings.model_copy(update=update))
        pipeline.index_documents(f"beir:{data.name}", data.documents())
        report[label] = measure(pipeline, data, spans)
        print(label, json.dumps(report[label], indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "citations.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
