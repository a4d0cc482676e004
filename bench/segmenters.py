"""Sentence segmenters compared on COVID-QA's papers (the choice behind ``retrieval/sentences.py``).

    .venv/bin/pip install blingfire pysbd sentencex   # the candidates citebot does not depend on
    .venv/bin/python bench/segmenters.py ../shared/bench/covidqa

Each paper is cut at line breaks first (as citebot does), then each line by the segmenter. Reported: how many
boundaries are followed by a lower-case letter (almost always a false break: "et al. found", "Ae. aegypti"),
how many sentences run past 600 characters (missed breaks), how many gold answer spans a boundary cuts at a
point that is not a sentence end, and the time for the 49 answer-holding papers.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

Splitter = Callable[[str], list[tuple[int, int]]]
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s*$")


def candidates() -> dict[str, Splitter]:
    import blingfire
    import nupunkt
    import pysbd
    import sentencex

    pysbd_segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)
    return {
        "regex (before)": lambda b: [(m.start(), m.end()) for m in re.finditer(r".+?(?:[.!?](?=\s)|$)", b)],
        "blingfire": lambda b: blingfire.text_to_sentences_and_offsets(b)[1],
        "sentencex": lambda b: [(d["start_index"], d["end_index"]) for d in sentencex.get_sentence_boundaries("en", b)],
        "nupunkt": lambda b: list(nupunkt.sent_spans(b)),
        "pysbd": lambda b: [(s.start, s.end) for s in pysbd_segmenter.segment(b)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    folder = parser.parse_args().dataset
    corpus = {(d := json.loads(line))["id"]: d["text"] for line in (folder / "corpus.jsonl").open()}
    answers = [json.loads(line) for line in (folder / "answers.jsonl").open()]
    docs = sorted({a["doc_id"] for a in answers})
    print(f"{'segmenter':15s} {'false breaks':>12s} {'>600 chars':>10s} {'gold cut':>9s} {'sentences':>9s} {'ms':>6s}")
    for name, split in candidates().items():
        t0 = time.perf_counter()
        bounds: dict[str, set[int]] = {}
        false = long = count = 0
        for d in docs:
            found: set[int] = set()
            for line in re.finditer(r"[^\n]+", corpus[d]):
                spans = split(line.group())
                count += len(spans)
                for a, b in spans:
                    found |= {line.start() + a, line.start() + b}
                    long += b - a > 600
                for _, b in spans[:-1]:
                    rest = line.group()[b:].lstrip()
                    false += bool(rest) and rest[0].islower()
            bounds[d] = found
        ms = (time.perf_counter() - t0) * 1000
        cut = 0
        for a in answers:
            gold = a["answers"][0]
            s, e, text = gold["answer_start"], gold["answer_start"] + len(gold["text"].rstrip()), corpus[a["doc_id"]]
            cut += any(s < b < e - 1 and not _SENTENCE_END.search(text[max(s, b - 3) : b]) for b in bounds[a["doc_id"]])
        print(f"{name:15s} {false:12d} {long:10d} {cut:9d} {count:9d} {ms:6.0f}")


if __name__ == "__main__":
    main()
