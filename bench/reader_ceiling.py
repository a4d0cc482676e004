"""Where the offline answer loses the gold answer: a funnel from the paper to the answer's first sentence.

    CITEBOT_DATA_DIR=bench/results/data .venv/bin/python bench/reader_ceiling.py ../shared/bench/covidqa [MORE ...]

For each question of each dataset (``answers.jsonl``), asked of the full index as the bot asks it, the share
of questions, per fold (``answer_eval.fold``), for which the gold answer (60% of a span's content words,
``answer_eval.holds``) is held by:

1. ``paper``: some sentence of the answer's own paper (what any reader that quotes one sentence could reach);
2. ``paper_pair``: some two adjacent sentences of it (gold spans that run over a sentence end);
3. ``read``: some candidate sentence of the passages the reader is given (search as the bot searches);
4. ``cut_16``, ``cut_N``: one of the 16 / the shipped ``embed_limit`` (N) candidates the cheap model keeps;
5. ``top_3``, ``top_1``: the reader's three best / best candidate (the answer's first sentence is its best);
6. ``answer``, ``first_sentence``: the composed answer, and its first sentence (``Pipeline.ask``).

The gap between two steps is what that step loses; the gap from ``cut_N`` to ``top_1`` is the sentence
scorer's. Results: ``bench/results/reader_ceiling.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from retrieval import evaluate, reader
from retrieval.answer_eval import first_sentence, fold, holds, load_answers
from retrieval.pipeline import Pipeline
from retrieval.sentences import spans
from retrieval.settings import RetrievalSettings

RESULTS = Path(__file__).parent / "results"
STEPS = ("paper", "paper_pair", "read", "cut_16", "cut_N", "top_3", "top_1", "answer", "first_sentence")


def funnel(folder: Path) -> dict[str, dict[str, float]]:
    data = evaluate.load_beir(folder)
    golds = {q: g for q, g in load_answers(folder).items() if q in data.queries}
    pipeline = Pipeline(evaluate.dataset_settings(data, RetrievalSettings()))
    pipeline.index_documents(f"beir:{data.name}", data.documents())
    budget = reader.weights()["embed_limit"]
    embedder = pipeline.store.embedder
    hits: dict[str, dict[str, list[bool]]] = {"tune": {s: [] for s in STEPS}, "held": {s: [] for s in STEPS}}
    for qid, gold in golds.items():
        text = data.corpus[gold.doc_id][1]
        sentences = [text[a:b] for a, b in spans(text)]
        found = pipeline.search(data.queries[qid], k=pipeline.settings.read_k)
        wanted = reader.question_weights(found.question, found.passages)
        every = reader._rows(found.question, found.passages, wanted)
        rows, matrix = reader.features(found.question, found.passages, embedder, limit=16, wanted=wanted)
        cheap = reader._model("cheap")(matrix[:, : len(reader.CHEAP_FEATURES)]) if rows else np.zeros(0)
        kept = np.argsort(-cheap, kind="stable")[:budget]
        reading = reader.read(found.question, found.passages, embedder)
        best = [holds(c.text, gold) for c in reading.candidates[:3]]
        answer = pipeline.ask(data.queries[qid])
        got = hits[fold(gold.doc_id)]
        for step, hit in (
            ("paper", any(holds(s, gold) for s in sentences)),
            ("paper_pair", any(holds(f"{s} {t}", gold) for s, t in zip(sentences, sentences[1:], strict=False))),
            ("read", any(holds(r.text, gold) for r in every)),
            ("cut_16", any(holds(r.text, gold) for r in rows)),
            ("cut_N", any(holds(rows[i].text, gold) for i in kept)),
            ("top_3", any(best)),
            ("top_1", bool(best) and best[0]),
            ("answer", answer.found and holds(answer.text, gold)),
            ("first_sentence", answer.found and holds(first_sentence(answer.text), gold)),
        ):
            got[step].append(hit)
    return {
        part: {"questions": len(steps["paper"]), **{s: round(float(np.mean(v)), 4) for s, v in steps.items()}}
        for part, steps in hits.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, nargs="+", help="folders with answers.jsonl")
    args = parser.parse_args()
    load_before, t0 = os.getloadavg(), time.time()
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "embed_limit": reader.weights()["embed_limit"],
        "datasets": {folder.name: funnel(folder) for folder in args.dataset},
    }
    report |= {"load_average": [load_before, os.getloadavg()], "seconds": round(time.time() - t0)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reader_ceiling.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    for name, parts in report["datasets"].items():
        for part, row in parts.items():
            print(
                f"{name:10} {part:5} "
                + "  ".join(f"{k} {v:.1%}" if k != "questions" else f"n={v}" for k, v in row.items())
            )


if __name__ == "__main__":
    main()
