"""Regenerate ``bench/data/manuals/corpus.jsonl`` from the Debian manuals on this machine and check the answers.

The corpus is the text citebot's own loader (``retrieval.loaders.load``) extracts, so gold answer offsets point
into exactly what the bot reads. ``answers.jsonl`` is hand-written; this script only verifies that every answer
is an exact substring of its document at its ``answer_start`` (and fails loudly when a package update moved it).

    .venv/bin/python bench/make_manuals.py          # rewrite corpus.jsonl, then check answers.jsonl
    .venv/bin/python bench/make_manuals.py --check  # only check
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from retrieval.loaders import load

DOC_ROOT = Path("/usr/share/doc")
OUT = Path(__file__).resolve().parent / "data" / "manuals"

# Paths under /usr/share/doc; the corpus id is "<package>/<file name>".
SOURCES = [
    # PDF
    "libtasn1-doc/libtasn1.pdf",
    "shared-mime-info/shared-mime-info-spec.pdf",
    # HTML
    "bzip2/manual.html",
    "bc/bc.html",
    "fontconfig/fontconfig-user.html",
    "ninja-build/manual.html",
    "time/time.html",
    "valgrind/html/faq.html",
    "valgrind/html/quick-start.html",
    "zlib1g-dev/examples/zlib_how.html",
    "python3/python-policy.html",
    "base-passwd/users-and-groups.html",
    "libxslt1-dev/html/xsltproc.html",
    # Markdown
    "nodejs/api/path.md",
    "nodejs/api/corepack.md",
    "nodejs/api/timers.md",
    "python3-pip/html/topics/repeatable-installs.md",
    "libcbor0.8/README.md",
    "procps/bugs.md",
    "systemd/DISTRO_PORTING.md",
    # plain text
    "dpkg/spec/triggers.txt",
    "dpkg/spec/rootless-builds.txt",
    "libasound2/examples/asoundrc.txt",
    "yq/cli-doc.txt",
    "openssl/HOWTO/keys.txt",
    "util-linux/howto-tests.txt",
    "git/contrib/subtree/git-subtree.txt",
]


def doc_id(source: str) -> str:
    parts = source.split("/")
    return f"{parts[0]}/{parts[-1]}"


def build() -> dict[str, str]:
    texts: dict[str, str] = {}
    with (OUT / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for source in SOURCES:
            loaded = load(DOC_ROOT / source, DOC_ROOT)
            texts[doc_id(source)] = loaded.text
            record = {"id": doc_id(source), "title": loaded.metadata["title"], "text": loaded.text}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return texts


def read_corpus() -> dict[str, str]:
    with (OUT / "corpus.jsonl").open(encoding="utf-8") as fh:
        return {r["id"]: r["text"] for r in map(json.loads, fh)}


def check(texts: dict[str, str]) -> list[str]:
    """Problems with answers.jsonl, queries.jsonl and qrels.tsv against the corpus; empty when all hold."""
    problems = []
    with (OUT / "answers.jsonl").open(encoding="utf-8") as fh:
        answers = [json.loads(line) for line in fh if line.strip()]
    with (OUT / "queries.jsonl").open(encoding="utf-8") as fh:
        queries = {json.loads(line)["_id"] for line in fh if line.strip()}
    with (OUT / "qrels.tsv").open(encoding="utf-8") as fh:
        qrels = {tuple(line.split("\t")[:2]) for line in list(fh)[1:]}
    for record in answers:
        text = texts.get(record["doc_id"])
        if text is None:
            problems.append(f"{record['id']}: unknown doc {record['doc_id']}")
            continue
        if record["id"] not in queries or (record["id"], record["doc_id"]) not in qrels:
            problems.append(f"{record['id']}: missing from queries.jsonl or qrels.tsv")
        for answer in record["answers"]:
            start, gold = answer["answer_start"], answer["text"]
            if text[start : start + len(gold)] != gold:
                problems.append(f"{record['id']}: {gold[:40]!r} not at {start} (found at {text.find(gold)})")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the answers against corpus.jsonl")
    args = parser.parse_args()
    texts = read_corpus() if args.check else build()
    if not (OUT / "answers.jsonl").exists():
        print(f"wrote {len(texts)} documents; no answers.jsonl to check yet")
        return 0
    problems = check(texts)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(texts)} documents; {'answers OK' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
