"""The Slack front end: slack-bolt listeners between Slack and the shared chat core.

    check_settings(settings, http=False)         # the tokens the mode needs, before anything slow
    app = build_app(core, settings)              # the Bolt app, every listener registered
    run(core, settings, http=False)              # Socket Mode (no public URL), or HTTP mode (bot.slack_http)

What users see:
- a mention in a channel gets 👀 at once, then the answer in the thread of the asking message; mentions in that
  thread are follow-ups that see the thread's history (conversation ``channel:thread_ts``);
- every direct message is a question: top-level ones are answered in the conversation, whose history is the
  whole direct-message channel; replies in a thread are answered in that thread, with its history;
- ``/ask QUESTION`` is acknowledged at once (the command shows in the channel), then answered for the channel
  to see: a help desk's answers are shared knowledge, and a visible answer can carry buttons and a thread;
- refusals, rate limits and usage hints go only to the asker (ephemeral); a failure gets a short apology;
- with a help desk set up, every answer has "Ask a person": the question, the answer and who asked go to the
  help-desk channel with a link to the conversation (``chat.getPermalink``); a listed responder's reply in that
  post's thread goes back to the asker's thread, attributed, and becomes a source (``ChatCore.relay``) until a
  responder presses Withdraw under the bot's confirmation;
- a file shared in a direct message or with a mention is indexed when a listed admin shared it, and a weekly
  digest of the unanswered questions can go to the help-desk channel (``bot.slack_helpdesk``);
- a language-model answer to a mention or direct message is shown while it is written: its first words are
  posted where the answer goes, updated about once a second (``bot.streaming``), and that message is then
  updated into the verified answer with its sources and buttons. ``/ask`` answers arrive complete.

Slack re-delivers an event it thinks was missed with the same ``event_id``: seen ids are remembered (a bounded
set) and a re-delivery is acknowledged without a second answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from pydantic import SecretStr
from slack_bolt import App, BoltContext, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot import render, slack_helpdesk
from bot.core import ChatCore, IncomingMessage, Reply
from bot.settings import BotSettings, reveal
from bot.slack_http import http_server
from bot.streaming import LivePreview
from bot.texts import ERROR_TEXT
from bot.types import Escalation, StoredAnswer
from retrieval import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
ACK_REACTION = "eyes"
SEEN_EVENTS = 10_000  # event ids remembered against re-deliveries; Slack retries within minutes

# Message subtypes a person sends with a question in it (a reply also sent to the channel, a file with text).
_PERSON_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}


def build_app(core: ChatCore, settings: BotSettings) -> App:
    """The Bolt app answering through ``core``, its Web API client at ``SLACK_API_URL``."""
    # Slack answers 429 with Retry-After when the bot posts too fast: wait and post once more.
    client = _client(settings, retry_handlers=[ConnectionErrorRetryHandler(),
                                               RateLimitErrorRetryHandler(max_retry_count=2)])
    # The token reaches Bolt through the client; token verification waits for the first event.
    app = App(client=client, signing_secret=reveal(settings.slack_signing_secret), token_verification_enabled=False,
              process_before_response=False)
    register(app, core)
    return app


def _client(settings: BotSettings, **options: Any) -> WebClient:
    """A Web API client with ``SLACK_BOT_TOKEN`` at ``SLACK_API_URL``."""
    base_url = settings.slack_api_url or DEFAULT_API_URL
    return WebClient(token=_secret(settings.slack_bot_token, "SLACK_BOT_TOKEN"),
                     base_url=base_url if base_url.endswith("/") else base_url + "/", **options)


def register(app: App, core: ChatCore) -> None:
    """Register every listener of the Slack bot on ``app``."""
    listeners = _Listeners(core)
    app.use(listeners.skip_redelivery)
    app.event("app_mention")(listeners.answer_mention)
    app.event("message")(listeners.answer_direct_message)
    app.command("/ask")(ack=listeners.ack_question, lazy=[listeners.answer_question])
    app.action(render.ACTION_SOURCES)(listeners.show_sources)
    app.action(render.ACTION_VOTE_UP)(listeners.record_vote)
    app.action(render.ACTION_VOTE_DOWN)(listeners.record_vote)
    app.action(render.ACTION_ASK_PERSON)(listeners.ask_person)
    app.action(render.ACTION_WITHDRAW)(listeners.withdraw)
    app.error(listeners.log_error)


def socket_mode_handler(app: App, settings: BotSettings) -> SocketModeHandler:
    """Socket Mode for ``app`` with ``SLACK_APP_TOKEN``; ``connect()`` or ``start()`` it."""
    return SocketModeHandler(app, _secret(settings.slack_app_token, "SLACK_APP_TOKEN"))


def check_settings(settings: BotSettings, *, http: bool) -> None:
    """Raise ``ConfigError`` when a token or secret the mode needs is missing."""
    _secret(settings.slack_bot_token, "SLACK_BOT_TOKEN")
    if http:
        _secret(settings.slack_signing_secret, "SLACK_SIGNING_SECRET")
    else:
        _secret(settings.slack_app_token, "SLACK_APP_TOKEN")


def check_connection(settings: BotSettings) -> None:
    """Raise ``ConfigError`` with one line when Slack rejects ``SLACK_BOT_TOKEN`` or cannot be reached
    (``auth.test``), before the index is opened."""
    quiet = logging.getLogger(f"{__name__}.check")
    quiet.setLevel(logging.CRITICAL)  # slack_sdk logs a failed request at ERROR; the one line below says it
    client = _client(settings, retry_handlers=[], logger=quiet)
    try:
        client.auth_test()
    except SlackApiError as exc:
        raise ConfigError(f"Slack rejected SLACK_BOT_TOKEN ({exc.response.get('error')}): copy the Bot User OAuth "
                          "Token (xoxb-...) again from the app's OAuth & Permissions page") from None
    except OSError as exc:  # URLError, refused connections, timeouts, unknown host names
        raise ConfigError(f"cannot reach Slack at {client.base_url} ({getattr(exc, 'reason', exc)}): check the "
                          "network, or SLACK_API_URL") from None


def run(core: ChatCore, settings: BotSettings, *, http: bool = False) -> None:
    """Serve ``core`` until interrupted: Socket Mode, or HTTP mode (``bot.slack_http``) with ``http``."""
    check_settings(settings, http=http)
    app = build_app(core, settings)
    try:
        with _digest(app, core, settings):
            if http:
                http_server(app, settings).run()
            else:
                socket_mode_handler(app, settings).start()
    except KeyboardInterrupt:
        logger.info("Slack bot stopped")


@contextmanager
def running(settings: BotSettings, core: ChatCore, *, http: bool = False) -> Iterator[None]:
    """The Slack bot answering from background threads while the block runs (``citebot serve``)."""
    check_settings(settings, http=http)
    app = build_app(core, settings)
    with _digest(app, core, settings):
        if not http:
            handler = socket_mode_handler(app, settings)
            handler.connect()
            try:
                yield
            finally:
                handler.close()
            return
        server = http_server(app, settings)
        thread = threading.Thread(target=server.run, name="citebot-slack-http", daemon=True)
        thread.start()
        try:
            yield
        finally:
            server.should_exit = True
            thread.join(timeout=10)


@contextmanager
def _digest(app: App, core: ChatCore, settings: BotSettings) -> Iterator[None]:
    """The weekly digest posted from its own thread while the block runs, when it is turned on."""
    poster = slack_helpdesk.DigestPoster.configured(core, app.client, settings)
    if poster is None:
        yield
        return
    poster.start()
    try:
        yield
    finally:
        poster.stop()


class _Listeners:
    """The Bolt listeners, sharing the chat core and the set of events already seen."""

    def __init__(self, core: ChatCore) -> None:
        self.core = core
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def skip_redelivery(self, body: dict[str, Any], next: Callable[[], None]) -> BoltResponse | None:
        """Acknowledge an event Slack delivers again (same ``event_id``) without handling it twice."""
        event_id = body.get("event_id")
        if event_id:
            with self._lock:
                if event_id in self._seen:
                    logger.info("ignored re-delivered Slack event %s", event_id)
                    return BoltResponse(status=200, body="")
                self._seen[event_id] = None
                if len(self._seen) > SEEN_EVENTS:
                    self._seen.popitem(last=False)
        return next()

    def answer_mention(self, event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        """Answer a mention in the thread of the asking message; in an escalation's thread it is a reply."""
        if event.get("thread_ts") and self.core.escalation_at("slack", event["channel"], event["thread_ts"]):
            return  # its message event relays it
        if self._person(event) and slack_helpdesk.ingest_files(self.core, event, context, client):
            return
        thread_ts = event.get("thread_ts") or event["ts"]
        self._answer(event, context, client, thread_ts=thread_ts, conversation=f"{event['channel']}:{thread_ts}")

    def answer_direct_message(self, event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        """Answer a direct message where it was sent: in the conversation, or in its thread.

        A reply in an escalation's thread of the help-desk channel is relayed instead.
        """
        if self._relay(event, context, client) or event.get("channel_type") != "im":
            return
        if self._person(event) and slack_helpdesk.ingest_files(self.core, event, context, client):
            return
        thread_ts = event.get("thread_ts")
        conversation = f"{event['channel']}:{thread_ts}" if thread_ts else event["channel"]
        self._answer(event, context, client, thread_ts=thread_ts, conversation=conversation)

    def ack_question(self, ack: Callable[..., Any], command: dict[str, Any], context: BoltContext) -> None:
        """Acknowledge ``/ask`` at once, showing the command in the channel when it will be answered there."""
        msg = _command_message(command, context)
        if msg.text.strip() and self.core.admit(msg) is None:
            ack(response_type="in_channel")
        else:
            ack()

    def answer_question(self, command: dict[str, Any], context: BoltContext, respond: Callable[..., Any]) -> None:
        """Answer ``/ask`` for the channel to see."""
        reply = asyncio.run(self.core.handle(_command_message(command, context)))
        _show(reply, post=partial(respond, response_type="in_channel", replace_original=False, unfurl_links=False,
                                  unfurl_media=False),
              whisper=partial(respond, response_type="ephemeral", replace_original=False))

    def show_sources(self, ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any],
                     context: BoltContext, client: WebClient, respond: Callable[..., Any]) -> None:
        """Post the quoted passages of an answer in its thread."""
        ack()
        reply = asyncio.run(self.core.sources(action.get("value"), _clicker(body, context)))
        whisper = partial(_whisper, body, client, respond)
        if reply.stored is None:
            whisper(text=reply.text)
            return
        text, blocks = render.sources_blocks_slack(reply.stored)
        container = body.get("container", {})
        thread_ts = container.get("thread_ts") or body.get("message", {}).get("thread_ts") or container["message_ts"]
        try:
            client.chat_postMessage(channel=body["channel"]["id"], thread_ts=thread_ts, text=text, blocks=blocks,
                                    unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            # An /ask answer in a channel the bot is not a member of: only the response_url reaches it.
            logger.info("could not post sources in the thread (%s); showing them to the user only",
                        exc.response.get("error"))
            whisper(text=text, blocks=blocks)

    def record_vote(self, ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any],
                    context: BoltContext, client: WebClient, respond: Callable[..., Any]) -> None:
        """Store a 👍 / 👎 click and thank the voter privately."""
        ack()
        vote = 1 if action["action_id"] == render.ACTION_VOTE_UP else -1
        reply = asyncio.run(self.core.vote(action.get("value"), _clicker(body, context), vote))
        _whisper(body, client, respond, text=reply.text)

    def ask_person(self, ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any],
                   context: BoltContext, client: WebClient, respond: Callable[..., Any]) -> None:
        """Post the question and its answer to the help-desk channel; tell the clicker privately."""
        ack()
        who = _clicker(body, context)
        container = body.get("container", {})
        message_ts = container.get("message_ts", "")
        thread_ts = container.get("thread_ts") or body.get("message", {}).get("thread_ts") or message_ts
        asker = f"<@{who.user_id}>"

        async def post(stored: StoredAnswer, helpdesk: str) -> tuple[str, str]:
            link = await asyncio.to_thread(_permalink, client, who.chat_id, message_ts)
            text = render.escalation_text(stored, asker=asker, link=link, slack=True)
            response = await asyncio.to_thread(client.chat_postMessage, channel=helpdesk, text=text,
                                               unfurl_links=False, unfurl_media=False)
            return str(response["ts"]), link

        reply = asyncio.run(self.core.escalate(action.get("value"), who, asker_name=asker, reply_to=thread_ts,
                                               post=post))
        _whisper(body, client, respond, text=reply.text)

    def withdraw(self, ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any],
                 context: BoltContext, client: WebClient, respond: Callable[..., Any]) -> None:
        """A responder's Withdraw click: the kept reply is no source any more; its confirmation says so."""
        ack()
        reply = asyncio.run(self.core.withdraw(action.get("value"), _clicker(body, context)))
        message_ts = (body.get("container") or {}).get("message_ts")
        if reply.kind == "withdrawn" and message_ts:
            client.chat_update(channel=body["channel"]["id"], ts=message_ts, text=reply.text, blocks=[])
        else:
            _whisper(body, client, respond, text=reply.text)

    def log_error(self, error: Exception, body: dict[str, Any], client: WebClient) -> None:
        """Log a failed listener with what it handled (never the payload: it may carry tokens); apologise."""
        event = body.get("event") or {}
        channel = event.get("channel") or body.get("channel_id") or (body.get("channel") or {}).get("id")
        user = event.get("user") or body.get("user_id") or (body.get("user") or {}).get("id")
        logger.error("Slack %s failed (team %s, channel %s, user %s): %s",
                     event.get("type") or body.get("command") or body.get("type"), body.get("team_id"), channel,
                     user, error, exc_info=error)
        if channel and user:
            try:
                client.chat_postEphemeral(channel=channel, user=user, text=ERROR_TEXT)
            except SlackApiError as exc:
                logger.warning("could not tell %s in %s about it: %s", user, channel, exc.response.get("error"))

    def _answer(self, event: dict[str, Any], context: BoltContext, client: WebClient, *, thread_ts: str | None,
                conversation: str) -> None:
        """Acknowledge a person's question with 👀, answer it through the core, post the reply."""
        if not self._person(event):
            return
        channel, user = event["channel"], event.get("user", "")
        question = _question(event.get("text", ""), context.bot_user_id)
        msg = IncomingMessage("slack", conversation, user, question, channel, context.team_id or "")
        if self.core.admit(msg) is None:  # a channel the bot does not serve sees no reaction
            _react(client, channel, event["ts"])
        draft = _Draft(client, channel, thread_ts)
        reply = asyncio.run(self._handle_streaming(msg, draft))
        _show(reply, post=draft.replace if draft.ts else draft.post,
              whisper=lambda text: client.chat_postEphemeral(channel=channel, user=user, text=text,
                                                             thread_ts=thread_ts))

    @staticmethod
    def _person(event: dict[str, Any]) -> bool:
        """Whether a person (not a bot) wrote the message, with a question or a file in it."""
        return not event.get("bot_id") and event.get("subtype") in _PERSON_SUBTYPES

    def _relay(self, event: dict[str, Any], context: BoltContext, client: WebClient) -> bool:
        """Pass a reply in an escalation's thread on to the asker; whether the message was such a reply."""
        channel, thread_ts = event.get("channel", ""), event.get("thread_ts")
        if (not thread_ts or not self._person(event)
                or self.core.escalation_at("slack", channel, thread_ts) is None):
            return False
        user = event.get("user", "")
        msg = IncomingMessage("slack", f"{channel}:{thread_ts}", user, _question(event.get("text", ""),
                              context.bot_user_id), channel, context.team_id or "")

        async def post(escalation: Escalation, text: str) -> None:
            await asyncio.to_thread(client.chat_postMessage, channel=escalation.reply_chat,
                                    thread_ts=escalation.reply_to, text=render.slack_plain(text),
                                    unfurl_links=False, unfurl_media=False)

        reply = asyncio.run(self.core.relay(msg, thread_ts, responder_name=_display_name(client, user),
                                            reply_ref=event.get("ts", ""), post=post))
        if reply is not None and reply.kept is not None:
            text, blocks = render.kept_blocks_slack(reply.text, reply.kept)
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)
        elif reply is not None and reply.text:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=render.slack_plain(reply.text))
        return reply is not None

    async def _handle_streaming(self, msg: IncomingMessage, draft: _Draft) -> Reply:
        """The core's reply, the answer shown in ``draft`` while a language model writes it."""
        async with LivePreview(draft.show) as preview:
            return await self.core.handle(msg, on_sentence=preview.on_sentence)


