"""Many people asking at once: questions through the chat core over the real pipeline on the seeds.

    python bench/load.py [--users 50] [--questions 200] [--flooders 2] [--per-user 3] [--json]

Every question is sent at the same moment (``asyncio.gather`` of ``ChatCore.handle``) with the default
rate limit (5 questions a minute per user): ``users - flooders`` people ask ``--per-user`` questions each,
within the limit, and the flooders share the rest, far over it. Prints the replies by kind, errors, the
flooders' answered and rate-limited counts, latency p50/p95/max of the answered questions (from sending to
reply, queueing included), the wall time, and this process's peak RSS. tests/test_load.py runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bot.app import build_core
from bot.core import ChatCore, IncomingMessage, Reply
from bot.settings import BotSettings
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
QUESTIONS = [
    "What are the therapeutic targets in the TME?",
    "How do cancer-associated fibroblasts help tumors?",
    "Which immune checkpoints are targeted?",
    "What role does the extracellular matrix play?",
    "How does the tumor microenvironment affect response to therapy?",
    "What are the challenges in targeting the tumor microenvironment?",
    "Which signaling pathways are therapeutic targets?",
    "What is the capital of France?",  # declined: the documents do not say
]


def flooder_ids(users: int, flooders: int) -> list[str]:
    return [f"u{u:03d}" for u in range(users - flooders, users)]


def plan(users: int, questions: int, flooders: int, per_user: int) -> list[IncomingMessage]:
    """The messages, interleaved so that every user's questions are spread over the burst."""
    normal = users - flooders
    rest = questions - normal * per_user
    counts = {f"u{u:03d}": per_user for u in range(normal)}
    counts |= {user: rest // flooders + (i < rest % flooders) for i, user in enumerate(flooder_ids(users, flooders))}
    messages = []
    for turn in range(max(counts.values())):
        for user, count in counts.items():
            if turn < count:
                text = QUESTIONS[len(messages) % len(QUESTIONS)]
                messages.append(IncomingMessage("telegram", f"chat-{user}", user, text, f"chat-{user}"))
    return messages


async def _timed(core: ChatCore, msg: IncomingMessage) -> tuple[Reply, float]:
    start = time.perf_counter()
    reply = await core.handle(msg)
    return reply, time.perf_counter() - start


async def _burst(core: ChatCore, messages: list[IncomingMessage]) -> list[tuple[Reply, float]]:
    return await asyncio.gather(*(_timed(core, m) for m in messages))


def run(data_dir: Path, users: int, questions: int, flooders: int, per_user: int) -> dict:
    """Index the seeds into ``data_dir``, send the burst, and measure it."""
    settings = BotSettings(retrieval=RetrievalSettings(data_dir=data_dir, _env_file=None), _env_file=None)
    pipeline = Pipeline(settings.retrieval)
    pipeline.index([SEEDS])
    pipeline.ask(QUESTIONS[0])  # load the model and the keyword index before the clock starts
    core = build_core(settings, pipeline=pipeline)
    messages = plan(users, questions, flooders, per_user)
    start = time.perf_counter()
    results = asyncio.run(_burst(core, messages))
    wall = time.perf_counter() - start
    core.feedback.close()
    kinds = Counter(reply.kind for reply, _ in results)
    latencies = np.array([t for reply, t in results if reply.kind in ("answer", "declined")]) * 1000
    by_user = {u: Counter(r.kind for (r, _), m in zip(results, messages, strict=True) if m.user_id == u)
               for u in flooder_ids(users, flooders)}
    return {
        "questions": len(messages),
        "users": len({m.user_id for m in messages}),
        "kinds": dict(kinds),
        "errors": kinds["error"],
        "flooders": {u: dict(c) for u, c in by_user.items()},
        "others_all_answered": all(
            r.kind in ("answer", "declined") for (r, _), m in zip(results, messages, strict=True)
            if m.user_id not in by_user
        ),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "max_ms": round(float(latencies.max()), 1),
        "wall_s": round(wall, 2),
        "answered_per_s": round(len(latencies) / wall, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--flooders", type=int, default=2)
    parser.add_argument("--per-user", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="citebot-load-") as tmp:
        result = run(Path(tmp) / "data", args.users, args.questions, args.flooders, args.per_user)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
