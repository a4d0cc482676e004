"""Load: 200 questions at once from 50 people through the chat core over the real pipeline on the seeds,
and 100 through the real Telegram application polling the Bot API emulator.

``bench/load.py`` sends the burst in a child process (so its peak RSS is the bot's own) and reports it as
JSON; here the behaviour is asserted (no error, the rate limit holds for the two flooders and nobody else)
and the figures printed for RELIABILITY.md. Timings are recorded, not asserted; what is asserted is the
order a burst is served in: the first askers hear back while later questions are still waiting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_core
from bot.core import ChatCore, IncomingMessage
from bot.feedback import FeedbackStore
from bot.settings import BotSettings
from retrieval.pipeline import Pipeline
from retrieval.types import Answer
from tests.conftest import RecordingResponder, build_answer
from tests.emulators.telegram_api import TelegramEmulator, private_chat, user
from tests.test_telegram import replies_to, serve

ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.slow

# Questions the seeds answer, so every reply in the Telegram burst should cite.
ANSWERABLE = [
    "What are the therapeutic targets in the TME?",
    "How do cancer-associated fibroblasts help tumors?",
    "Which immune checkpoints are targeted?",
    "What role does the extracellular matrix play?",
]


def test_load_200_concurrent_questions_from_50_users_no_errors_rate_limits_hold() -> None:
    cmd = [sys.executable, str(ROOT / "bench" / "load.py"), "--users", "50", "--questions", "200",
           "--flooders", "2", "--per-user", "3", "--json"]
    result = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout)
    print(f"load: {result}")
    assert result["questions"] == 200 and result["users"] == 50
    assert result["errors"] == 0 and "error" not in result["kinds"]
    assert result["others_all_answered"]  # 48 people, 3 questions each, all within the limit
    for kinds in result["flooders"].values():  # 28 questions each at once: 5 answered, 23 told to wait
        assert kinds.get("answer", 0) + kinds.get("declined", 0) == 5
        assert kinds["rate_limited"] == 23
    assert result["kinds"]["rate_limited"] == 46
    assert result["peak_rss_mb"] < 1536


def test_core_burst_first_askers_hear_back_before_the_last_answers_start(bot_settings: BotSettings) -> None:
    starts: list[float] = []

    def slow(question: str) -> Answer:
        starts.append(time.monotonic())
        time.sleep(0.03)
        return build_answer(question=question)

    settings = BotSettings(retrieval=bot_settings.retrieval, rate_limit_questions=0, _env_file=None)
    feedback = FeedbackStore.open(settings.retrieval)
    core = ChatCore(RecordingResponder(slow), settings, feedback)

    async def ask(n: int) -> float:
        reply = await core.handle(IncomingMessage("telegram", f"c{n}", f"u{n}", f"question {n}", f"c{n}"))
        assert reply.kind == "answer" and reply.answer_id is not None
        return time.monotonic()

    async def burst() -> list[float]:
        return await asyncio.gather(*(ask(n) for n in range(60)))

    replied = asyncio.run(burst())
    feedback.close()
    assert len(starts) == 60
    assert min(replied) < max(starts)  # someone had their answer before the last question was even begun



async def time_replies(telegram: TelegramEmulator, sent: dict[int, float], timeout: float = 60) -> list[float]:
    """Seconds from sending each question (message id -> monotonic time) to the bot's reply to it."""
    pending, waits = dict(sent), []
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for call in telegram.delivered("sendMessage"):
            target = (call.params.get("reply_parameters") or {}).get("message_id")
            if target in pending:
                waits.append(time.monotonic() - pending.pop(target))
        await asyncio.sleep(0.01)
    assert not pending, f"{len(pending)} of {len(sent)} questions unanswered after {timeout} s"
    return waits


def test_telegram_burst_100_questions_from_25_users_each_answered_once_with_citations(
    bot_settings: BotSettings, seeded_pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    people = [user(5000 + n, f"Asker{n}") for n in range(25)]
    questions: list[dict[str, Any]] = []
    waits: list[float] = []
    with TelegramEmulator() as telegram:
        settings = BotSettings(retrieval=bot_settings.retrieval, telegram_bot_token=telegram.token,
                               telegram_base_url=telegram.base_url, _env_file=None)
        core = build_core(settings, pipeline=seeded_pipeline)

        async def scenario() -> None:
            start = time.monotonic()
            for turn in range(4):  # 4 each, within the default limit of 5 a minute
                questions.extend(telegram.send(private_chat(p), p, ANSWERABLE[turn]) for p in people)
            sent = dict.fromkeys((q["message_id"] for q in questions), start)
            waits.extend(await time_replies(telegram, sent))

        serve(core, settings, scenario)
        core.feedback.close()
    cuts = statistics.quantiles(waits, n=20)
    print(f"telegram load: {len(waits)} questions, p50 {cuts[9]:.2f} s, p95 {cuts[18]:.2f} s, max {max(waits):.2f} s")
    for question in questions:
        [answer] = telegram.delivered("sendMessage", where=replies_to(question))
        assert "[1]" in answer.text and "<b>Sources</b>" in answer.text, answer.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
