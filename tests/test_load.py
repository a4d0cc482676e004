"""Load: 200 questions at once from 50 people through the chat core over the real pipeline on the seeds.

``bench/load.py`` sends the burst in a child process (so its peak RSS is the bot's own) and reports it as
JSON; here the behaviour is asserted (no error, the rate limit holds for the two flooders and nobody else)
and the figures printed for RELIABILITY.md. Timings are recorded, not asserted; what is asserted is the
order a burst is served in: the first askers hear back while later questions are still waiting.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.core import ChatCore, IncomingMessage
from bot.feedback import FeedbackStore
from bot.settings import BotSettings
from retrieval.types import Answer
from tests.conftest import RecordingResponder, build_answer

ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.slow


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
