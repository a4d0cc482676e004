"""Int8 variants of all-MiniLM-L6-v2: cosine of their vectors to the fp32 model's, and their time, on SciFact.

    .venv/bin/python bench/quantize.py ../shared/bench/scifact [--docs 200] [--claims 100] [--variants ...]

A sample of SciFact (every n-th abstract, chunked with the default settings, up to ``--docs`` abstracts, and
the first ``--claims`` test claims) is embedded by the packaged model (weights cast to fp32 at load) and by
each per-channel dynamic int8 variant of ``retrieval.quantize`` (all weight MatMuls, or some kept in fp32),
built into a temporary folder. Per variant: the mean and the 1st percentile of the cosine of each vector to its
fp32 vector, for passages and claims, the share of claims whose top 10 passages (brute-force cosine over the
sample) stay the same set, and the wall and CPU seconds of embedding the passages, the variants rotating per
round so load falls on all alike. Results go to ``bench/results/quantize.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import corpora
import numpy as np

from retrieval.chunking import split
from retrieval.embeddings import MODELS, OnnxEmbedder
from retrieval.evaluate import load_beir
from retrieval.quantize import ROLES, Quantization

# Name -> what stays fp32: everything quantized, each role kept fp32 in turn, the first or last layer kept.
VARIANTS: dict[str, Quantization | None] = {
    "fp32": None,
    "all": Quantization(),
    "reduce_range": Quantization(reduce_range=True),
    **{f"keep-{role}": Quantization(keep_fp32=(role,)) for role in ROLES},
    "keep-layer0": Quantization(keep_fp32=("0",)),
    "keep-layer5": Quantization(keep_fp32=("5",)),
}


def sample(dataset: Path, docs: int, claims: int) -> tuple[list[str], list[str]]:
    """Chunk texts of ``docs`` abstracts spread over the corpus, and the first ``claims`` claims."""
    data = load_beir(dataset)
    every = list(data.documents())
    step = max(1, len(every) // docs)
    settings = corpora.settings_for(Path(tempfile.gettempdir()), "quantize")
    texts = [c.page_content for d in every[::step][:docs]
             for c in split(d, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)]
    return texts, list(data.queries.values())[:claims]


def cosines(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    c = np.sum(a * b, axis=1)
    return {"mean": float(c.mean()), "p1": float(np.percentile(c, 1)), "min": float(c.min())}


def top10_kept(passages: np.ndarray, claims: np.ndarray, ref_p: np.ndarray, ref_c: np.ndarray) -> float:
    ours = np.argsort(-(claims @ passages.T), axis=1)[:, :10]
    ref = np.argsort(-(ref_c @ ref_p.T), axis=1)[:, :10]
    return float(np.mean([set(o) == set(r) for o, r in zip(ours, ref, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--claims", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2, help="timing rounds (the vectors come from the first)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--keep", nargs="+", default=[], metavar="SELECTORS",
                        help="more variants, each keeping comma-separated MatMuls in fp32 (e.g. 0,5.ffn_out)")
    parser.add_argument("--out", type=Path, default=corpora.RESULTS / "quantize.json")
    args = parser.parse_args()
    texts, claims = sample(args.dataset, args.docs, args.claims)
    spec = MODELS["minilm-l6-int8"]
    variants = {name: q for name, q in VARIANTS.items() if name in args.variants or name == "fp32"}
    variants |= {f"keep-{keep}": Quantization(keep_fp32=tuple(keep.split(","))) for keep in args.keep}
    with tempfile.TemporaryDirectory() as tmp:
        embedders = {name: OnnxEmbedder(replace(spec, name=f"bench-{n}", quantization=q), cache_dir=Path(tmp))
                     for n, (name, q) in enumerate(variants.items())}
        build_s = {}
        for name, embedder in embedders.items():
            start = time.perf_counter()
            embedder.load()
            build_s[name] = time.perf_counter() - start
        vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        timings: dict[str, list[dict[str, float]]] = {name: [] for name in embedders}
        names = list(embedders)
        for round_ in range(args.rounds):
            for name in names[round_ % len(names):] + names[: round_ % len(names)]:
                wall, cpu = time.perf_counter(), time.process_time()
                passages = embedders[name].embed(texts)
                timings[name].append({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                                      "load": os.getloadavg()[0]})
                vectors.setdefault(name, (passages, embedders[name].embed(claims)))
    ref_p, ref_c = vectors["fp32"]
    rows: dict[str, Any] = {}
    for name, (p, c) in vectors.items():
        cpu = sum(t["cpu_s"] for t in timings[name])
        rows[name] = {"passages": cosines(p, ref_p), "claims": cosines(c, ref_c),
                      "top10_same": top10_kept(p, c, ref_p, ref_c), "build_s": build_s[name],
                      "wall_s": sum(t["wall_s"] for t in timings[name]), "cpu_s": cpu}
    fp32_cpu, fp32_wall = rows["fp32"]["cpu_s"], rows["fp32"]["wall_s"]
    for name, row in rows.items():
        row["cpu_vs_fp32"], row["wall_vs_fp32"] = row["cpu_s"] / fp32_cpu, row["wall_s"] / fp32_wall
        print(f"{name:18} passages cos {row['passages']['mean']:.4f} (p1 {row['passages']['p1']:.4f}) "
              f"claims {row['claims']['mean']:.4f} (p1 {row['claims']['p1']:.4f}) top10 same {row['top10_same']:.2f} "
              f"cpu {row['cpu_vs_fp32']:.2f}x wall {row['wall_vs_fp32']:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"code": corpora.code_state(), "passages": len(texts), "claims": len(claims),
                                    "rounds": args.rounds, "load_average": os.getloadavg(), "variants": rows},
                                   indent=1))


if __name__ == "__main__":
    main()
