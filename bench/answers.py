"""Answer quality on COVID-QA as the bot answers (``Pipeline.ask``), per fold, and a sample to check by hand.

    CITEBOT_DATA_DIR=bench/results/data .venv/bin/python bench/answers.py ../shared/bench/covidqa [--sample 20]

The same figures as ``citebot eval DIR`` prints for a folder with ``answers.jsonl`` (``answer_eval``): holds
the gold answer, first sentence holds it, mean words, the answer-holding passage among those read, declines of
answerable questions, and declines of the same questions asked of the index without their paper. ``--sample``
prints that many unanswerable-variant questions that were answered anyway, with the answer's first sentence
and the paper it cites, to judge by hand whether another paper really answers them. Results:
``bench/results/answers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from retrieval import evaluate
from retrieval.answer_eval import AnswerScores, first_sentence, half, load_answers, open_variants
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--sample", type=int, default=20, help="answered unanswerable questions to print")
    args = parser.parse_args()
    load_before = os.getloadavg()
    t0 = time.time()
    data = evaluate.load_beir(args.dataset)
    golds = {q: g for q, g in load_answers(args.dataset).items() if q in data.queries}
    pipeline = Pipeline(evaluate.dataset_settings(data, RetrievalSettings()))
    pipeline.index_documents(f"beir:{data.name}", data.documents())
    variants = open_variants(pipeline, data, golds)
    scores = AnswerScores()
    answered_anyway = []
    latencies = []
    for qid, gold in golds.items():
        question = data.queries[qid]
        t1 = time.perf_counter()
        scores.add(gold, pipeline.ask(question), answerable=True)
        latencies.append((time.perf_counter() - t1) * 1000)
        void = variants[half(gold.doc_id)].ask(question)
        scores.add(gold, void, answerable=False)
        if void.found:
            answered_anyway.append((question, first_sentence(void.text), void.citations[0].passage.title))
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "seconds": round(time.time() - t0),
        "ask_p50_ms": sorted(latencies)[len(latencies) // 2],
        "all": scores.summary(),
        "tune": scores.summary("tune"),
        "held": scores.summary("held"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "answers.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))
    random.Random(0).shuffle(answered_anyway)
    for question, sentence, title in answered_anyway[: args.sample]:
        print(f"\nQ: {question}\nA: {sentence}\n   ({title})")


if __name__ == "__main__":
    main()