class _Draft:
    """The message in the asker's thread an answer is written into while the language model streams it."""

    def __init__(self, client: WebClient, channel: str, thread_ts: str | None) -> None:
        self.client, self.channel, self.thread_ts = client, channel, thread_ts
        self.ts: str | None = None  # of the draft, once posted

    async def show(self, text: str) -> None:
        """Post ``text`` as the draft, or update the draft already posted to it."""
        text = render.slack_draft(text)
        if self.ts is None:
            response = await asyncio.to_thread(self.post, text=text)
            self.ts = response["ts"]
        else:
            await asyncio.to_thread(self.client.chat_update, channel=self.channel, ts=self.ts, text=text)

    def post(self, **message: Any) -> Any:
        """A new message in the thread."""
        return self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, unfurl_links=False,
                                            unfurl_media=False, **message)

    def replace(self, **message: Any) -> Any:
        """Update the posted draft into ``message``; a new message when the draft was deleted meanwhile."""
        try:
            return self.client.chat_update(channel=self.channel, ts=self.ts, **message)
        except SlackApiError as exc:
            if exc.response.get("error") != "message_not_found":
                raise
            logger.info("the answer's draft in %s is gone; posting the answer anew", self.channel)
            return self.post(**message)


def _show(reply: Reply, *, post: Callable[..., Any], whisper: Callable[[str], Any]) -> None:
    """An answer (or an apology) for everyone; a refusal, rate limit or usage hint only for the asker."""
    if reply.answer is not None:
        text, blocks = render.to_slack_blocks(reply.answer, reply.answer_id, ask_person=reply.ask_person)
        post(text=text, blocks=blocks)
    elif reply.kind == "error":
        post(text=reply.text)
    else:
        whisper(reply.text)


