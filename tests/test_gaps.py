"""What the documents are missing: ``citebot gaps`` groups the declined, down-voted and escalated questions by
meaning (the packaged embedder), and the weekly digest posts the top groups to the help desk: PTB's JobQueue
on Telegram, a thread of its own on Slack, both run once against the emulators."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.core import ChatCore
from bot.feedback import FeedbackStore
from bot.gaps import next_digest, parse_since
from bot.settings import BotSettings
from bot.slack_adapter import build_app
from bot.slack_helpdesk import DigestPoster
from bot.telegram_adapter import build_application
from bot.telegram_helpdesk import DIGEST_JOB
from retrieval import Answer, RetrievalSettings, group_by_meaning
from tests import test_telegram
from tests.conftest import RecordingResponder
from tests.emulators.slack_api import SlackEmulator
from tests.emulators.telegram_api import TelegramEmulator

VPN = ["How do I reset my VPN token?", "My VPN token stopped working, how can I get a new one?",
       "how to reset vpn token"]
PRINTER = ["How do I connect to the office printer?", "How to install the printer on my laptop?"]
DOG = "Can I bring my dog to the office?"

telegram = test_telegram.telegram  # the emulator fixture


def record(store: FeedbackStore, question: str, *, how: str, platform: str = "slack", kept: bool = False,
           space: str = "") -> int:
    """Store ``question`` as a bot would: "declined", "voted" 👎, "escalated" (``kept``: its reply is a source)
    or "answered" (none of those), asked in the document ``space`` (its key)."""
    found = how in ("voted", "answered")
    answer = Answer(question, "An answer." if found else "Not found in the documents.", [], [], found)
    answer_id = store.record_answer(platform=platform, conversation_id="C0:1", user_id="U1", question=question,
                                    answer=answer, chat_id="C0", space=space)
    if how == "voted":
        store.record_vote(answer_id, platform, "U1", -1)
    if how == "escalated":
        escalation = store.open_escalation(answer_id, asker_id="U1", asker_name="<@U1>", reply_chat="C0",
                                           reply_to="1.0", helpdesk_chat="C0HELP")
        store.posted_escalation(escalation, f"9.{answer_id}", "")
        if kept:
            store.record_reply(escalation, responder_id="U0ANN", responder_name="@ann", text="Portal, Security.",
                               document="slack-1-9.md")
    return answer_id


@pytest.fixture
def store(settings: RetrievalSettings) -> Iterator[FeedbackStore]:
    feedback = FeedbackStore.open(settings)
    yield feedback
    feedback.close()


def test_grouping_puts_paraphrases_together_and_unrelated_questions_apart(settings: RetrievalSettings) -> None:
    texts = [VPN[0], PRINTER[0], DOG, VPN[1], PRINTER[1], VPN[2]]
    groups = [[texts[i] for i in g] for g in group_by_meaning(texts, settings)]
    assert groups == [[VPN[0], VPN[1], VPN[2]], PRINTER, [DOG]]


def test_cli_gaps_groups_what_was_declined_voted_down_or_escalated(store: FeedbackStore) -> None:
    record(store, VPN[0], how="declined")
    record(store, VPN[1], how="escalated", kept=True)
    record(store, VPN[0], how="voted")
    record(store, PRINTER[0], how="declined")
    record(store, PRINTER[1], how="answered")  # answered and not voted down: no gap
    old = record(store, DOG, how="declined")
    with sqlite3.connect(store.path) as db:  # asked a month ago
        db.execute("UPDATE answers SET created_at = ? WHERE id = ?",
                   ((datetime.now(UTC) - timedelta(days=30)).isoformat(timespec="seconds"), old))
    result = CliRunner().invoke(cli, ["gaps", "--since", "7d", "--json"])
    assert result.exit_code == 0, result.output
    vpn, printer = json.loads(result.output)
    assert vpn["count"] == 3 and vpn["variants"] == [VPN[0], VPN[1]] and vpn["answered"]
    assert (vpn["declined"], vpn["down_voted"], vpn["escalated"]) == (2, 1, 1)
    assert printer["variants"] == [PRINTER[0]] and not printer["answered"]
    everything = CliRunner().invoke(cli, ["gaps"])
    assert "3 groups of 5 questions" in everything.output and "kept" in everything.output
    assert "no time span" in CliRunner().invoke(cli, ["gaps", "--since", "a week"]).output


def test_cli_gaps_of_one_space_only(store: FeedbackStore, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    record(store, VPN[0], how="declined", space="hr")
    record(store, VPN[1], how="declined", space="finance+hr")  # a channel seeing both spaces
    record(store, PRINTER[0], how="declined", space="finance")
    record(store, DOG, how="declined", space="default")

    def groups(*args: str) -> list[list[str]]:
        result = CliRunner().invoke(cli, ["gaps", "--json", *args])
        assert result.exit_code == 0, result.output
        return [g["variants"] for g in json.loads(result.output)]

    assert "--space needs a spaces file" in CliRunner().invoke(cli, ["gaps", "--space", "hr"]).output
    spaces = tmp_path / "spaces.toml"
    spaces.write_text('[spaces.hr]\nfolders = ["hr"]\n[spaces.finance]\nfolders = ["finance"]\n', encoding="utf-8")
    monkeypatch.setenv("CITEBOT_SPACES_FILE", str(spaces))
    assert groups("--space", "hr") == [[VPN[0], VPN[1]]]
    assert sorted(groups("--space", "finance")) == sorted([[VPN[1]], [PRINTER[0]]])
    assert groups("--space", "default") == [[DOG]]
    assert len(groups()) == 3  # every space
    assert "no space 'it'" in CliRunner().invoke(cli, ["gaps", "--space", "it"]).output


def test_digest_time_and_spans() -> None:
    wednesday = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
    assert next_digest(wednesday, 0, 9) == datetime(2026, 12, 7, 9, tzinfo=UTC)  # next Monday
    assert next_digest(wednesday, 2, 11) == datetime(2026, 12, 2, 11, tzinfo=UTC)  # later today
    assert next_digest(wednesday, 2, 10) == datetime(2026, 12, 9, 10, tzinfo=UTC)  # today's has passed
    assert parse_since("2w") == timedelta(weeks=2) and parse_since(" 12H ") == timedelta(hours=12)


def test_telegram_digest_runs_on_the_job_queue_and_posts_to_the_help_desk(
    telegram: TelegramEmulator, bot_settings: BotSettings, store: FeedbackStore
) -> None:
    for question in VPN:
        record(store, question, how="declined", platform="telegram")
    record(store, "Where is the Slack-only channel list?", how="declined")  # another platform's: not shown
    settings = BotSettings(retrieval=bot_settings.retrieval, _env_file=None, telegram_bot_token=telegram.token,
                           telegram_base_url=telegram.base_url, helpdesk_digest=True, telegram_helpdesk_chat=-100987,
                           telegram_responders=[1003], helpdesk_digest_weekday=4, helpdesk_digest_hour=8)
    core = ChatCore(RecordingResponder(), settings, store)

    async def once() -> None:
        application = build_application(core, settings)
        async with application:
            await application.start()
            [job] = application.job_queue.get_jobs_by_name(DIGEST_JOB)
            due = job.next_t.astimezone(UTC)
            assert (due.weekday(), due.hour, due.minute) == (4, 8, 0)  # Friday, 08:00 UTC
            await job.run(application)
            await application.stop()

    asyncio.run(once())
    [digest] = telegram.delivered("sendMessage")
    assert digest.params["chat_id"] == -100987
    assert digest.text.startswith("Questions the documents did not answer in the last 7 days (3 questions in 1")
    assert f"• 3× {VPN[0]} (also: {VPN[1]}; {VPN[2]})" in digest.text and "Slack-only" not in digest.text


def test_slack_digest_thread_posts_to_the_help_desk_channel(
    bot_settings: BotSettings, store: FeedbackStore
) -> None:
    record(store, PRINTER[0], how="escalated", kept=True)
    record(store, PRINTER[1], how="voted")
    with SlackEmulator() as slack:
        settings = BotSettings(retrieval=bot_settings.retrieval, _env_file=None, slack_bot_token=slack.bot_token,
                               slack_api_url=slack.api_url, slack_helpdesk_channel="C0HELP", slack_responders=["U0ANN"])
        core = ChatCore(RecordingResponder(), settings, store)
        client = build_app(core, settings).client
        assert DigestPoster.configured(core, client, settings) is None  # off by default
        on = settings.model_copy(update={"helpdesk_digest": True})
        poster = DigestPoster.configured(ChatCore(RecordingResponder(), on, store), client, on)
        poster.start()  # waits for next Monday 09:00 UTC; stopping it ends the wait
        assert poster.post_once()
        poster.stop()
        [digest] = slack.wait_for("chat.postMessage")
    assert digest["channel"] == "C0HELP"
    assert "citebot-slack-digest" not in [t.name for t in threading.enumerate()]
    assert f"• 2× {PRINTER[0]} (also: {PRINTER[1]}) [a person's answer is kept]" in digest["text"]
