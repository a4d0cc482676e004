"""The Slack bot end to end: signed requests (and Socket Mode envelopes) into the real Bolt app, whose Web API
calls land in the Slack emulator on 127.0.0.1. Assertions are on what Slack users would see."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner

from bot import render, slack_adapter, slack_http
from bot.app import PipelineResponder
from bot.cli import cli
from bot.core import ChatCore, IncomingMessage, Responder
from bot.feedback import FeedbackStore
from bot.settings import BotSettings
from bot.texts import UNAVAILABLE_TEXT
from retrieval import Turn
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from tests.conftest import RecordingResponder, build_answer
from tests.emulators.openai_server import Reply
from tests.emulators.slack_api import SlackEmulator
from tests.fixtures_docs import make_markdown
from tests.llm_pipelines import cited_reply, llm_pipeline

SEEDS = Path(__file__).parent.parent / "seeds"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0EMULATED"
HELPDESK = "C0HELPDESK"
ASKER = "U0ASKER"
TME = "What are the therapeutic targets in the TME?"
_ts = iter(range(100, 10**6))
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # straight to 127.0.0.1


def next_ts() -> str:
    return f"1700001000.{next(_ts):06d}"


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emulator:
        yield emulator


@dataclass
class Bot:
    """The Slack bot served over HTTP on 127.0.0.1, and a Slack that signs what it sends."""

    url: str
    slack: SlackEmulator
    core: ChatCore | None = None  # None when the bot runs in another process

    def send(self, body: bytes, content_type: str, *, timestamp: int | None = None, secret: str = SECRET,
             headers: dict[str, str] | None = None) -> tuple[int, str]:
        """POST a request as Slack does, signed (v0) with ``secret`` at ``timestamp``; (status, body)."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        base = b"v0:%d:%s" % (timestamp, body)
        signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": content_type, "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature, **(headers or {})})
        try:
            with _opener.open(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read().decode()

    def event(self, event: dict[str, Any], *, event_id: str = "", **kwargs: Any) -> tuple[int, str]:
        """Deliver an Events API event."""
        return self.send(json.dumps(event_callback(event, event_id)).encode(), "application/json", **kwargs)

    def command(self, text: str, *, channel: str = HELPDESK, user: str = ASKER) -> tuple[int, str]:
        """Run ``/ask text`` in ``channel``."""
        form = {"token": "legacy-verification-token", "team_id": TEAM, "team_domain": "emulated",
                "channel_id": channel, "channel_name": "help-desk", "user_id": user, "user_name": "asker",
                "command": "/ask", "text": text, "response_url": self.slack.response_url("ask"),
                "trigger_id": "1.2.3", "api_app_id": "A0CITEBOT"}
        return self.send(urlencode(form).encode(), "application/x-www-form-urlencoded")

    def click(self, action_id: str, answer_id: int | str, *, channel: str, thread_ts: str | None,
              user: str = ASKER, team: str = TEAM, response_url: bool = True) -> tuple[int, str]:
        """Click a button of the answer with ``answer_id``, posted in ``thread_ts`` of ``channel``, from ``team``."""
        message_ts = next_ts()
        container = {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False}
        message = {"type": "message", "ts": message_ts, "bot_id": self.slack.bot_id}
        if thread_ts:
            container["thread_ts"] = message["thread_ts"] = thread_ts
        payload = {"type": "block_actions", "user": {"id": user, "team_id": team}, "team": {"id": team},
                   "api_app_id": "A0CITEBOT", "container": container, "channel": {"id": channel},
                   "message": message, "trigger_id": "1.2.3",
                   "actions": [{"type": "button", "action_id": action_id, "block_id": "citebot_actions",
                                "value": str(answer_id), "action_ts": next_ts()}]}
        if response_url:
            payload["response_url"] = self.slack.response_url("click")
        return self.send(urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded")


def event_callback(event: dict[str, Any], event_id: str = "") -> dict[str, Any]:
    return {"token": "legacy-verification-token", "team_id": TEAM, "api_app_id": "A0CITEBOT", "event": event,
            "type": "event_callback", "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}",
            "event_time": int(time.time())}


def mention(text: str, *, channel: str = HELPDESK, user: str = ASKER, thread_ts: str | None = None) -> dict:
    ts = next_ts()
    event = {"type": "app_mention", "user": user, "text": f"<@U0CITEBOT> {text}", "ts": ts, "channel": channel,
             "event_ts": ts}
    return {**event, "thread_ts": thread_ts} if thread_ts else event


def direct(text: str, *, user: str = ASKER, **extra: Any) -> dict:
    ts = next_ts()
    return {"type": "message", "channel_type": "im", "channel": "D0ASKER", "user": user, "text": text, "ts": ts,
            "event_ts": ts, **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slack_settings(slack: SlackEmulator, retrieval: RetrievalSettings, **overrides: Any) -> BotSettings:
    """Bot settings pointing at the emulator, as a user's environment would."""
    return BotSettings(retrieval=retrieval, _env_file=None, slack_bot_token=slack.bot_token,
                       slack_app_token=slack.app_token, slack_signing_secret=SECRET, slack_api_url=slack.api_url,
                       slack_http_port=_free_port(), **overrides)


@pytest.fixture
def start_bot(slack: SlackEmulator, settings: RetrievalSettings) -> Iterator[Callable[..., Bot]]:
    """Serve a bot answering through ``responder`` over HTTP, the way ``citebot slack --http`` does."""
    running = []

    def start(responder: Responder, **overrides: Any) -> Bot:
        bot_settings = slack_settings(slack, settings, **overrides)
        core = ChatCore(responder, bot_settings, FeedbackStore.open(settings))
        server = slack_http.http_server(slack_adapter.build_app(core, bot_settings), bot_settings)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread, core.feedback))
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "the HTTP server did not start"
        return Bot(f"http://127.0.0.1:{bot_settings.slack_http_port}/slack/events", slack, core)

    yield start
    for server, thread, store in running:
        server.should_exit = True
        thread.join(5)
        store.close()


def texts(blocks: list[dict]) -> str:
    """Every piece of text in Block Kit blocks, one per line."""
    out = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        out += [e["text"]["text"] if isinstance(e.get("text"), dict) else e.get("text", "")
                for e in block.get("elements", [])]
    return "\n".join(out)


def answer_id(post: dict) -> int:
    actions = next(b for b in post["blocks"] if b["type"] == "actions")
    return int(actions["elements"][0]["value"])


# --- mentions in channels -----------------------------------------------------------------------------


def test_slack_mention_answered_in_thread_with_citations_and_buttons(start_bot, slack, seeded_pipeline) -> None:
    bot = start_bot(PipelineResponder(seeded_pipeline))
    event = mention(TME)
    assert bot.event(event)[0] == 200
    [post] = slack.wait_for("chat.postMessage")
    assert post["channel"] == HELPDESK and post["thread_ts"] == event["ts"]
    shown = texts(post["blocks"])
    assert "[1]" in shown and "target" in shown.lower()
    assert post["text"] and "[1]" in post["text"]  # the notification fallback
    assert any(b["type"] == "context" and b["elements"][0]["text"].startswith("[1] ") for b in post["blocks"])
    actions = next(b for b in post["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        render.ACTION_SOURCES, render.ACTION_VOTE_UP, render.ACTION_VOTE_DOWN]
    methods = [c.method for c in slack.calls() if c.method != "auth.test"]
    assert methods == ["reactions.add", "chat.postMessage"]  # 👀 first, on the asking message
    reaction = slack.calls("reactions.add")[0].args
    assert (reaction["channel"], reaction["timestamp"], reaction["name"]) == (HELPDESK, event["ts"], "eyes")


def test_slack_streams_an_llm_answer_then_updates_in_the_verified_one(
    start_bot, slack, seeded_pipeline, openai
) -> None:
    llm = llm_pipeline(seeded_pipeline, openai.url)
    openai.script(Reply(cited_reply(llm, TME, extra="Radiotherapy cures most tumours [7]. "), pace=0.04))
    bot = start_bot(PipelineResponder(llm))
    event = mention(TME)
    bot.event(event)
    [final] = slack.wait_for("chat.update", where=lambda update: "blocks" in update)
    [draft] = slack.wait_for("chat.postMessage")
    assert draft["thread_ts"] == event["ts"] and "blocks" not in draft
    updates = slack.wait_for("chat.update")
    partial = [u["text"] for u in updates if "blocks" not in u]
    assert partial, "the draft was never updated while the answer was written"
    assert all(u["ts"] == final["ts"] for u in updates) and final["channel"] == HELPDESK
    shown = [draft["text"], *partial]
    assert all(len(a) < len(b) for a, b in zip(shown, shown[1:], strict=False))
    assert not any("[" in text for text in shown)  # the prompt's numbers are not the answer's
    blocks = texts(final["blocks"])
    assert "[1]" in blocks and "[2]" in blocks and "[7]" not in blocks and "Radiotherapy" not in blocks
    assert "1 unsupported sentence(s) removed." in blocks
    assert final["text"] and "[1]" in final["text"]  # the notification fallback
    actions = next(b for b in final["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        render.ACTION_SOURCES, render.ACTION_VOTE_UP, render.ACTION_VOTE_DOWN]
    time.sleep(0.3)
    assert len(slack.calls("chat.postMessage")) == 1


def test_slack_llm_endpoint_down_posts_the_extractive_answer_with_a_notice(start_bot, slack, seeded_pipeline) -> None:
    down = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    bot = start_bot(PipelineResponder(llm_pipeline(seeded_pipeline, down)))
    bot.event(mention(TME))
    [post] = slack.wait_for("chat.postMessage")
    assert f"The language model is unavailable (cannot connect to {down})" in texts(post["blocks"])
    assert "[1]" in texts(post["blocks"]) and not slack.calls("chat.update")


def test_slack_mention_declined_shows_not_found_and_closest_passages(start_bot, slack, seeded_pipeline) -> None:
    bot = start_bot(PipelineResponder(seeded_pipeline))
    event = mention("Who won the 1998 football World Cup final?")
    bot.event(event)
    [post] = slack.wait_for("chat.postMessage")
    shown = texts(post["blocks"])
    assert post["thread_ts"] == event["ts"]
    assert "Not found in the documents" in shown and "Closest passages" in shown


def test_slack_follow_up_in_thread_sees_the_thread_history(start_bot, slack, responder) -> None:
    bot = start_bot(responder)
    first = mention(TME)
    bot.event(first)
    slack.wait_for("chat.postMessage")
    bot.event(mention("and which are in clinical trials?", thread_ts=first["ts"]))
    slack.wait_for("chat.postMessage", 2)
    bot.event(mention("An unrelated question?"))
    posts = slack.wait_for("chat.postMessage", 3)
    assert posts[1]["thread_ts"] == first["ts"]
    assert responder.calls[1] == ("and which are in clinical trials?", [Turn(TME, build_answer().text)])
    assert responder.calls[2][1] == []  # a new thread starts afresh


def test_slack_redelivered_event_is_answered_once(start_bot, slack, responder) -> None:
    bot = start_bot(responder)
    event = mention(TME)
    assert bot.event(event, event_id="Ev0REDELIVER")[0] == 200
    assert bot.event(event, event_id="Ev0REDELIVER", headers={"X-Slack-Retry-Num": "1",
                                                              "X-Slack-Retry-Reason": "http_timeout"})[0] == 200
    bot.event(direct("sentinel question"))
    slack.wait_for("chat.postMessage", 2)
    assert sorted(q for q, _ in responder.calls) == [TME, "sentinel question"]
    assert len(slack.calls("chat.postMessage")) == 2


def test_slack_unlisted_channel_is_refused_privately_without_retrieval(start_bot, slack, responder) -> None:
    bot = start_bot(responder, slack_allowed_channels=[HELPDESK])
    event = mention(TME, channel="C0ELSEWHERE")
    bot.event(event)
    [whisper] = slack.wait_for("chat.postEphemeral")
    assert whisper["user"] == ASKER and whisper["channel"] == "C0ELSEWHERE" and "administrator" in whisper["text"]
    assert responder.calls == []
    assert not slack.calls("chat.postMessage") and not slack.calls("reactions.add")


def test_slack_rate_limited_user_gets_a_friendly_private_message(start_bot, slack, responder) -> None:
    bot = start_bot(responder, rate_limit_questions=1)
    bot.event(mention(TME))
    bot.event(mention("Another question?"))
    [whisper] = slack.wait_for("chat.postEphemeral")
    slack.wait_for("chat.postMessage")
    assert "wait" in whisper["text"] and whisper["user"] == ASKER
    assert len(responder.calls) == 1


def test_slack_failure_gets_a_short_apology_in_the_thread(start_bot, slack, caplog) -> None:
    def broken(question: str):
        raise RuntimeError("index unavailable")

    bot = start_bot(RecordingResponder(broken))
    event = mention(TME)
    bot.event(event)
    [post] = slack.wait_for("chat.postMessage")
    assert post["thread_ts"] == event["ts"] and post["text"].startswith("Sorry, something went wrong")
    assert slack.bot_token not in caplog.text and SECRET not in caplog.text


def test_slack_rejected_post_is_logged_and_the_asker_told(start_bot, slack, responder, caplog) -> None:
    bot = start_bot(responder)
    slack.fail_next("chat.postMessage", "invalid_blocks")
    bot.event(mention(TME))
    [apology] = slack.wait_for("chat.postEphemeral")
    assert apology["user"] == ASKER and apology["text"].startswith("Sorry, something went wrong")
    [failure] = [r for r in caplog.records if r.name == "bot.slack_adapter" and r.levelname == "ERROR"]
    assert "app_mention" in failure.getMessage() and HELPDESK in failure.getMessage()
    assert slack.bot_token not in caplog.text and SECRET not in caplog.text


def test_slack_rate_limited_post_is_retried_and_answered_once(start_bot, slack, responder) -> None:
    bot = start_bot(responder)
    slack.fail_next("chat.postMessage", "ratelimited", retry_after=1)
    bot.event(mention(TME))
    slack.wait_for("chat.postMessage", timeout=15)
    attempts = slack.calls("chat.postMessage")
    assert [c.ok for c in attempts] == [False, True]
    assert attempts[0].args["text"] == attempts[1].args["text"]
    assert len(responder.calls) == 1


# --- direct messages and bots -------------------------------------------------------------------------


def test_slack_direct_messages_are_questions_answered_where_asked(start_bot, slack, responder) -> None:
    bot = start_bot(responder)
    bot.event(direct(TME))
    [top] = slack.wait_for("chat.postMessage")
    assert top["channel"] == "D0ASKER" and "thread_ts" not in top
    bot.event(direct("and in trials?"))  # the direct-message channel is one conversation
    slack.wait_for("chat.postMessage", 2)
    bot.event(direct("what about fibroblasts?", thread_ts="1700000500.000001"))
    posts = slack.wait_for("chat.postMessage", 3)
    assert "thread_ts" not in posts[1] and posts[2]["thread_ts"] == "1700000500.000001"
    histories = {q: h for q, h in responder.calls}
    assert [t.question for t in histories["and in trials?"]] == [TME]
    assert histories["what about fibroblasts?"] == []


def test_slack_ignores_its_own_and_other_bots_messages(start_bot, slack, responder) -> None:
    bot = start_bot(responder)
    bot.event(direct("an answer the bot posted", user=slack.bot_user_id, bot_id=slack.bot_id))
    bot.event(direct("another bot talking", user="U0OTHERBOT", bot_id="B0OTHER", subtype="bot_message"))
    bot.event(direct("an edit", subtype="message_changed"))
    bot.event(direct("sentinel question"))
    slack.wait_for("chat.postMessage")
    assert [q for q, _ in responder.calls] == ["sentinel question"]
    assert len(slack.calls("chat.postMessage")) == 1


# --- the /ask command ---------------------------------------------------------------------------------


def test_slack_ask_command_is_acknowledged_then_answered_in_the_channel(start_bot, slack) -> None:
    acknowledged = threading.Event()
    responder = RecordingResponder(lambda q: build_answer(question=q) if acknowledged.wait(10) else None)
    bot = start_bot(responder)
    started = time.monotonic()
    status, body = bot.command(TME)
    assert status == 200 and time.monotonic() - started < 3
    assert json.loads(body)["response_type"] == "in_channel"  # the question shows in the channel
    acknowledged.set()  # only now may the answer be written
    [answer] = slack.wait_for("response_url")
    assert answer["response_type"] == "in_channel" and "[1]" in texts(answer["blocks"])
    assert responder.calls[0][0] == TME


def test_slack_ask_command_in_unlisted_channel_is_refused_privately(start_bot, slack, responder) -> None:
    bot = start_bot(responder, slack_allowed_channels=[HELPDESK])
    status, body = bot.command(TME, channel="C0ELSEWHERE")
    assert status == 200 and "in_channel" not in body
    [refusal] = slack.wait_for("response_url")
    assert refusal["response_type"] == "ephemeral" and "administrator" in refusal["text"]
    assert responder.calls == []


# --- buttons ------------------------------------------------------------------------------------------


def test_slack_vote_buttons_are_stored_and_acknowledged(start_bot, slack, responder) -> None:
    bot = start_bot(responder)
    event = mention(TME)
    bot.event(event)
    [post] = slack.wait_for("chat.postMessage")
    assert bot.click(render.ACTION_VOTE_DOWN, answer_id(post), channel=HELPDESK, thread_ts=event["ts"])[0] == 200
    [thanks] = slack.wait_for("response_url")
    assert thanks["response_type"] == "ephemeral" and "👎" in thanks["text"]
    bot.click(render.ACTION_VOTE_UP, answer_id(post), channel=HELPDESK, thread_ts=event["ts"], user="U0OTHER")
    slack.wait_for("response_url", 2)
    [stats] = bot.core.feedback.stats().platforms
    assert (stats.platform, stats.up, stats.down) == ("slack", 1, 1)
    assert bot.core.feedback.stats().most_down_voted[0].answer_id == answer_id(post)


def test_slack_vote_without_response_url_thanks_through_post_ephemeral(start_bot, slack, responder) -> None:
    bot = start_bot(responder)
    event = mention(TME)
    bot.event(event)
    [post] = slack.wait_for("chat.postMessage")
    bot.click(render.ACTION_VOTE_UP, answer_id(post), channel=HELPDESK, thread_ts=event["ts"], response_url=False)
    [thanks] = slack.wait_for("chat.postEphemeral")
    assert (thanks["channel"], thanks["user"]) == (HELPDESK, ASKER) and "👍" in thanks["text"]
    assert bot.core.feedback.stats().platforms[0].up == 1


def test_slack_forged_or_foreign_clicks_are_refused_and_store_nothing(start_bot, slack, responder) -> None:
    bot = start_bot(responder, slack_allowed_channels=[HELPDESK, "C0OTHER"])
    event = mention(TME)
    bot.event(event)
    [post] = slack.wait_for("chat.postMessage")
    n = answer_id(post)
    private = asyncio.run(bot.core.handle(IncomingMessage("telegram", "1001", "1001", "Ada's private question?",
                                                          "1001")))
    clicks = [
        {"answer_id": n, "channel": HELPDESK, "team": "T0FOREIGN"},  # another workspace
        {"answer_id": n, "channel": "C0OTHER"},  # another channel the bot serves
        {"answer_id": n, "channel": "C0ELSEWHERE", "user": "U0STRANGER"},  # unlisted channel and user
        {"answer_id": private.answer_id, "channel": HELPDESK},  # a Telegram user's private answer
        {"answer_id": 424242, "channel": HELPDESK},  # unknown
        {"answer_id": "9" * 40, "channel": HELPDESK},  # out of range
        {"answer_id": "1 OR 1=1", "channel": HELPDESK},  # not a number
    ]
    actions = (render.ACTION_SOURCES, render.ACTION_VOTE_UP, render.ACTION_VOTE_DOWN)
    for click in clicks:
        for action in actions:
            assert bot.click(action, thread_ts=event["ts"], **click)[0] == 200
    refusals = slack.wait_for("response_url", len(clicks) * len(actions))
    assert {(r["response_type"], r["text"]) for r in refusals} == {("ephemeral", UNAVAILABLE_TEXT)}
    assert all("blocks" not in r for r in refusals)
    time.sleep(0.2)
    assert len(slack.calls("chat.postMessage")) == 1  # the answer itself, nothing since
    assert [(p.platform, p.up, p.down) for p in bot.core.feedback.stats().platforms] == [
        ("slack", 0, 0), ("telegram", 0, 0)]


def test_slack_show_sources_posts_the_quoted_passages_in_the_thread(start_bot, slack, seeded_pipeline) -> None:
    bot = start_bot(PipelineResponder(seeded_pipeline))
    event = mention(TME)
    bot.event(event)
    [post] = slack.wait_for("chat.postMessage")
    bot.click(render.ACTION_SOURCES, answer_id(post), channel=HELPDESK, thread_ts=event["ts"])
    sources = slack.wait_for("chat.postMessage", 2)[1]
    assert sources["thread_ts"] == event["ts"]
    stored = bot.core.feedback.get_answer(answer_id(post))
    shown = texts(sources["blocks"])
    assert shown.startswith("[1] ") and stored.citations[0].quote[:40] in shown.replace("&amp;", "&")


def test_slack_sources_never_show_a_removed_documents_quotes(start_bot, slack, settings, tmp_path) -> None:
    docs = tmp_path / "docs"
    make_markdown(docs / "fibroblasts.md", [("Fibroblasts", [
        "Cancer-associated fibroblasts are a main therapeutic target in the tumour microenvironment."])])
    make_markdown(docs / "checkpoints.md", [("Checkpoints", [
        "Immune checkpoints such as PD-1 are a main therapeutic target in the tumour microenvironment."])])
    pipeline = Pipeline(settings)
    pipeline.index([docs])
    bot = start_bot(PipelineResponder(pipeline))
    event = mention("What are the main therapeutic targets in the tumour microenvironment?")
    bot.event(event)
    [post] = slack.wait_for("chat.postMessage")
    stored = bot.core.feedback.get_answer(answer_id(post))
    assert {c.source for c in stored.citations} == {"fibroblasts.md", "checkpoints.md"}

    (docs / "fibroblasts.md").unlink()
    assert pipeline.index([docs]).removed == ["fibroblasts.md"]
    restarted = start_bot(PipelineResponder(Pipeline(settings)))  # the bot restarted on the same database
    for shown_by in (bot, restarted):
        shown_by.click(render.ACTION_SOURCES, answer_id(post), channel=HELPDESK, thread_ts=event["ts"])
    posts = slack.wait_for("chat.postMessage", 3)[1:]
    for sources in posts:
        shown = texts(sources["blocks"])
        assert "PD-1" in shown and "fibroblasts" not in shown.lower()
        assert "1 quoted passage is no longer in the index." in shown


# --- Socket Mode and the command line -----------------------------------------------------------------


def test_slack_socket_mode_envelope_is_acked_and_answered_in_thread(slack, settings, seeded_pipeline) -> None:
    bot_settings = slack_settings(slack, settings)
    core = ChatCore(PipelineResponder(seeded_pipeline), bot_settings, FeedbackStore.open(settings))
    handler = slack_adapter.socket_mode_handler(slack_adapter.build_app(core, bot_settings), bot_settings)
    handler.connect()
    try:
        event = mention(TME)
        envelope_id = slack.push(event_callback(event))
        assert slack.wait_for_ack(envelope_id)["envelope_id"] == envelope_id
        [post] = slack.wait_for("chat.postMessage")
        assert post["thread_ts"] == event["ts"] and "[1]" in texts(post["blocks"])
    finally:
        handler.close()
        core.feedback.close()


@pytest.mark.parametrize("http", [False, True], ids=["socket-mode", "http"])
def test_slack_command_runs_the_bot(slack, tmp_path, http) -> None:
    port = _free_port()
    env = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token, "SLACK_API_URL": slack.api_url,
           "SLACK_SIGNING_SECRET": SECRET, "CITEBOT_SLACK_HTTP_PORT": str(port),
           "CITEBOT_DATA_DIR": str(tmp_path / "data")}
    command = [str(Path(sys.executable).with_name("citebot")), "slack", *(["--http"] if http else [])]
    event = mention("What does the empty index say?")
    with subprocess.Popen(command, cwd=tmp_path, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as process:
        try:
            if http:
                _deliver_once_listening(Bot(f"http://127.0.0.1:{port}/slack/events", slack), event)
            else:
                slack.wait_for_ack(slack.push(event_callback(event), timeout=60))
            [post] = slack.wait_for("chat.postMessage", timeout=30)
            assert post["thread_ts"] == event["ts"] and "Not found in the documents" in texts(post["blocks"])
        finally:
            process.terminate()
            process.wait(10)


def _deliver_once_listening(bot: Bot, event: dict[str, Any], timeout: float = 60.0) -> None:
    """Deliver ``event`` as soon as the bot's HTTP server accepts connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            assert bot.event(event)[0] == 200
            return
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_slack_command_explains_missing_tokens(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # away from a developer's .env
    result = CliRunner().invoke(cli, ["slack", "--http"], env={"SLACK_BOT_TOKEN": "xoxb-1"})
    assert result.exit_code == 1
    assert result.output == "Error: SLACK_SIGNING_SECRET is not set (see the Slack section of the README)\n"


def test_slack_channels_of_two_spaces_each_cite_only_their_folder(start_bot, slack, team_pipeline, tmp_path) -> None:
    spaces = tmp_path / "spaces.toml"
    spaces.write_text('[spaces.hr]\nfolders = ["hr"]\nslack_channels = ["C0HR"]\n\n'
                      '[spaces.finance]\nfolders = ["finance"]\nslack_channels = ["C0FIN"]\n')
    bot = start_bot(PipelineResponder(team_pipeline), spaces_file=spaces)
    question = "How many days of annual leave do employees get?"
    events = {channel: mention(question, channel=channel) for channel in ("C0HR", "C0FIN", "C0OTHER")}
    for event in events.values():
        bot.event(event)
    posts = {p["channel"]: p for p in slack.wait_for("chat.postMessage", 3)}
    stored = {channel: bot.core.feedback.get_answer(answer_id(post)) for channel, post in posts.items()}
    assert "30 days" in texts(posts["C0HR"]["blocks"]) and "25 days" in texts(posts["C0FIN"]["blocks"])
    assert {c.source.split("/")[0] for c in stored["C0HR"].citations} == {"hr"}
    assert {c.source.split("/")[0] for c in stored["C0FIN"].citations} == {"finance"}
    assert "HR policy" not in texts(posts["C0FIN"]["blocks"]) and "Finance" not in texts(posts["C0HR"]["blocks"])
    # No [default] folders: the unmapped channel's default space is every document.
    assert stored["C0OTHER"].space == "default" and stored["C0OTHER"].citations
    # The hr answer's Sources button clicked in the finance channel: refused, nothing of it shown.
    bot.click(render.ACTION_SOURCES, answer_id(posts["C0HR"]), channel="C0FIN", thread_ts=events["C0FIN"]["ts"])
    [refusal] = slack.wait_for("response_url")
    assert (refusal["response_type"], refusal["text"]) == ("ephemeral", UNAVAILABLE_TEXT)
    bot.click(render.ACTION_SOURCES, answer_id(posts["C0HR"]), channel="C0HR", thread_ts=events["C0HR"]["ts"])
    shown = texts(slack.wait_for("chat.postMessage", 4)[3]["blocks"])
    assert "HR policy" in shown and "Finance" not in shown
