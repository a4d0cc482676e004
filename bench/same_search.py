"""Do two codes search alike? Each dumps its passages for the same claims; ``compare`` says where they differ.

    .venv/bin/python bench/same_search.py dump ../shared/bench/scifact --data DIR --out A.json [--size 10000]
        [--queries 300]
    PYTHONPATH=OTHER_CHECKOUT .venv/bin/python bench/same_search.py dump ... --data COPY_OF_DIR --out B.json
    .venv/bin/python bench/same_search.py compare A.json B.json

``dump`` opens the recombined corpus of ``--size`` chunks (``bench/corpora.py``) and records, for each of the
first ``--queries`` SciFact claims, ``Pipeline.search`` with k = 24 (as ``ask`` searches): every passage's id,
fused score, cosine, dense and keyword ranks, text and metadata. Give each code its own copy of the data dir:
a code of another catalog FORMAT rebuilds the catalog. ``compare`` requires the same passages in the same order
with the same values, and prints the largest score difference and the first differing claim, if any.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import corpora

from retrieval.evaluate import load_beir

K = 24


def dump(args: argparse.Namespace) -> None:
    pipeline = corpora.build(args.dataset, args.data, args.size)
    if hasattr(pipeline.store, "keywords"):  # the in-memory keyword index, not the catalog's FTS5 meanwhile
        pipeline.store.keywords.load()
    claims = list(load_beir(args.dataset).queries.values())[: args.queries]
    out = []
    for claim in claims:
        found = pipeline.search(claim, k=K)
        out.append({"claim": claim, "question": found.question, "passages": [
            {"id": p.id, "score": p.score, "dense_score": p.dense_score, "dense_rank": p.dense_rank,
             "keyword_rank": p.keyword_rank, "text": p.text, "metadata": p.metadata} for p in found.passages]})
    args.out.write_text(json.dumps(out))
    print(f"{len(out)} claims, {sum(len(r['passages']) for r in out)} passages -> {args.out}")


def compare(args: argparse.Namespace) -> None:
    a, b = (json.loads(path.read_text()) for path in (args.a, args.b))
    assert [r["claim"] for r in a] == [r["claim"] for r in b], "not the same claims"
    differing, largest = [], 0.0
    for n, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            differing.append(n)
        if [p["id"] for p in x["passages"]] == [p["id"] for p in y["passages"]]:
            largest = max([largest] + [abs(p["score"] - q["score"]) for p, q in
                                       zip(x["passages"], y["passages"], strict=True)])
    print(f"{len(a)} claims: {len(a) - len(differing)} identical (ids, order, scores, cosines, ranks, texts,"
          f" metadata); largest fused-score difference where the ids agree: {largest:.3g}")
    if differing:
        n = differing[0]
        print(f"first differing claim #{n}: {a[n]['claim']!r}")
        for p, q in zip(a[n]["passages"], b[n]["passages"], strict=False):
            if p != q:
                for side in (p, q):
                    print(" ", {key: value for key, value in side.items() if key != "text"})
                break
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("dataset", type=Path)
    d.add_argument("--data", type=Path, required=True, help="data directory of the corpora")
    d.add_argument("--size", type=int, default=10_000)
    d.add_argument("--queries", type=int, default=300)
    d.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = parser.parse_args()
    dump(args) if args.command == "dump" else compare(args)


if __name__ == "__main__":
    main()