def _clicker(body: dict[str, Any], context: BoltContext) -> IncomingMessage:
    """Who clicked a button, and in which channel and workspace, as the core sees it."""
    channel = (body.get("channel") or {}).get("id", "")
    user = (body.get("user") or {}).get("id", "")
    return IncomingMessage("slack", channel, user, "", channel, context.team_id or "")


def _whisper(body: dict[str, Any], client: WebClient, respond: Callable[..., Any], **message: Any) -> None:
    """A message only the clicker sees: through the click's response_url, or chat.postEphemeral without one."""
    if body.get("response_url"):  # Bolt's respond raises without one
        respond(response_type="ephemeral", replace_original=False, **message)
        return
    channel, user = (body.get("channel") or {}).get("id"), (body.get("user") or {}).get("id")
    if channel and user:
        client.chat_postEphemeral(channel=channel, user=user, **message)


def _permalink(client: WebClient, channel: str, ts: str) -> str:
    """A link to the message ``ts`` of ``channel``; "" when Slack gives none (the escalation goes without)."""
    try:
        return str(client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
    except (SlackApiError, KeyError) as exc:
        logger.warning("no permalink for %s in %s: %s", ts, channel, exc)
        return ""


def _display_name(client: WebClient, user: str) -> str:
    """"@name" of a Slack user (``users.info``, needs users:read); "@<user id>" when Slack does not tell."""
    try:
        found = client.users_info(user=user)["user"]
        name = found.get("profile", {}).get("display_name") or found.get("name") or user
    except (SlackApiError, KeyError) as exc:
        logger.warning("no name for Slack user %s: %s", user, exc)
        name = user
    return f"@{name}"


def _react(client: WebClient, channel: str, ts: str) -> None:
    """Add 👀 to the asking message; a failure (missing scope, already reacted) never costs the answer."""
    try:
        client.reactions_add(channel=channel, timestamp=ts, name=ACK_REACTION)
    except SlackApiError as exc:
        logger.warning("could not add the %s reaction in %s: %s", ACK_REACTION, channel, exc.response.get("error"))


def _question(text: str, bot_user_id: str | None) -> str:
    """The question in a message: the bot's mention removed, Slack's HTML entities decoded."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    return re.sub("&(?:lt|gt|amp);", lambda m: _ENTITIES[m.group()], text).strip()


def _command_message(command: dict[str, Any], context: BoltContext) -> IncomingMessage:
    """``/ask``: one conversation per user and channel, so follow-ups by the same person see their history."""
    channel, user = command.get("channel_id", ""), command.get("user_id", "")
    return IncomingMessage("slack", f"{channel}:{user}", user, _question(command.get("text", ""), None), channel,
                           context.team_id or command.get("team_id", ""))


def _secret(value: SecretStr | None, name: str) -> str:
    """The secret's value; ``ConfigError`` naming the setting when it is unset."""
    if not reveal(value):
        raise ConfigError(f"{name} is not set (see the Slack section of the README)")
    return reveal(value)
