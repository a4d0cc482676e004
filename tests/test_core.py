"""The shared chat core: who may ask, cleaning, rate limits, history, feedback, and never crashing."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading

import pytest

from bot.core import ChatCore, IncomingMessage, Reply
from bot.feedback import FeedbackStore
from bot.settings import BotSettings
from retrieval import Turn
from tests.conftest import RecordingResponder, StreamingResponder, build_answer


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def feedback(settings) -> FeedbackStore:
    store = FeedbackStore.open(settings)
    yield store
    store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_core(responder, bot_settings: BotSettings, feedback, clock=None, **overrides) -> ChatCore:
    settings = BotSettings(retrieval=bot_settings.retrieval, _env_file=None, **overrides)
    return ChatCore(responder, settings, feedback, clock=clock or Clock())


@pytest.fixture
def core(responder, bot_settings, feedback, clock) -> ChatCore:
    return make_core(responder, bot_settings, feedback, clock)


def ask(core: ChatCore, text: str = "What are the therapeutic targets in the TME?", *, platform="telegram",
        conversation="100", user="7", chat="100", team="") -> Reply:
    return asyncio.run(core.handle(IncomingMessage(platform, conversation, user, text, chat, team)))


def test_core_answers_and_stores_the_answer(core, responder, feedback) -> None:
    reply = ask(core)
    assert reply.kind == "answer"
    assert reply.answer.citations and reply.text == reply.answer.text
    assert responder.calls == [("What are the therapeutic targets in the TME?", [])]
    stored = feedback.get_answer(reply.answer_id)
    assert (stored.platform, stored.conversation_id, stored.user_id) == ("telegram", "100", "7")


def test_core_declines_when_the_documents_do_not_answer(responder, bot_settings, feedback) -> None:
    declining = RecordingResponder(lambda q: build_answer(question=q, found=False))
    core = make_core(declining, bot_settings, feedback)
    reply = ask(core, "Who won the 1998 World Cup?")
    assert reply.kind == "declined" and reply.text.startswith("Not found in the documents")
    assert feedback.stats().platforms[0].declined == 1


def test_core_refuses_an_unlisted_chat_without_retrieval(responder, bot_settings, feedback) -> None:
    core = make_core(responder, bot_settings, feedback, telegram_allowed_chats=[-100456])
    reply = ask(core, chat="-100999", conversation="-100999")
    assert reply.kind == "refused" and "administrator" in reply.text
    assert responder.calls == []
    assert ask(core, chat="-100456", conversation="-100456").kind == "answer"


def test_core_listed_user_may_ask_in_any_chat(responder, bot_settings, feedback) -> None:
    core = make_core(responder, bot_settings, feedback, telegram_allowed_chats=[1],
                     telegram_allowed_users=[7])
    assert ask(core, user="7", chat="555").kind == "answer"
    assert ask(core, user="8", chat="555").kind == "refused"


@pytest.mark.parametrize(
    ("channel", "user", "team", "kind"),
    [("C1", "U9", "T1", "answer"), ("C2", "U1", "T1", "answer"), ("C2", "U9", "T1", "refused"),
     ("C1", "U1", "T2", "refused")],
)
def test_core_slack_allowlists(responder, bot_settings, feedback, channel, user, team, kind) -> None:
    core = make_core(responder, bot_settings, feedback, slack_allowed_channels=["C1"],
                     slack_allowed_users=["U1"], slack_allowed_teams=["T1"])
    assert ask(core, platform="slack", chat=channel, user=user, team=team).kind == kind


def test_core_refuses_unknown_platforms(core, responder) -> None:
    assert ask(core, platform="irc").kind == "refused"
    assert responder.calls == []


@pytest.mark.parametrize("text", ["", "   \n\t ", "\x00\x01\x1b\x7f", "\ud800"])
def test_core_empty_question_gets_a_usage_hint(core, responder, text: str) -> None:
    reply = ask(core, text)
    assert reply.kind == "invalid" and "question" in reply.text
    assert responder.calls == []


def test_core_strips_control_characters_but_keeps_lines(core, responder) -> None:
    ask(core, "  What\x00 are\x1b[31m the\r\ntargets?\t(TME) \x07 ")
    assert responder.calls[0][0] == "What are[31m the\ntargets?\t(TME)"


def test_core_shortens_a_long_question_with_a_notice(core, responder) -> None:
    reply = ask(core, "why " * 2500)
    assert len(responder.calls[0][0]) == 4000
    assert reply.kind == "answer" and "first 4,000 characters" in reply.answer.notice


def test_core_rate_limits_each_user(core, clock) -> None:
    assert [ask(core, user="7").kind for _ in range(5)] == ["answer"] * 5
    clock.now += 20
    limited = ask(core, user="7")
    assert limited.kind == "rate_limited" and limited.retry_after == pytest.approx(40)
    assert "please wait 40 s" in limited.text.lower()
    assert ask(core, user="8").kind == "answer"
    assert ask(core, user="7", platform="slack").kind == "answer"  # another platform, another user
    clock.now += 40
    assert ask(core, user="7").kind == "answer"


def test_core_terminal_user_is_not_rate_limited(core) -> None:
    assert {ask(core, platform="cli").kind for _ in range(8)} == {"answer"}


def test_core_follow_up_sees_the_conversation_history(responder, bot_settings, feedback) -> None:
    retrieval = bot_settings.retrieval.model_copy(update={"history_turns": 2})
    core = make_core(responder, BotSettings(retrieval=retrieval, _env_file=None), feedback, rate_limit_questions=0)
    for n in range(3):
        ask(core, f"question {n}")
    ask(core, "and which of those are in trials?")
    ask(core, "unrelated", conversation="other")
    first_answer = build_answer().text
    assert responder.calls[3][1] == [Turn("question 1", first_answer), Turn("question 2", first_answer)]
    assert responder.calls[4][1] == []


def test_core_responder_failure_is_an_apology_not_a_crash(bot_settings, feedback, caplog) -> None:
    def broken(question: str):
        raise ConnectionError("chroma unreachable")

    core = make_core(RecordingResponder(broken), bot_settings, feedback,
                     telegram_bot_token="123:SECRET-TOKEN")
    with caplog.at_level(logging.ERROR):
        reply = ask(core)
    assert reply.kind == "error" and "try again" in reply.text
    assert "chroma unreachable" in caplog.text and "conversation 100" in caplog.text
    assert "SECRET-TOKEN" not in caplog.text


def test_core_answers_even_when_the_feedback_store_fails(responder, bot_settings, settings) -> None:
    broken = FeedbackStore.open(settings)
    broken.close()  # every write now fails
    reply = ask(make_core(responder, bot_settings, broken))
    assert reply.kind == "answer" and reply.answer_id is None


def test_core_answers_even_when_the_answer_cannot_be_stored(bot_settings, feedback) -> None:
    odd = RecordingResponder(lambda q: build_answer("Broken PDF text \ud800 [1].", question=q))
    reply = ask(make_core(odd, bot_settings, feedback))
    assert reply.kind == "answer" and reply.answer_id is None


def button(core: ChatCore, kind: str, answer_id: object, *, platform="telegram", user="7", chat="100",
           team="") -> Reply:
    """A click on the Sources (``kind="sources"``) or a vote (``kind=+1/-1``) button of ``answer_id``."""
    who = IncomingMessage(platform, chat, user, "", chat, team)
    if kind == "sources":
        return asyncio.run(core.sources(answer_id, who))
    return asyncio.run(core.vote(answer_id, who, int(kind)))


def test_core_votes_and_sources_of_a_stored_answer(core, feedback) -> None:
    reply = ask(core)
    assert button(core, "1", reply.answer_id).kind == "voted"
    assert button(core, "-1", str(reply.answer_id), user="8").text.startswith("Thanks")
    sources = button(core, "sources", reply.answer_id)
    assert sources.kind == "sources" and [c.number for c in sources.stored.citations] == [1, 2]
    assert sources.stored.withdrawn == 0
    [stats] = feedback.stats().platforms
    assert (stats.up, stats.down) == (1, 1)


FOREIGN = {
    "unknown id": ({"answer_id": 424242}, {}),
    "out-of-range id": ({"answer_id": 2**64}, {}),
    "negative id": ({"answer_id": "-1"}, {}),
    "not a number": ({"answer_id": "1; DROP TABLE answers"}, {}),
    "other chat": ({}, {"chat": "200"}),
    "other platform": ({}, {"platform": "slack", "chat": "100"}),
    "unlisted user in an unlisted chat": ({}, {"chat": "300", "user": "9"}),
}


@pytest.mark.parametrize(("forged", "where"), FOREIGN.values(), ids=FOREIGN.keys())
def test_core_foreign_or_forged_clicks_see_nothing_and_store_nothing(responder, bot_settings, feedback, forged,
                                                                     where) -> None:
    core = make_core(responder, bot_settings, feedback, telegram_allowed_chats=[100, 200])
    reply = ask(core)
    answer_id = forged.get("answer_id", reply.answer_id)
    for kind in ("sources", "1", "-1", "0"):
        refused = button(core, kind, answer_id, **where)
        assert refused.kind == "refused" and refused.stored is None
        assert reply.answer.citations[0].quote not in refused.text and "TME" not in refused.text
    assert feedback.stats().platforms[0].up == feedback.stats().platforms[0].down == 0


def test_core_slack_click_from_another_workspace_is_refused(responder, bot_settings, feedback) -> None:
    core = make_core(responder, bot_settings, feedback)
    reply = ask(core, platform="slack", conversation="C1:1.2", user="U1", chat="C1", team="T1")
    assert button(core, "sources", reply.answer_id, platform="slack", user="U1", chat="C1", team="T1").stored
    for kind in ("sources", "1", "-1"):
        assert button(core, kind, reply.answer_id, platform="slack", user="U1", chat="C1", team="T2").kind == \
            "refused"
    assert feedback.stats().platforms[0].up == feedback.stats().platforms[0].down == 0


def test_core_sources_leave_out_quotes_of_passages_no_longer_indexed(core, responder) -> None:
    reply = ask(core)
    removed = reply.answer.citations[0]
    del responder.indexed[removed.passage.id]
    sources = button(core, "sources", reply.answer_id)
    assert [c.quote for c in sources.stored.citations] == [reply.answer.citations[1].quote]
    assert sources.stored.withdrawn == 1
    responder.indexed.clear()
    assert button(core, "sources", reply.answer_id).stored.citations == []


def test_core_sources_leave_out_a_quote_its_changed_passage_no_longer_holds(core, responder) -> None:
    reply = ask(core)
    changed = reply.answer.citations[1].passage
    responder.indexed[changed.id] = dataclasses.replace(changed, text="Entirely rewritten text.")
    assert [c.number for c in button(core, "sources", reply.answer_id).stored.citations] == [1]


def test_core_sources_show_no_quote_when_the_index_cannot_be_asked(bot_settings, feedback) -> None:
    class Unreachable(RecordingResponder):
        def passages(self, ids, *, scope=None):
            raise ConnectionError("the Chroma server is down")

    core = make_core(Unreachable(), bot_settings, feedback)
    sources = button(core, "sources", ask(core).answer_id)
    assert sources.kind == "sources" and sources.stored.citations == [] and sources.stored.withdrawn == 2


def test_core_concurrent_questions_are_all_answered_within_limits(core, feedback) -> None:
    async def burst() -> list[Reply]:
        msgs = [IncomingMessage("telegram", f"c{n % 40}", f"u{n % 40}", f"question {n}", f"c{n % 40}")
                for n in range(200)]
        msgs += [IncomingMessage("telegram", "flood", "flooder", f"spam {n}", "flood") for n in range(20)]
        return await asyncio.gather(*(core.handle(m) for m in msgs))

    replies = asyncio.run(burst())
    assert [r.kind for r in replies[:200]] == ["answer"] * 200  # 40 users, 5 questions each
    assert [r.kind for r in replies[200:]].count("rate_limited") == 15
    assert feedback.stats().platforms[0].questions == 205
    assert len({r.answer_id for r in replies if r.answer_id}) == 205


def test_core_passes_tokens_from_the_worker_thread_to_the_adapter(bot_settings, feedback) -> None:
    responder = StreamingResponder()
    core = make_core(responder, bot_settings, feedback)
    tokens: list[tuple[str, str]] = []
    reply = asyncio.run(core.handle(IncomingMessage("slack", "C1:1", "U1", "What are the targets?", "C1"),
                                    on_sentence=lambda t: tokens.append((t, threading.current_thread().name))))
    assert "".join(t for t, _ in tokens).strip() == reply.answer.text
    assert {name for _, name in tokens} == responder.threads != {threading.main_thread().name}


def test_core_streams_nothing_for_a_refusal(bot_settings, feedback) -> None:
    core = make_core(StreamingResponder(), bot_settings, feedback, slack_allowed_channels=["C1"])
    tokens: list[str] = []
    reply = asyncio.run(core.handle(IncomingMessage("slack", "C9:1", "U1", "Anything?", "C9"),
                                    on_sentence=tokens.append))
    assert reply.kind == "refused" and tokens == []
