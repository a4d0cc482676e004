"""`citebot stats`: what the bots were asked, how they answered and how users voted, per platform."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.feedback import FeedbackStore
from tests.conftest import build_answer

WORST = "Which drug doubles survival?"


@pytest.fixture
def feedback(settings) -> FeedbackStore:
    """The store the bots write to (``CITEBOT_DATA_DIR`` points at the same folder), with a few answers."""
    store = FeedbackStore.open(settings)

    def record(platform: str, question: str, *, found: bool = True) -> int:
        return store.record_answer(platform=platform, conversation_id="c1", user_id="u1", question=question,
                                   answer=build_answer(question=question, found=found))

    worst = record("slack", WORST)
    liked = record("slack", "What are the therapeutic targets in the TME?")
    record("slack", "Who won the 1998 World Cup?", found=False)
    disliked = record("telegram", "What is PD-1?")
    for user in ("u1", "u2"):
        store.record_vote(worst, "slack", user, -1)
    store.record_vote(liked, "slack", "u1", 1)
    store.record_vote(disliked, "telegram", "u9", -1)
    yield store
    store.close()


def test_stats_prints_counts_per_platform_and_the_most_down_voted(feedback) -> None:
    result = CliRunner().invoke(cli, ["stats"], terminal_width=200)
    assert result.exit_code == 0, result.output
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in result.output.splitlines() if "│" in line]
    rows = {row[0]: row[1:] for row in cells}
    assert rows["slack"] == ["3", "2", "1", "1", "2"]  # questions, answered, declined, 👍, 👎
    assert rows["telegram"] == ["1", "1", "0", "0", "1"]
    worst = result.output.split("Most down-voted answers")[1]
    assert worst.index(WORST) < worst.index("What is PD-1?")


def test_stats_json_is_machine_readable(feedback) -> None:
    result = CliRunner().invoke(cli, ["stats", "--json"])
    data = json.loads(result.output)
    by_platform = {p["platform"]: p for p in data["platforms"]}
    assert by_platform["slack"] == {"platform": "slack", "questions": 3, "answered": 2, "declined": 1, "up": 1,
                                    "down": 2}
    assert data["most_down_voted"][0]["question"] == WORST and data["most_down_voted"][0]["down"] == 2


def test_stats_without_questions_says_so() -> None:
    result = CliRunner().invoke(cli, ["stats"])
    assert result.exit_code == 0 and "No questions asked in the chat bots yet" in result.output


def test_stats_on_a_damaged_database_warns_and_starts_afresh(settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "feedback.db").write_bytes(b"\x00garbage from a failing disk" * 500)
    result = CliRunner().invoke(cli, ["stats"])
    assert result.exit_code == 0 and "No questions asked in the chat bots yet" in result.output
    [aside] = settings.data_dir.glob("feedback.db.damaged-*")
    assert aside.read_bytes().startswith(b"\x00garbage")
