"""How soon a document posted in chat is answerable: an admin's PDF or DOCX on the seeds-sized index.

    .venv/bin/python bench/upload.py [--rounds 3] [--bomb] [--json]

The chat core of a bot over the seeds index (``build_core``, as ``citebot serve`` makes it) is handed each
document as an adapter hands it a downloaded file (``ChatCore.ingest``); the bot's reply comes once the file
is saved in the inbox and indexed. Then a question only that document answers is asked through the same core.
Per round and format: seconds from the file to the reply, and from the reply to the cited answer (the issue's
target: within 10 s), and that answer's time against a question of the seeds asked in the same run. Each
round posts a new document (a new name), so nothing is "unchanged". The first PDF or DOCX of a process also
starts the extraction worker (``retrieval/extract.py``): round 1 shows that cost. ``--bomb`` then posts a
130 KB DOCX whose 17.2 million characters of text would make some 20,000 chunks, at the default limits: the
seconds to the refusal, its reason, and the chunks and inbox files it left (none, if all is well). The bomb is
built once (minutes) into ``bench/results/bomb.docx``. Results also go to ``bench/results/upload.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test suite's document builders

from bot.app import build_core  # noqa: E402
from bot.core import ChatCore, IncomingMessage  # noqa: E402
from bot.settings import BotSettings  # noqa: E402
from retrieval import Pipeline, RetrievalSettings  # noqa: E402
from tests.fixtures_docs import make_docx, make_pdf  # noqa: E402

TARGET_SECONDS = 10.0
ADMIN = IncomingMessage("slack", "D0ADMIN", "U0ADMIN", "", "D0ADMIN")
SEEDS_QUESTION = "What are the therapeutic targets in the TME?"
FILLER = ("Employees book travel through the travel desk at least two weeks ahead. Economy class is used for "
          "flights under six hours. Hotels are chosen from the approved list where one exists. ")


def document(kind: str, n: int, folder: Path) -> tuple[str, bytes, str]:
    """(file name, bytes, question) of a three-page policy whose round-specific rule answers the question."""
    days = 20 + n
    rule = f"Receipts for policy {n} must be submitted within {days} days of the trip."
    pages = [FILLER * 6, FILLER * 3 + rule + " " + FILLER * 3, FILLER * 6]
    path = folder / f"policy-{n}.{kind}"
    if kind == "pdf":
        make_pdf(path, pages, title=f"Travel policy {n}")
    else:
        make_docx(path, [(f"Part {i}", [page]) for i, page in enumerate(pages)], title=f"Travel policy {n}")
    return path.name, path.read_bytes(), f"Within how many days must receipts for policy {n} be submitted?"


def post(core: ChatCore, name: str, data: bytes) -> tuple[float, str]:
    """Seconds from a downloaded file to the bot's reply, and the reply."""

    async def fetch(limit: int) -> bytes:
        return data

    t0 = time.perf_counter()
    reply = asyncio.run(core.ingest(ADMIN, name=name, size=len(data), fetch=fetch))
    return time.perf_counter() - t0, reply.text


def bomb(path: Path) -> bytes:
    """A DOCX of some 130 KB that expands to 17.2 million characters of text; built once."""
    if not path.exists():
        paragraph = "The stromal compartment of the tumour shapes how the immune cells respond to therapy. " * 10
        make_docx(path, [(None, [paragraph] * 20_000)])
    return path.read_bytes()


def ask(core: ChatCore, question: str) -> tuple[float, object]:
    t0 = time.perf_counter()
    reply = asyncio.run(core.handle(IncomingMessage("slack", "C0:1", "U0ASKER", question, "C0")))
    return time.perf_counter() - t0, reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bomb", action="store_true", help="Also post the 20,000-chunk DOCX bomb.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="citebot-upload-"))
    settings = RetrievalSettings(data_dir=tmp / "data", _env_file=None)
    pipeline = Pipeline(settings)
    pipeline.index([ROOT / "seeds"])
    bot = BotSettings(retrieval=settings, _env_file=None, slack_admins=["U0ADMIN"], rate_limit_questions=0)
    core = build_core(bot, pipeline=pipeline)
    ask(core, SEEDS_QUESTION)  # warm the reader and the embedder
    rows = []
    for n in range(1, args.rounds + 1):
        for kind in ("pdf", "docx"):
            name, data, question = document(kind, n * 10 + (kind == "docx"), tmp / "made")
            to_reply, posted = post(core, name, data)
            to_answer, reply = ask(core, question)
            baseline, _ = ask(core, SEEDS_QUESTION)
            cited = sorted({c.passage.source for c in reply.answer.citations}) if reply.answer else []
            rows.append({"round": n, "format": kind, "bytes": len(data), "reply": posted,
                         "post_to_reply_s": round(to_reply, 2), "reply_to_answer_s": round(to_answer, 2),
                         "seeds_question_s": round(baseline, 2), "answer_vs_seeds": round(to_answer / baseline, 2),
                         "cited": cited, "answerable": name in cited,
                         "within_target": name in cited and to_answer <= TARGET_SECONDS})
    refused = None
    if args.bomb:
        data = bomb(ROOT / "bench" / "results" / "bomb.docx")
        chunks = pipeline.store.count()
        seconds, text = post(core, "bomb.docx", data)
        refused = {"bytes": len(data), "seconds": round(seconds, 1), "reply": text,
                   "chunks_added": pipeline.store.count() - chunks, "left_in_inbox": (bot.inbox / "bomb.docx").exists()}
    core.feedback.close()
    summary = {kind: {key: statistics.median(r[key] for r in rows if r["format"] == kind)
                      for key in ("post_to_reply_s", "reply_to_answer_s", "answer_vs_seeds")}
               for kind in ("pdf", "docx")}
    out = {"chunks_indexed": pipeline.store.count(), "rows": rows, "median": summary,
           "all_within_target": all(r["within_target"] for r in rows), "bomb": refused}
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "upload.json").write_text(json.dumps(out, indent=2))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for r in rows:
        print(f"round {r['round']} {r['format']:4} {r['bytes']:>6} B: post->reply {r['post_to_reply_s']:5.2f} s, "
              f"reply->cited answer {r['reply_to_answer_s']:5.2f} s ({r['answer_vs_seeds']:.2f}x a seeds question), "
              f"cites it: {r['answerable']}")
    for kind, figures in summary.items():
        print(f"median {kind}: post->reply {figures['post_to_reply_s']:.2f} s, reply->answer "
              f"{figures['reply_to_answer_s']:.2f} s ({figures['answer_vs_seeds']:.2f}x)")
    print(f"all answerable within {TARGET_SECONDS:g} s of the reply: {out['all_within_target']}")
    if refused:
        print(f"bomb ({refused['bytes']:,} B): {refused['seconds']} s to \"{refused['reply']}\"; "
              f"{refused['chunks_added']} chunks added, left in the inbox: {refused['left_in_inbox']}")


if __name__ == "__main__":
    main()
