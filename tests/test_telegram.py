"""The Telegram bot end to end: the real ``Application`` polls the Bot API emulator on 127.0.0.1.

Each test plays the users through the emulator (``send``, ``press``) and asserts what they would see in
their Telegram client: the calls the bot made and their text, buttons and reply targets.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from bot import render
from bot.app import build_core
from bot.cli import cli
from bot.core import ChatCore
from bot.feedback import FeedbackStore
from bot.settings import BotSettings
from bot.telegram_adapter import ALLOWED_UPDATES, build_application, webhook_options
from bot.texts import ASK_USAGE, COMMAND_USAGE, RATE_LIMIT_TEXT, REFUSAL_TEXT, TEXT_ONLY, UNAVAILABLE_TEXT, VOTE_THANKS
from retrieval.errors import ConfigError
from retrieval.pipeline import Pipeline
from retrieval.prompts import LLM_UNVERIFIED_NOTICE
from retrieval.types import Answer
from tests.chroma_server import free_port
from tests.conftest import RecordingResponder, StreamingResponder, build_answer
from tests.emulators.openai_server import OpenAIEmulator, Reply
from tests.emulators.telegram_api import (
    BOT_USER,
    TelegramEmulator,
    channel_chat,
    group_chat,
    private_chat,
    user,
    utf16_len,
)
from tests.llm_pipelines import cited_reply, llm_pipeline

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
ADA = user(1001, "Ada")
BOB = user(1002, "Bob")
GROUP = group_chat(-1001234567890)
MENTION = f"@{BOT_USER['username']}"
# The long form: its answer quotes both seeds, the paper with its DOI among them.
TME_QUESTION = "What are the therapeutic targets in the tumor microenvironment?"


@pytest.fixture
def telegram() -> Iterator[TelegramEmulator]:
    with TelegramEmulator() as emulator:
        yield emulator


@pytest.fixture
def configure(bot_settings: BotSettings, telegram: TelegramEmulator) -> Callable[..., BotSettings]:
    """Bot settings pointing at the emulator (through TELEGRAM_BASE_URL), with ``overrides``."""

    def make(**overrides: Any) -> BotSettings:
        values = {"telegram_bot_token": telegram.token, "telegram_base_url": telegram.base_url, **overrides}
        return BotSettings(retrieval=bot_settings.retrieval, _env_file=None, **values)

    return make


@pytest.fixture
def cores() -> Iterator[Callable[[BotSettings, Any], ChatCore]]:
    """Chat cores over a responder (or a real pipeline), their feedback stores closed afterwards."""
    made: list[ChatCore] = []

    def make(settings: BotSettings, responder: Any) -> ChatCore:
        core = (build_core(settings, pipeline=responder) if isinstance(responder, Pipeline)
                else ChatCore(responder, settings, FeedbackStore.open(settings.retrieval)))
        made.append(core)
        return core

    yield make
    for core in made:
        core.feedback.close()


def serve(core: ChatCore, settings: BotSettings, scenario: Callable[[], Awaitable[None]]) -> None:
    """Run the bot as ``citebot telegram`` does (post-init, then long polling) while ``scenario`` plays."""

    async def main() -> None:
        application = build_application(core, settings)
        await application.initialize()
        await application.post_init(application)
        await application.start()
        await application.updater.start_polling(poll_interval=0.02, timeout=1, allowed_updates=ALLOWED_UPDATES)
        try:
            await scenario()
        finally:
            await application.updater.stop()
            await application.stop()
            await application.shutdown()

    asyncio.run(main())


def replies_to(message: dict[str, Any]) -> Callable[[Any], bool]:
    return lambda call: (call.params.get("reply_parameters") or {}).get("message_id") == message["message_id"]


def in_chat(chat: dict[str, Any]) -> Callable[[Any], bool]:
    return lambda call: call.params.get("chat_id") == chat["id"]


def test_telegram_answers_a_private_question_with_cited_html(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any, seeded_pipeline: Pipeline
) -> None:
    core = cores(configure(), seeded_pipeline)

    async def scenario() -> None:
        question = telegram.send(private_chat(ADA), ADA, TME_QUESTION)
        [answer] = await telegram.wait_for("sendMessage")
        assert replies_to(question)(answer)
        assert answer.params["parse_mode"] == "HTML"
        assert re.search(r"\[1\]", answer.text) and "<b>Sources</b>" in answer.text
        assert '<a href="https://doi.org/10.1016/j.pharmthera.2020.107753">' in answer.text
        answer_id = int(answer.buttons[0]["callback_data"].removeprefix("src:"))
        assert [b["callback_data"] for b in answer.buttons] == [
            f"src:{answer_id}", f"vote:{answer_id}:1", f"vote:{answer_id}:-1"]
        assert core.feedback.get_answer(answer_id).question == question["text"]
        [typing] = await telegram.wait_for("sendChatAction", where=in_chat(private_chat(ADA)))
        assert typing.params["action"] == "typing"

    serve(core, configure(), scenario)
    assert not telegram.calls("editMessageText")  # an extractive answer arrives once, complete
    assert telegram.calls("getUpdates")[0].params["allowed_updates"] == ["message", "callback_query"]
    assert [c["command"] for c in telegram.delivered("setMyCommands")[0].params["commands"]] == ["ask", "help"]


def test_telegram_escapes_what_documents_contain(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any
) -> None:
    sources = [({"source": "a.html", "title": "Tumours <in vivo> & <b>more</b>", "doi": "10.1000/x<y>"},
                "Levels of <script>alert(1)</script> & more were measured.")]
    answer = build_answer("Levels of <script>alert(1)</script> & more were measured [1].", sources=sources)
    settings = configure()
    core = cores(settings, RecordingResponder(lambda q: answer))

    async def scenario() -> None:
        telegram.send(private_chat(ADA), ADA, "What was measured?")
        [sent] = await telegram.wait_for("sendMessage")  # the emulator refuses malformed HTML
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in sent.text
        assert "Tumours &lt;in vivo&gt; &amp; &lt;b&gt;more&lt;/b&gt;" in sent.text
        assert "<script>" not in sent.text and 'href="https://doi.org/10.1000/x%3Cy%3E"' in sent.text

    serve(core, settings, scenario)


def test_telegram_splits_a_long_answer_and_replies_with_the_first_part(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any
) -> None:
    paragraphs = [f"Finding {i}: " + "fibroblasts remodel the matrix and recruit macrophages " * 5
                  + f"[{i % 2 + 1}]." for i in range(40)]
    answer = build_answer("\n\n".join(paragraphs))
    expected = render.to_telegram_html(answer)
    assert len(expected) >= 3
    settings = configure()
    core = cores(settings, RecordingResponder(lambda q: answer))

    async def scenario() -> None:
        question = telegram.send(private_chat(ADA), ADA, "Tell me everything about fibroblasts")
        parts = await telegram.wait_for("sendMessage", len(expected))
        assert [p.text for p in parts] == expected  # the emulator refuses anything over 4,096
        assert replies_to(question)(parts[0]) and not any(p.params.get("reply_parameters") for p in parts[1:])
        assert parts[-1].buttons and not any(p.buttons for p in parts[:-1])
        sent = "\n\n".join(p.text for p in parts)
        assert all(paragraph in sent for paragraph in paragraphs)

    serve(core, settings, scenario)


def test_telegram_answers_in_groups_only_when_addressed(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any
) -> None:
    settings = configure(rate_limit_questions=0)
    responder = RecordingResponder()
    core = cores(settings, responder)

    async def scenario() -> None:
        chatter = telegram.send(GROUP, BOB, "what are the targets? (not for the bot)")
        telegram.send(GROUP, ADA, "I agree", reply_to=chatter)
        question = telegram.send(GROUP, ADA, f"{MENTION} what are the targets?")
        [first] = await telegram.wait_for("sendMessage", where=replies_to(question))
        follow_up = telegram.send(GROUP, BOB, "and which are in trials?", reply_to=telegram.bot_message(first))
        await telegram.wait_for("sendMessage", where=replies_to(follow_up))
        command = telegram.send(GROUP, BOB, f"/ask{MENTION} which checkpoints are blocked?")
        await telegram.wait_for("sendMessage", where=replies_to(command))
        bare = telegram.send(GROUP, BOB, "/ask")
        [usage] = await telegram.wait_for("sendMessage", where=replies_to(bare))
        assert usage.text == ASK_USAGE

    serve(core, settings, scenario)
    assert [q for q, _ in responder.calls] == [
        "what are the targets?", "and which are in trials?", "which checkpoints are blocked?"]
    assert [t.question for t in responder.calls[1][1]] == ["what are the targets?"]  # the group's history
    assert len(telegram.delivered("sendMessage")) == 4


def test_telegram_buttons_store_votes_and_page_through_sources(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any
) -> None:
    sources = [({"source": f"papers/p{i}.pdf", "title": f"Paper {i}", "page": i, "pmid": str(3000 + i)},
                f"Quoted finding number {i} about stromal cells.") for i in range(1, 8)]
    answer = build_answer(" ".join(f"Finding {i} [{i}]." for i in range(1, 8)), sources=sources)
    settings = configure()
    core = cores(settings, RecordingResponder(lambda q: answer))

    async def scenario() -> None:
        telegram.send(private_chat(ADA), ADA, "What did the papers find?")
        [sent] = await telegram.wait_for("sendMessage")
        shown = telegram.bot_message(sent)
        answer_id = int(sent.buttons[0]["callback_data"].split(":")[1])

        telegram.press(shown, ADA, f"vote:{answer_id}:1")
        [ack] = await telegram.wait_for("answerCallbackQuery")
        assert ack.params["text"] == VOTE_THANKS.format(emoji="👍")

        telegram.press(shown, ADA, f"src:{answer_id}")
        page1 = (await telegram.wait_for("sendMessage", 2))[1]
        assert page1.text.startswith("<b>Sources 1/2</b>") and "Quoted finding number 1" in page1.text
        assert "<blockquote>" in page1.text and replies_to(shown)(page1)
        assert [b["text"] for b in page1.buttons] == ["▶"]

        telegram.press(telegram.bot_message(page1), ADA, f"src:{answer_id}:2")
        [edit] = await telegram.wait_for("editMessageText")
        assert edit.params["message_id"] == page1.result["message_id"]
        assert edit.text.startswith("<b>Sources 2/2</b>") and "Quoted finding number 6" in edit.text
        assert [b["callback_data"] for b in edit.buttons] == [f"src:{answer_id}:1"]
        await telegram.wait_for("answerCallbackQuery", 3)

    serve(core, settings, scenario)
    [stats] = core.feedback.stats().platforms
    assert (stats.platform, stats.up, stats.down) == ("telegram", 1, 0)


def test_telegram_forged_or_foreign_button_presses_are_refused_and_store_nothing(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any
) -> None:
    settings = configure(telegram_allowed_chats=[ADA["id"], GROUP["id"]])
    answer = build_answer()
    core = cores(settings, RecordingResponder(lambda q: answer))
    quotes = [c.quote for c in answer.citations]

    async def scenario() -> None:
        telegram.send(private_chat(ADA), ADA, "Ada's private question?")
        [sent] = await telegram.wait_for("sendMessage")
        shown = telegram.bot_message(sent)
        n = int(sent.buttons[0]["callback_data"].split(":")[1])
        in_group = {**shown, "chat": GROUP}
        in_bobs_chat = {**shown, "chat": private_chat(BOB)}
        presses = [
            (in_group, ADA, data) for data in (f"src:{n}", f"vote:{n}:1", f"vote:{n}:-1")  # another chat
        ] + [
            (in_bobs_chat, BOB, data) for data in (f"src:{n}", f"vote:{n}:1", f"vote:{n}:-1")  # unlisted user
        ] + [
            (shown, ADA, data) for data in ("src:424242", "vote:424242:1", "src:" + "9" * 40,  # unknown, too big
                                            "vote:" + "9" * 40 + ":-1", f"src:{n}:{'9' * 30}", f"vote:{n}:7")
        ]
        for message, presser, data in presses:
            query = {"id": str(len(telegram.calls())), "from": presser, "chat_instance": "-4242",
                     "message": message, "data": data}
            telegram.push({"callback_query": query})
        acks = await telegram.wait_for("answerCallbackQuery", len(presses))
        assert {a.params.get("text") for a in acks} == {UNAVAILABLE_TEXT}
        await asyncio.sleep(0.2)

    serve(core, settings, scenario)
    assert len(telegram.delivered("sendMessage")) == 1 and not telegram.delivered("editMessageText")
    shown_after = [c.text for c in telegram.calls() if c.method not in ("getUpdates", "sendMessage")]
    assert not any(q[:30] in (t or "") for q in quotes for t in shown_after)
    [stats] = core.feedback.stats().platforms
    assert (stats.up, stats.down) == (0, 0)


def test_telegram_refuses_unlisted_chats_once_and_never_retrieves(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any
) -> None:
    settings = configure(telegram_allowed_chats=[ADA["id"]])
    responder = RecordingResponder()
    core = cores(settings, responder)

    async def scenario() -> None:
        telegram.send(private_chat(BOB), BOB, "What are the targets?")
        telegram.send(private_chat(BOB), BOB, "Hello? What are the targets?")
        telegram.send(GROUP, BOB, f"{MENTION} what are the targets?")
        telegram.send(GROUP, ADA, f"{MENTION} what are the targets?")
        telegram.send(GROUP, BOB, "/help")
        await asyncio.sleep(0.3)
        telegram.send(private_chat(ADA), ADA, "What are the targets?")
        await telegram.wait_for("sendMessage", where=in_chat(private_chat(ADA)))

    serve(core, settings, scenario)
    assert [q for q, _ in responder.calls] == ["What are the targets?"]  # Ada's, in her listed chat
    refusals = telegram.delivered("sendMessage", lambda c: c.text == REFUSAL_TEXT)
    assert sorted(c.params["chat_id"] for c in refusals) == sorted([BOB["id"], GROUP["id"]])
    assert len(telegram.delivered("sendMessage")) == 3
    assert not telegram.delivered("sendChatAction", lambda c: c.params["chat_id"] != ADA["id"])


def test_telegram_asks_a_hasty_user_to_wait(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any
) -> None:
    settings = configure(rate_limit_questions=1, rate_limit_window=60)
    responder = RecordingResponder()
    core = cores(settings, responder)

    async def scenario() -> None:
        telegram.send(private_chat(ADA), ADA, "What are the targets?")
        await telegram.wait_for("sendMessage")
        again = telegram.send(private_chat(ADA), ADA, "And the checkpoints?")
        [wait] = await telegram.wait_for("sendMessage", where=replies_to(again))
        assert wait.text == RATE_LIMIT_TEXT.format(seconds=60)

    serve(core, settings, scenario)
    assert len(responder.calls) == 1


def test_telegram_retries_after_429_and_delivers_once(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any
) -> None:
    settings = configure()
    core = cores(settings, RecordingResponder())
    telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)

    async def scenario() -> None:
        telegram.send(private_chat(ADA), ADA, "What are the targets?")
        started = time.monotonic()
        [answer] = await telegram.wait_for("sendMessage")
        assert time.monotonic() - started >= 1.0  # Telegram's retry_after was honoured
        assert "Targeting the tumour microenvironment" in answer.text
        await asyncio.sleep(0.3)

    serve(core, settings, scenario)
    attempts = telegram.calls("sendMessage")
    assert [c.ok for c in attempts] == [False, True]


def test_telegram_sends_plain_text_when_html_is_rejected(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any
) -> None:
    settings = configure()
    core = cores(settings, RecordingResponder())
    telegram.reject_html = True

    async def scenario() -> None:
        telegram.send(private_chat(ADA), ADA, "What are the targets?")
        [answer] = await telegram.wait_for("sendMessage")
        assert "parse_mode" not in answer.params
        assert "Sources\n[1] Targeting the tumour microenvironment, DOI 10.1038/s41571-020-0403-1" in answer.text
        assert "<" not in answer.text and len(answer.buttons) == 3

    serve(core, settings, scenario)


def test_telegram_survives_odd_updates(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any,
    caplog: pytest.LogCaptureFixture
) -> None:
    settings = configure(rate_limit_questions=0)
    responder = RecordingResponder()
    core = cores(settings, responder)
    ada = private_chat(ADA)
    sticker = {"file_id": "CAAC", "file_unique_id": "u1", "type": "regular", "width": 512, "height": 512,
               "is_animated": False, "is_video": False}
    photo = [{"file_id": "AgAC", "file_unique_id": "u2", "width": 90, "height": 90}]

    async def scenario() -> None:
        for attachment in ({"sticker": sticker}, {"photo": photo}):
            asked = telegram.send(ada, ADA, **attachment)
            [reply] = await telegram.wait_for("sendMessage", where=replies_to(asked))
            assert reply.text == TEXT_ONLY
        telegram.send(GROUP, ADA, sticker=sticker)
        telegram.push({"edited_message": {**telegram.message(ada, ADA, "What are the targets?"), "edit_date": 1}})
        telegram.push({"channel_post": telegram.message(channel_chat(-1009), None, f"{MENTION} targets?",
                                                        sender_chat=channel_chat(-1009))})
        telegram.send(ada, user(4242, "Spambot", is_bot=True), "What are the targets?")
        telegram.send(ada, ADA, "/settings")
        await telegram.wait_for("sendMessage", where=lambda c: c.text == COMMAND_USAGE)
        bare_mention = telegram.send(GROUP, ADA, MENTION)
        [reply] = await telegram.wait_for("sendMessage", where=replies_to(bare_mention))
        assert "Send me a question" in reply.text
        huge = telegram.send(ada, ADA, "Which targets? " + "x" * 10_000)
        [reply] = await telegram.wait_for("sendMessage", where=replies_to(huge))
        assert "only read its first 4,000 characters" in reply.text

    serve(core, settings, scenario)
    assert [len(q) for q, _ in responder.calls] == [4000]
    assert len(telegram.delivered("sendMessage")) == 5
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_telegram_help_describes_the_corpus(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any, seeded_pipeline: Pipeline
) -> None:
    settings = configure()
    core = cores(settings, seeded_pipeline)

    async def scenario() -> None:
        telegram.send(private_chat(ADA), ADA, "/start")
        telegram.send(GROUP, ADA, f"/help{MENTION}")
        [start] = await telegram.wait_for("sendMessage", where=in_chat(private_chat(ADA)))
        [group_help] = await telegram.wait_for("sendMessage", where=in_chat(GROUP))
        assert start.text.startswith("Hi!") and MENTION in start.text
        assert "2 documents are indexed" in group_help.text
        assert "• What are the therapeutic targets in tumor microenvironment" in group_help.text

    serve(core, settings, scenario)


def test_telegram_slow_question_keeps_typing_and_holds_no_one_up(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any
) -> None:
    release = threading.Event()

    def answer(question: str) -> Answer:
        if "slow" in question:
            release.wait(10)
        return build_answer(question=question)

    settings = configure()
    core = cores(settings, RecordingResponder(answer))

    async def scenario() -> None:
        telegram.send(private_chat(ADA), ADA, "A slow question about targets?")
        await asyncio.sleep(0.2)
        telegram.send(private_chat(BOB), BOB, "A quick question about targets?")
        await telegram.wait_for("sendMessage", where=in_chat(private_chat(BOB)))
        assert not telegram.delivered("sendMessage", in_chat(private_chat(ADA)))
        await telegram.wait_for("sendChatAction", 2, where=in_chat(private_chat(ADA)), timeout=6)
        release.set()
        await telegram.wait_for("sendMessage", where=in_chat(private_chat(ADA)))

    try:
        serve(core, settings, scenario)
    finally:
        release.set()


# --- language-model answers, shown while they are written ------------------------------------------------



def is_html(call: Any) -> bool:
    return call.params.get("parse_mode") == "HTML"


def test_telegram_streams_an_llm_answer_then_edits_in_the_verified_one(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any, seeded_pipeline: Pipeline,
    openai: OpenAIEmulator,
) -> None:
    pipeline = llm_pipeline(seeded_pipeline, openai.url)
    openai.script(Reply(cited_reply(pipeline, TME_QUESTION), pace=0.04))
    settings = configure()
    core = cores(settings, pipeline)

    async def scenario() -> None:
        question = telegram.send(private_chat(ADA), ADA, TME_QUESTION)
        [final] = await telegram.wait_for("editMessageText", where=is_html)
        [draft] = telegram.delivered("sendMessage")
        assert replies_to(question)(draft) and not is_html(draft)
        partial_edits = [c.text for c in telegram.delivered("editMessageText") if not is_html(c)]
        assert partial_edits, "the draft was never updated while the answer was written"
        shown = [draft.text, *partial_edits]
        assert all(len(a) < len(b) for a, b in zip(shown, shown[1:], strict=False))
        assert not any("[" in text for text in shown)  # the prompt's numbers are not the answer's
        assert final.params["message_id"] == draft.result["message_id"]
        assert "[1]" in final.text and "[2]" in final.text and "<b>Sources</b>" in final.text
        answer_id = int(final.buttons[0]["callback_data"].removeprefix("src:"))
        assert [b["callback_data"] for b in final.buttons] == [
            f"src:{answer_id}", f"vote:{answer_id}:1", f"vote:{answer_id}:-1"]
        assert telegram.bot_message(draft)["text"] == final.text
        assert core.feedback.get_answer(answer_id).mode == "llm"

    serve(core, settings, scenario)
    assert len(telegram.delivered("sendMessage")) == 1


def test_telegram_never_shows_a_citation_of_a_passage_that_was_not_retrieved(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any, seeded_pipeline: Pipeline,
    openai: OpenAIEmulator,
) -> None:
    pipeline = llm_pipeline(seeded_pipeline, openai.url, top_k=4)
    invented = "Radiotherapy cures most tumours within two weeks [7]. "
    openai.script(Reply(cited_reply(pipeline, TME_QUESTION, extra=invented), pace=0.02))
    settings = configure()
    core = cores(settings, pipeline)

    async def scenario() -> None:
        telegram.send(private_chat(ADA), ADA, TME_QUESTION)
        [final] = await telegram.wait_for("editMessageText", where=is_html)
        shown = [c.text for c in telegram.delivered("sendMessage") + telegram.delivered("editMessageText")]
        assert not any("[7]" in text for text in shown)
        assert "Radiotherapy" not in final.text and "1 unsupported sentence(s) removed." in final.text
        assert "[1]" in final.text and "[2]" in final.text

    serve(core, settings, scenario)
    prompt = openai.requests[0].body["messages"][-1]["content"]
    assert "[4] " in prompt and "[5] " not in prompt


def test_telegram_unverifiable_llm_answer_becomes_the_extractive_answer_with_a_notice(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any, seeded_pipeline: Pipeline,
    openai: OpenAIEmulator,
) -> None:
    openai.script(Reply("Radiotherapy cures every tumour within two weeks [1]. Surgery is obsolete [2].", pace=0.1))
    settings = configure()
    core = cores(settings, llm_pipeline(seeded_pipeline, openai.url))

    async def scenario() -> None:
        telegram.send(private_chat(ADA), ADA, TME_QUESTION)
        [final] = await telegram.wait_for("sendMessage", where=is_html)
        assert f"<i>{LLM_UNVERIFIED_NOTICE}</i>" in final.text
        assert "[1]" in final.text and "<b>Sources</b>" in final.text
        # No sentence verified, so no draft was shown: the unsupported words never reached the user.
        shown = telegram.delivered("sendMessage") + telegram.delivered("editMessageText")
        assert not any("Radiotherapy" in m.text for m in shown)

    serve(core, settings, scenario)


def test_telegram_llm_endpoint_down_sends_the_extractive_answer_with_a_notice(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any, seeded_pipeline: Pipeline,
) -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"
    settings = configure()
    core = cores(settings, llm_pipeline(seeded_pipeline, down))

    async def scenario() -> None:
        question = telegram.send(private_chat(ADA), ADA, TME_QUESTION)
        [answer] = await telegram.wait_for("sendMessage")
        assert replies_to(question)(answer) and is_html(answer)
        assert f"<i>The language model is unavailable (cannot connect to {down}); showing the extractive " \
               "answer.</i>" in answer.text
        assert "[1]" in answer.text and "<b>Sources</b>" in answer.text and answer.buttons

    serve(core, settings, scenario)
    assert not telegram.calls("editMessageText")


def test_telegram_long_streamed_answer_fills_the_draft_then_sends_the_rest(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any
) -> None:
    paragraphs = [f"Finding {i}: " + "fibroblasts remodel the matrix and recruit macrophages " * 5
                  + f"[{i % 2 + 1}]." for i in range(25)]
    answer = build_answer("\n\n".join(paragraphs), mode="llm")
    expected = render.to_telegram_html(answer)
    settings = configure()
    core = cores(settings, StreamingResponder(lambda q: answer, pace=0.001))

    async def scenario() -> None:
        question = telegram.send(private_chat(ADA), ADA, "Tell me everything about fibroblasts")
        rest = await telegram.wait_for("sendMessage", len(expected))  # the draft, then the other parts
        [final] = await telegram.wait_for("editMessageText", where=is_html)
        draft = rest.pop(0)
        assert replies_to(question)(draft) and final.params["message_id"] == draft.result["message_id"]
        assert [final.text, *(p.text for p in rest)] == expected
        assert not any(p.params.get("reply_parameters") for p in rest)
        assert rest[-1].buttons and not final.buttons
        drafts = [draft.text] + [c.text for c in telegram.delivered("editMessageText") if not is_html(c)]
        assert drafts[-1].endswith("…") and max(map(utf16_len, drafts)) <= 4096  # long drafts are cut

    serve(core, settings, scenario)


def test_telegram_answer_whose_draft_was_deleted_is_sent_anew(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any
) -> None:
    settings = configure()
    core = cores(settings, StreamingResponder(pace=0.3))

    async def scenario() -> None:
        question = telegram.send(private_chat(ADA), ADA, TME_QUESTION)
        [draft] = await telegram.wait_for("sendMessage")
        telegram.delete(draft)
        [_, answer] = await telegram.wait_for("sendMessage", 2)
        assert replies_to(question)(answer) and is_html(answer) and "<b>Sources</b>" in answer.text

    serve(core, settings, scenario)


def test_telegram_webhook_accepts_only_the_secret_token(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any
) -> None:
    settings = configure(telegram_webhook_url="https://bot.example.org/citebot/telegram",
                         telegram_webhook_secret="s3cret_token", telegram_listen_port=free_port())
    responder = RecordingResponder()
    core = cores(settings, responder)
    url = f"http://127.0.0.1:{settings.telegram_listen_port}/citebot/telegram"

    async def main() -> None:
        application = build_application(core, settings)
        await application.initialize()
        await application.start()
        await application.updater.start_webhook(**webhook_options(settings))
        try:
            [hook] = telegram.delivered("setWebhook")
            assert hook.params["url"] == settings.telegram_webhook_url
            assert hook.params["secret_token"] == "s3cret_token"
            update = {"update_id": 1, "message": telegram.message(private_chat(ADA), ADA, "What are the targets?")}
            async with httpx.AsyncClient() as client:
                for secret in ("wrong", None):
                    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
                    rejected = await client.post(url, json=update, headers=headers)
                    assert rejected.status_code == 403
                await asyncio.sleep(0.2)
                assert not responder.calls
                headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret_token"}
                assert (await client.post(url, json=update, headers=headers)).status_code == 200
            await telegram.wait_for("sendMessage")
        finally:
            await application.updater.stop()
            await application.stop()
            await application.shutdown()

    asyncio.run(main())
    assert len(responder.calls) == 1


def test_build_application_uses_the_configured_bot_api_server(
    configure: Callable[..., BotSettings], cores: Any
) -> None:
    settings = configure(telegram_base_url="http://127.0.0.1:8081/")
    application = build_application(cores(settings, RecordingResponder()), settings)
    token = settings.telegram_bot_token.get_secret_value()
    assert application.bot.base_url == f"http://127.0.0.1:8081/bot{token}"
    assert application.bot.base_file_url == f"http://127.0.0.1:8081/file/bot{token}"


def test_build_application_needs_a_token(bot_settings: BotSettings, cores: Any) -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        build_application(cores(bot_settings, RecordingResponder()), bot_settings)


def test_cli_telegram_serves_through_the_configured_server(
    telegram: TelegramEmulator, seeded_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", telegram.token)
    monkeypatch.setenv("TELEGRAM_BASE_URL", telegram.base_url)
    monkeypatch.setenv("CITEBOT_DATA_DIR", str(seeded_pipeline.settings.data_dir))
    answers: list[Any] = []

    def play() -> None:
        try:
            telegram.send(private_chat(ADA), ADA, TME_QUESTION)
            answers.extend(asyncio.run(telegram.wait_for("sendMessage", timeout=30)))
        finally:
            if telegram.calls("getUpdates"):  # the bot is polling, so its stop-signal handler is in place
                os.kill(os.getpid(), signal.SIGTERM)

    player = threading.Thread(target=play)
    player.start()
    result = CliRunner().invoke(cli, ["telegram"])
    player.join()
    assert result.exit_code == 0, result.output
    assert "https://doi.org/10.1016/j.pharmthera.2020.107753" in answers[0].text


def test_cli_telegram_reports_a_rejected_token_without_quoting_it(
    telegram: TelegramEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "987654321:AAWrongTokenThatTelegramRejects_999"
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", wrong)
    monkeypatch.setenv("TELEGRAM_BASE_URL", telegram.base_url)
    result = CliRunner().invoke(cli, ["telegram"])
    assert result.exit_code == 1
    assert result.output == "Error: Telegram rejected TELEGRAM_BOT_TOKEN: check it with @BotFather\n"
    assert wrong not in result.output + caplog.text


def test_cli_telegram_help() -> None:
    result = CliRunner().invoke(cli, ["telegram", "--help"])
    assert result.exit_code == 0, result.output
    assert "Telegram" in result.output


def test_telegram_chats_of_two_spaces_each_cite_only_their_folder(
    telegram: TelegramEmulator, configure: Callable[..., BotSettings], cores: Any, team_pipeline: Pipeline,
    tmp_path: Path,
) -> None:
    hr, finance = group_chat(-100111, "HR"), group_chat(-100222, "Finance")
    spaces = tmp_path / "spaces.toml"
    spaces.write_text('[spaces.hr]\nfolders = ["hr"]\ntelegram_chats = [-100111]\n\n'
                      '[spaces.finance]\nfolders = ["finance"]\ntelegram_chats = [-100222]\n\n'
                      '[default]\nfolders = ["public"]\n')
    settings = configure(spaces_file=spaces, rate_limit_questions=0)
    core = cores(settings, team_pipeline)
    question = "How many days of annual leave do employees get?"

    async def scenario() -> None:
        asked = {name: telegram.send(chat, ADA, f"{MENTION} {question}")
                 for name, chat in (("hr", hr), ("finance", finance), ("default", private_chat(ADA)))}
        answers = {name: (await telegram.wait_for("sendMessage", where=replies_to(message)))[0]
                   for name, message in asked.items()}
        assert "30 days" in answers["hr"].text and "HR portal" in answers["hr"].text
        assert "25 days" in answers["finance"].text and "Finance planning" in answers["finance"].text
        # The private chat is in no space: the default one, whose public folder does not answer this.
        assert "Not found" in answers["default"].text and "Public holidays" in answers["default"].text
        for name, sent in answers.items():
            stored = core.feedback.get_answer(int(sent.buttons[-1]["callback_data"].split(":")[1]))
            assert stored.space == name and bool(stored.citations) == (name != "default")
            assert {c.source.split("/")[0] for c in stored.citations} <= {name}
        for other in (name for name in answers if name != "hr"):
            assert "HR policy" not in answers[other].text and "HR portal" not in answers[other].text
        assert "Finance" not in answers["hr"].text
        # The hr answer's Sources button, forged into the finance chat: refused, nothing of it shown.
        hr_id = answers["hr"].buttons[0]["callback_data"]
        forged = {**telegram.bot_message(answers["finance"]), "chat": finance}
        telegram.push({"callback_query": {"id": "forged", "from": ADA, "chat_instance": "-1", "message": forged,
                                          "data": hr_id}})
        [ack] = await telegram.wait_for("answerCallbackQuery")
        assert ack.params["text"] == UNAVAILABLE_TEXT
        # Help lists only the chat's own space.
        telegram.send(hr, ADA, f"/help{MENTION}")
        help_text = (await telegram.wait_for("sendMessage", 4))[3]
        assert "2 documents are indexed" in help_text.text and "• Annual leave" in help_text.text
        assert "Expenses" not in help_text.text

    serve(core, settings, scenario)
    assert len(telegram.delivered("sendMessage")) == 4
    assert not any("HR policy" in (c.text or "") for c in telegram.calls() if c.params.get("chat_id") == finance["id"])
