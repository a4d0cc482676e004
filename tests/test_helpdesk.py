"""The help-desk loop end to end, on both platforms: a question the documents cannot answer, "Ask a person",
a listed responder's reply in the help desk relayed to the asker, the same question asked again by someone
else answered citing that reply, and declined again once a responder withdraws it. The real Bolt app and PTB
Application run against the emulators, over a real pipeline on a small folder of documents."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import render
from bot.app import PipelineResponder, build_core
from bot.core import ChatCore, IncomingMessage, Reply
from bot.feedback import FeedbackStore
from bot.helpdesk import answer_document
from bot.settings import BotSettings
from bot.texts import ALREADY_ESCALATED, ESCALATED_TEXT, ESCALATION_FAILED, UNAVAILABLE_TEXT, WITHDRAWN_TEXT
from bot.types import Escalation
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from tests import test_slack, test_telegram
from tests.conftest import RecordingResponder, build_answer
from tests.emulators.telegram_api import TelegramEmulator, group_chat, private_chat, user
from tests.fixtures_docs import make_markdown
from tests.test_slack import ASKER, answer_id, mention, next_ts, texts
from tests.test_telegram import ADA, BOB, serve

# The bots' fixtures, shared with their own tests.
slack, start_bot = test_slack.slack, test_slack.start_bot
telegram, configure, cores = test_telegram.telegram, test_telegram.configure, test_telegram.cores

QUESTION = "How do I reset my VPN token?"
REPLY = "Open the self-service portal, choose Security, then New VPN token; the old token stops working at once."
SLACK_HELPDESK = "C0HELPDESK"
SLACK_CHANNEL = "C0GENERAL"
ANN, BOB_SLACK = "U0ANN", "U0BOB"
TELEGRAM_HELPDESK = group_chat(-1009876543210, "Help desk")
ANN_TELEGRAM = user(1003, "Ann") | {"username": "ann"}


@pytest.fixture
def pipeline(settings: RetrievalSettings, tmp_path: Path) -> Pipeline:
    """A pipeline over two office documents that say nothing about VPN tokens."""
    docs = tmp_path / "docs"
    make_markdown(docs / "canteen.md", [(None, [
        "The canteen on the ground floor opens at 8 am and closes at 3 pm on weekdays.",
        "Vegetarian dishes are served every day; the menu is posted on Mondays."])], title="Canteen")
    make_markdown(docs / "parking.md", [(None, [
        "Staff park in the north car park; visitors use the spaces by the main entrance.",
        "Bicycle racks are behind building B, next to the showers."])], title="Parking")
    pipeline = Pipeline(settings)
    pipeline.index([docs])
    return pipeline


def saved_answers_dir(settings: RetrievalSettings) -> Path:
    return settings.data_dir.with_name(f"{settings.data_dir.name}-answers")  # BotSettings.answers_dir by default


def saved_answers(settings: RetrievalSettings) -> list[Path]:
    return sorted(saved_answers_dir(settings).glob("*.md"))


# --- Slack ---------------------------------------------------------------------------------------------


def slack_reply(text: str, *, user: str, thread_ts: str) -> dict[str, Any]:
    ts = next_ts()
    return {"type": "message", "channel": SLACK_HELPDESK, "channel_type": "channel", "user": user, "text": text,
            "ts": ts, "event_ts": ts, "thread_ts": thread_ts}


def test_slack_help_desk_loop_turns_a_reply_into_a_cited_source(start_bot, slack, pipeline, settings) -> None:
    slack.users = {ANN: "ann"}
    bot = start_bot(PipelineResponder(pipeline), slack_helpdesk_channel=SLACK_HELPDESK, slack_responders=[ANN])
    asked = mention(QUESTION, channel=SLACK_CHANNEL)
    bot.event(asked)
    [declined] = slack.wait_for("chat.postMessage")
    assert "Not found in the documents" in texts(declined["blocks"])
    actions = next(b for b in declined["blocks"] if b["type"] == "actions")
    assert actions["elements"][-1]["action_id"] == render.ACTION_ASK_PERSON

    bot.click(render.ACTION_ASK_PERSON, answer_id(declined), channel=SLACK_CHANNEL, thread_ts=asked["ts"])
    [escalation] = slack.wait_for("chat.postMessage", where=lambda a: a["channel"] == SLACK_HELPDESK)
    assert QUESTION in escalation["text"] and f"<@{ASKER}>" in escalation["text"]
    assert "Not found in the documents" in escalation["text"]
    [permalink] = slack.wait_for("chat.getPermalink")
    assert permalink["channel"] == SLACK_CHANNEL
    assert f"https://emulated.slack.com/archives/{SLACK_CHANNEL}/p" in escalation["text"]
    [told] = slack.wait_for("response_url")
    assert told["text"] == ESCALATED_TEXT and told["response_type"] == "ephemeral"
    helpdesk_ts = next(c.response["ts"] for c in slack.calls("chat.postMessage")
                       if c.args["channel"] == SLACK_HELPDESK)

    # Somebody who is no responder chats in the thread: nothing goes back, nothing is kept.
    bot.event(slack_reply("No idea, sorry.", user=BOB_SLACK, thread_ts=helpdesk_ts))
    bot.event(slack_reply(REPLY, user=ANN, thread_ts=helpdesk_ts))
    [relayed] = slack.wait_for("chat.postMessage", where=lambda a: a["channel"] == SLACK_CHANNEL
                               and "Answer from" in a["text"])
    assert relayed["thread_ts"] == asked["ts"] and relayed["text"] == f"Answer from @ann: {REPLY}"
    [confirmed] = slack.wait_for("chat.postMessage", where=lambda a: a.get("thread_ts") == helpdesk_ts)
    assert "saved as a source" in confirmed["text"]
    assert not any("No idea" in c.args["text"] for c in slack.calls("chat.postMessage"))
    [document] = saved_answers(settings)
    assert QUESTION in document.read_text() and REPLY in document.read_text()

    again = mention(QUESTION, channel=SLACK_CHANNEL, user=BOB_SLACK)
    bot.event(again)
    [answer] = slack.wait_for("chat.postMessage", where=lambda a: a.get("thread_ts") == again["ts"])
    shown = texts(answer["blocks"])
    assert "Not found in the documents" not in shown
    sources = [e["text"] for b in answer["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert any("Answer by @ann" in s for s in sources), sources

    # Withdrawn by a responder (and only by one), the reply is no source any more.
    [withdraw] = next(b for b in confirmed["blocks"] if b["type"] == "actions")["elements"]
    assert withdraw["action_id"] == render.ACTION_WITHDRAW
    bot.click(render.ACTION_WITHDRAW, withdraw["value"], channel=SLACK_HELPDESK, thread_ts=helpdesk_ts,
              user=BOB_SLACK)
    assert slack.wait_for("response_url", 2)[-1]["text"] == UNAVAILABLE_TEXT and document.exists()
    bot.click(render.ACTION_WITHDRAW, withdraw["value"], channel=SLACK_HELPDESK, thread_ts=helpdesk_ts, user=ANN)
    [updated] = slack.wait_for("chat.update")
    assert updated["text"] == WITHDRAWN_TEXT and not document.exists()
    last = mention(QUESTION, channel=SLACK_CHANNEL, user=BOB_SLACK)
    bot.event(last)
    [declined_again] = slack.wait_for("chat.postMessage", where=lambda a: a.get("thread_ts") == last["ts"])
    assert "Not found in the documents" in texts(declined_again["blocks"])


def test_slack_ask_a_person_is_decided_like_the_other_buttons(start_bot, slack, pipeline) -> None:
    bot = start_bot(PipelineResponder(pipeline), slack_helpdesk_channel=SLACK_HELPDESK, slack_responders=[ANN],
                    slack_allowed_channels=[SLACK_CHANNEL])
    asked = mention(QUESTION, channel=SLACK_CHANNEL)
    bot.event(asked)
    [declined] = slack.wait_for("chat.postMessage")
    # The same button clicked from another channel opens nothing and posts nothing to the help desk.
    bot.click(render.ACTION_ASK_PERSON, answer_id(declined), channel="C0ELSEWHERE", thread_ts=None)
    [refused] = slack.wait_for("response_url")
    assert refused["text"] == UNAVAILABLE_TEXT
    bot.click(render.ACTION_ASK_PERSON, answer_id(declined), channel=SLACK_CHANNEL, thread_ts=asked["ts"])
    bot.click(render.ACTION_ASK_PERSON, answer_id(declined), channel=SLACK_CHANNEL, thread_ts=asked["ts"])
    told = slack.wait_for("response_url", 3)
    # The two clicks are handled at once: which of them is told "already" first is not defined.
    assert sorted(t["text"] for t in told[1:]) == sorted([ESCALATED_TEXT, ALREADY_ESCALATED])
    assert len([c for c in slack.calls("chat.postMessage") if c.args["channel"] == SLACK_HELPDESK]) == 1


def test_slack_without_a_help_desk_shows_no_ask_a_person_button(start_bot, slack, pipeline) -> None:
    bot = start_bot(PipelineResponder(pipeline), slack_helpdesk_channel=SLACK_HELPDESK)  # but no responders
    bot.event(mention(QUESTION, channel=SLACK_CHANNEL))
    [declined] = slack.wait_for("chat.postMessage")
    actions = next(b for b in declined["blocks"] if b["type"] == "actions")
    assert render.ACTION_ASK_PERSON not in [e["action_id"] for e in actions["elements"]]


# --- Telegram ------------------------------------------------------------------------------------------


def test_telegram_help_desk_loop_turns_a_reply_into_a_cited_source(
    telegram: TelegramEmulator, configure, cores, pipeline, settings
) -> None:
    bot_settings = configure(telegram_helpdesk_chat=TELEGRAM_HELPDESK["id"], telegram_responders=[ANN_TELEGRAM["id"]],
                             rate_limit_questions=0)
    core = cores(bot_settings, pipeline)

    async def scenario() -> None:
        question = telegram.send(private_chat(ADA), ADA, QUESTION)
        [declined] = await telegram.wait_for("sendMessage", where=lambda c: c.params["chat_id"] == ADA["id"])
        assert "Not found in the documents" in declined.text
        answer = telegram.bot_message(declined)
        ask = declined.buttons[-1]
        assert ask["text"] == "Ask a person" and ask["callback_data"].startswith("ask:")

        telegram.press(answer, ADA, ask["callback_data"])
        [toast] = await telegram.wait_for("answerCallbackQuery")
        assert toast.params["text"] == ESCALATED_TEXT  # only Ada sees it
        [escalation] = await telegram.wait_for("sendMessage",
                                               where=lambda c: c.params["chat_id"] == TELEGRAM_HELPDESK["id"])
        assert QUESTION in escalation.text and "Ada" in escalation.text and "parse_mode" not in escalation.params
        posted = telegram.bot_message(escalation)

        telegram.send(TELEGRAM_HELPDESK, BOB, "Try turning it off and on again?", reply_to=posted)
        telegram.send(TELEGRAM_HELPDESK, ANN_TELEGRAM, REPLY, reply_to=posted)
        [relayed] = await telegram.wait_for("sendMessage", where=lambda c: "Answer from" in c.text)
        assert relayed.params["chat_id"] == ADA["id"] and relayed.text == f"Answer from @ann: {REPLY}"
        assert relayed.params["reply_parameters"]["message_id"] == answer["message_id"]
        [confirmed] = await telegram.wait_for("sendMessage", where=lambda c: "saved as a source" in c.text)
        assert confirmed.params["chat_id"] == TELEGRAM_HELPDESK["id"]
        assert question["text"] in saved_answers(settings)[0].read_text()

        again = telegram.send(private_chat(BOB), BOB, QUESTION)
        [answered] = await telegram.wait_for(
            "sendMessage", where=lambda c: (c.params.get("reply_parameters") or {}).get("message_id")
            == again["message_id"])
        assert "Not found in the documents" not in answered.text
        assert "Answer by @ann" in answered.text.split("<b>Sources</b>")[1]

        telegram.press(telegram.bot_message(confirmed), ANN_TELEGRAM, confirmed.buttons[0]["callback_data"])
        [edited] = await telegram.wait_for("editMessageText")
        assert edited.text == WITHDRAWN_TEXT and saved_answers(settings) == []
        last = telegram.send(private_chat(BOB), BOB, QUESTION)
        [declined_again] = await telegram.wait_for(
            "sendMessage", where=lambda c: (c.params.get("reply_parameters") or {}).get("message_id")
            == last["message_id"])
        assert "Not found in the documents" in declined_again.text

    serve(core, bot_settings, scenario)
    assert not any("turning it off" in c.text for c in telegram.calls("sendMessage"))


# --- the core ------------------------------------------------------------------------------------------


@pytest.fixture
def helpdesk_core(bot_settings: BotSettings) -> Iterator[ChatCore]:
    settings = bot_settings.model_copy(update={"slack_helpdesk_channel": SLACK_HELPDESK, "slack_responders": [ANN]})
    core = ChatCore(RecordingResponder(lambda q: build_answer(question=q, found=False)), settings,
                    FeedbackStore.open(settings.retrieval))
    yield core
    core.feedback.close()


def test_core_a_failed_help_desk_post_can_be_pressed_again(helpdesk_core: ChatCore) -> None:
    asker = IncomingMessage("slack", f"{SLACK_CHANNEL}:1.0", ASKER, QUESTION, SLACK_CHANNEL)
    reply = asyncio.run(helpdesk_core.handle(asker))
    assert reply.kind == "declined" and reply.ask_person
    posts: list[str] = []

    async def down(stored: Any, helpdesk: str) -> tuple[str, str]:
        raise ConnectionError("help desk unreachable")

    async def up(stored: Any, helpdesk: str) -> tuple[str, str]:
        posts.append(helpdesk)
        return "9.1", ""

    failed = asyncio.run(helpdesk_core.escalate(reply.answer_id, asker, asker_name="<@U0ASKER>", reply_to="1.0",
                                                post=down))
    assert failed.kind == "error" and failed.text == ESCALATION_FAILED
    done = asyncio.run(helpdesk_core.escalate(reply.answer_id, asker, asker_name="<@U0ASKER>", reply_to="1.0",
                                              post=up))
    assert done.text == ESCALATED_TEXT and posts == [SLACK_HELPDESK]
    assert helpdesk_core.escalation_at("slack", SLACK_HELPDESK, "9.1").question == QUESTION


def test_core_relays_only_replies_to_escalations_from_listed_responders(helpdesk_core: ChatCore, settings) -> None:
    asker = IncomingMessage("slack", f"{SLACK_CHANNEL}:1.0", ASKER, QUESTION, SLACK_CHANNEL)
    reply = asyncio.run(helpdesk_core.handle(asker))

    async def post(stored: Any, helpdesk: str) -> tuple[str, str]:
        return "9.1", ""

    asyncio.run(helpdesk_core.escalate(reply.answer_id, asker, asker_name="<@U0ASKER>", reply_to="1.0", post=post))
    relayed: list[str] = []

    async def relay(escalation: Any, text: str) -> None:
        relayed.append(text)

    def reply_from(user_id: str, thread: str) -> Reply | None:
        msg = IncomingMessage("slack", f"{SLACK_HELPDESK}:{thread}", user_id, REPLY, SLACK_HELPDESK)
        return asyncio.run(helpdesk_core.relay(msg, thread, responder_name="@x", reply_ref="9.2", post=relay))

    assert reply_from(ANN, "8.8") is None  # a thread that is no escalation: the adapter handles it as usual
    assert reply_from(BOB_SLACK, "9.1").kind == "ignored"
    assert relayed == [] and saved_answers(settings) == []
    assert reply_from(ANN, "9.1").kind == "relayed"
    assert relayed == [f"Answer from @x: {REPLY}"] and len(saved_answers(settings)) == 1


def test_kept_replies_are_sources_again_when_a_bot_starts_on_a_rebuilt_index(bot_settings, pipeline, settings) -> None:
    escalation = Escalation(1, 1, "telegram", QUESTION, "1001", "Ada", "1001", "5", "-100987", "6", "", "")
    answer_document(escalation, responder="@ann", text=REPLY, reply_ref="7", folder=saved_answers_dir(settings))
    assert not any(s["source"] == "telegram-1-7.md" for s in pipeline.sources())  # the index knows none of it
    helpdesk = bot_settings.model_copy(update={"telegram_helpdesk_chat": -100987, "telegram_responders": [1003]})
    core = build_core(helpdesk, pipeline=pipeline)
    try:
        assert any(s["source"] == "telegram-1-7.md" for s in pipeline.sources())
        assert "telegram-1-7.md" in {c.passage.source for c in pipeline.ask(QUESTION).citations}
    finally:
        core.feedback.close()
