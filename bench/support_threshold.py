"""Measure the citation support threshold on SciFact rationales.

    .venv/bin/python bench/support_threshold.py ../shared/bench/scifact [--embedder minilm-l6-int8]

A claim is supported by an abstract that holds a SUPPORT rationale for it. Unsupported pairs: the claim with
a random other abstract, and (harder, like the passages of one search) with the abstract BM25 ranks highest
among those not judged relevant to the claim. CONTRADICT pairs are reported as well: a similarity check
cannot tell a finding from its opposite. Every pair is scored by ``retrieval.grounding.SupportChecker``, the
code that checks answers. The chosen threshold (on a 0.05 grid) lets no random pair through, and is raised
further while the similarity test still keeps at least 95% of supported pairs (the numbers test, which
SciFact's reworded claims sometimes fail, is reported apart). The script fails when no threshold rejects
every random pair. Results go to
``bench/results/support_threshold-<embedder>.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scifact

from retrieval.catalog import Catalog, CatalogChunk, DocumentRow
from retrieval.embeddings import MODELS, get_embedder
from retrieval.grounding import Support, SupportChecker
from retrieval.keyword_index import KeywordIndex
from retrieval.types import Passage

logger = logging.getLogger(__name__)

RESULTS = Path(__file__).parent / "results"
GRID = [round(t, 2) for t in np.arange(0.30, 0.801, 0.05)]
KEEP_SUPPORTED = 0.95
Pair = tuple[str, str, Passage, set[int]]  # group, claim, abstract, gold rationale sentence indices


def read_rationales(path: Path) -> list[tuple[str, str, str, set[int]]]:
    """``rationales_test.tsv`` rows: (query id, corpus id, label, sentence indices)."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t")
        return [
            (r["query-id"], r["corpus-id"], r["label"], {int(i) for i in r["sentence-indices"].split(",")})
            for r in rows
        ]


def build_pairs(folder: Path, seed: int) -> list[Pair]:
    """Supported, contradicted, random and hard pairs, each claim with one abstract."""
    data = scifact.load(folder)
    docs = {d.id: d for d in data.corpus}
    passage = {d.id: Passage(id=d.id, text=d.text, metadata={"title": d.title}) for d in data.corpus}
    rng = random.Random(seed)
    rationales = read_rationales(folder / "rationales_test.tsv")
    pairs: list[Pair] = []
    for query_id, doc_id, label, gold in rationales:
        claim = data.queries[query_id]
        pairs.append((label.lower(), claim, passage[doc_id], gold))
        other = rng.choice([d for d in docs if d != doc_id])
        pairs.append(("random", claim, passage[other], set()))
    index = Catalog(Path(tempfile.mkdtemp(prefix="citebot-threshold-")) / "catalog.sqlite")
    index.replace([DocumentRow("scifact", i, "", 1, 0) for i in docs],
                  [CatalogChunk(i, i, d.passage) for i, d in docs.items()])
    keywords = KeywordIndex(index)
    for query_id in sorted({r[0] for r in rationales}):
        hits = keywords.search(data.queries[query_id], k=10)
        hard = next(doc_id for doc_id, _ in hits if doc_id not in data.qrels[query_id])
        pairs.append(("hard", data.queries[query_id], passage[hard], set()))
    return pairs


def gold_quote(passage: Passage, support: Support, gold: set[int]) -> bool:
    """Is the quoted span one of the rationale sentences (SciFact's own sentence split, rejoined)?"""
    sentences = re.split(r"(?<=[.!?])\s+", passage.text)
    quote = passage.text[support.start : support.end]
    return any(quote in sentences[i] or sentences[i] in quote for i in gold if i < len(sentences))


def pass_rates(groups: dict[str, list[Support]], threshold: float) -> dict[str, float]:
    """Share of each group's pairs the whole check accepts at ``threshold``; ``similar``: the cosine test alone."""
    rates = {g: float(np.mean([s.numbers_found and s.score >= threshold for s in v])) for g, v in groups.items()}
    rates["similar"] = float(np.mean([s.score >= threshold for s in groups["support"]]))
    return rates


def measure(pairs: Sequence[Pair], embedder_name: str) -> dict:
    """Score every pair with the real checker and summarise the rates per threshold."""
    checker = SupportChecker(get_embedder(embedder_name))
    start = time.perf_counter()
    supports = checker.assess([(claim, p) for _, claim, p, _ in pairs])
    seconds = time.perf_counter() - start
    groups: dict[str, list[Support]] = {}
    for (group, *_), support in zip(pairs, supports, strict=True):
        groups.setdefault(group, []).append(support)
    table = {t: pass_rates(groups, t) for t in GRID}
    clean = min((t for t in GRID if table[t]["random"] == 0), default=None)
    if clean is None:
        raise SystemExit(f"{embedder_name}: no threshold up to {GRID[-1]} rejects every random pair")
    chosen = max([clean] + [t for t in GRID if table[t]["similar"] >= KEEP_SUPPORTED])
    quotes = [gold_quote(p, s, gold) for (g, _, p, gold), s in zip(pairs, supports, strict=True) if g == "support"]
    scores = {g: [s.score for s in v] for g, v in groups.items()}
    return {
        "embedder": embedder_name,
        "pairs": {g: len(v) for g, v in groups.items()},
        "numbers_missing": {g: float(np.mean([not s.numbers_found for s in v])) for g, v in groups.items()},
        "gap": {"lowest_supported": min(scores["support"]), "highest_random": max(scores["random"])},
        "table": table,
        "chosen": chosen,
        "quote_is_rationale": float(np.mean(quotes)),
        "seconds": seconds,
    }


def report(result: dict) -> str:
    """The markdown table BENCHMARKS.md quotes."""
    lines = [
        f"embedder {result['embedder']}, pairs {result['pairs']}, scored in {result['seconds']:.0f} s",
        "| threshold | supported kept (cosine alone) | supported kept | contradicted kept | random rejected "
        "| hard rejected |",
        "|---|---|---|---|---|---|",
    ]
    for t, r in result["table"].items():
        mark = " **chosen**" if t == result["chosen"] else ""
        lines.append(
            f"| {t:.2f}{mark} | {r['similar']:.1%} | {r['support']:.1%} | {r['contradict']:.1%} | "
            f"{1 - r['random']:.1%} | {1 - r['hard']:.1%} |"
        )
    gap = result["gap"]
    lines.append(
        f"lowest supported cosine {gap['lowest_supported']:.3f}, highest random {gap['highest_random']:.3f}; "
        f"numbers missing from the abstract: {result['numbers_missing']['support']:.1%} of supported pairs; "
        f"the quote is a gold rationale sentence in {result['quote_is_rationale']:.1%} of supported pairs"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="SciFact folder with rationales_test.tsv")
    parser.add_argument("--embedder", default="minilm-l6-int8", choices=sorted(MODELS))
    parser.add_argument("--seed", type=int, default=0, help="picks the random abstracts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = measure(build_pairs(args.folder, args.seed), args.embedder)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"support_threshold-{args.embedder}.json").write_text(json.dumps(result, indent=2))
    print(report(result))


if __name__ == "__main__":
    main()
