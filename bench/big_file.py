"""Peak memory of indexing one big text file, stage by stage, each stage in a fresh child process.

    python bench/big_file.py [--mb 50] [--stages load,embed] [--chunks 4096] [--embedder NAME] [--json]

``load``: read and chunk the whole file with the default chunk settings (the part of indexing that holds the
whole document). ``embed``: the same, then embed the first ``--chunks`` chunks with the real embedder (all of
a 50 MB file is ~90,000 chunks: hours of CPU here). The file is generated once (pseudo-words from a
20,000-word vocabulary, in sentences and paragraphs). Each stage reports its seconds and its own peak RSS
(``ru_maxrss``); tests/test_reliability_files.py runs the ``load`` stage, RELIABILITY.md quotes both.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_text_file(path: Path, megabytes: int, *, seed: int = 0) -> Path:
    """Sentences of pseudo-words in paragraphs, until the file holds ``megabytes`` MB."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 10))) for _ in range(20_000)]
    paragraphs, size = [], 0
    while size < megabytes * 1_000_000:
        paragraph = ". ".join(" ".join(rng.choices(vocab, k=12)).capitalize() for _ in range(6)) + ".\n\n"
        paragraphs.append(paragraph)
        size += len(paragraph)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(paragraphs))
    return path


def run_stage(stage: str, path: Path, chunks: int, embedder: str) -> dict:
    """In this process: load and chunk ``path``, then (stage "embed") embed its first ``chunks`` chunks."""
    from retrieval.chunking import split
    from retrieval.embeddings import get_embedder
    from retrieval.loaders import load
    from retrieval.settings import RetrievalSettings

    t0 = time.perf_counter()
    settings = RetrievalSettings(_env_file=None)
    pieces = split(load(path, path.parent), chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
    if stage == "embed":
        get_embedder(embedder).embed([c.page_content for c in pieces[:chunks]])
    return {
        "stage": stage,
        "file_bytes": path.stat().st_size,
        "chunks": len(pieces),
        "text_end": int(pieces[-1].metadata["end"]),
        "embedded": min(chunks, len(pieces)) if stage == "embed" else 0,
        "embedder": embedder if stage == "embed" else "",
        "seconds": round(time.perf_counter() - t0, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--stages", default="load,embed")
    parser.add_argument("--chunks", type=int, default=4096)
    parser.add_argument("--embedder", default="paraphrase-minilm-l3")
    parser.add_argument("--file", type=Path, default=Path("/tmp/citebot-bench/big.txt"))
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the stage a child process runs
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_stage(args.child, args.file, args.chunks, args.embedder)))
        return
    if not args.file.exists() or args.file.stat().st_size < args.mb * 1_000_000:
        write_text_file(args.file, args.mb)
    results = []
    for stage in args.stages.split(","):
        cmd = [sys.executable, __file__, "--child", stage, "--file", str(args.file), "--chunks", str(args.chunks),
               "--embedder", args.embedder]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
        results.append(json.loads(out.splitlines()[-1]))
    if args.json:
        print(json.dumps(results))
        return
    for r in results:
        what = f"embed {r['embedded']} chunks ({r['embedder']})" if r["stage"] == "embed" else "load + chunk"
        print(f"{r['file_bytes'] / 1e6:.0f} MB, {r['chunks']} chunks, {what}: {r['seconds']} s, "
              f"peak RSS {r['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
