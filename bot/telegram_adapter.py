"""Telegram front end: python-telegram-bot's ``Application`` around the chat core.

``build_application(core, settings)`` wires every handler in one block; ``run(application, settings)``
long-polls, or serves a webhook when ``CITEBOT_TELEGRAM_WEBHOOK_URL`` is set. Handlers only translate: a
Telegram message becomes an ``IncomingMessage``, the core's ``Reply`` becomes Telegram HTML through
``bot.render``. In private chats every text message is a question; in groups only a message that mentions
the bot, replies to one of its messages or starts with ``/ask``. Edited messages, channel posts and other
bots' messages are ignored.

With a help desk set up, every answer has "Ask a person": the question, the answer and who asked go to the
help-desk group; a listed responder's reply to that post goes back to the asker's chat, attributed, and
becomes a source (``ChatCore.relay``) until a responder presses Withdraw under the bot's confirmation.

A language-model answer is shown while it is written: its first words arrive as a plain-text reply to the
question, edited about once a second (``bot.streaming``), and that message then becomes the verified answer
with its sources and buttons. Extractive answers are sent once, complete.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import render
from bot.core import ChatCore, IncomingMessage, Reply
from bot.settings import BotSettings, reveal
from bot.streaming import LivePreview
from bot.texts import (
    ASK_PERSON_BUTTON,
    ASK_USAGE,
    COMMAND_USAGE,
    HELP_TEXT,
    INDEXED_EXAMPLES,
    NOTHING_INDEXED,
    START_TEXT,
    TEXT_ONLY,
    UNAVAILABLE_TEXT,
    WITHDRAW_BUTTON,
)
from bot.types import Escalation, StoredAnswer
from retrieval import ConfigError

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
T = TypeVar("T")

PLATFORM = "telegram"
# Edits and channel posts are not even fetched: answering an edit would answer the same question twice.
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
TYPING_EVERY = 4.0  # seconds; Telegram shows "typing…" for about 5 s per action
CONCURRENT_UPDATES = 16  # updates handled at once, so one slow question does not hold the others up
MAX_RETRIES = 3  # of a request Telegram refused with 429 retry_after
SERVER_RETRIES = 2  # of a request Telegram's servers failed (5xx) or that could not reach them
SERVER_RETRY_DELAY = 1.0  # seconds before the first of those retries, doubled for each next one
HELP_TITLES = 5  # document titles /help lists

COMMANDS = [
    BotCommand("ask", "Ask a question about the documents"),
    BotCommand("help", "How to ask, and which documents I know"),
]

_CORE = "citebot_core"  # bot_data key
_REFUSED = "citebot_refused"  # chat_data key: this chat has had its one refusal
_SOURCES = re.compile(r"src:(\d+)(?::(\d{1,6}))?")  # "src:<answer>" opens the sources, "src:<answer>:<page>" pages
_VOTE = re.compile(r"vote:(\d+):(-?1)")
_ASK = re.compile(r"ask:(\d+)")
_FORGET = re.compile(r"forget:(\d+)")
_TAG = re.compile(r"<[^>]*>")  # document text is escaped, so every tag in our HTML is our own markup
_MARKUP_ERROR = re.compile(r"pars|entit|tag", re.IGNORECASE)
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class RetryingRateLimiter(AIORateLimiter):
    """PTB's rate limiter, which waits out 429 ``retry_after``, also retrying server errors (5xx, no route).

    Timeouts are not retried: the request may have arrived, and a retry would send the answer twice.
    """

    async def process_request(self, callback: Any, args: Any, kwargs: dict[str, Any], endpoint: str,
                              data: dict[str, Any], rate_limit_args: int | None) -> Any:
        attempt = 0
        while True:
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
            except NetworkError as exc:
                # Subclasses are decided answers (BadRequest) or ambiguous ones (TimedOut).
                if type(exc) is not NetworkError or attempt == SERVER_RETRIES:
                    raise
                delay = SERVER_RETRY_DELAY * 2**attempt
                attempt += 1
                logger.warning("Telegram %s failed (%s); retry %d of %d in %g s", endpoint, exc.message, attempt,
                               SERVER_RETRIES, delay)
                await asyncio.sleep(delay)


def build_application(core: ChatCore, settings: BotSettings) -> Application:
    """The bot: every handler and the error handler wired to ``core``; serve it with ``run``."""
    token = reveal(settings.telegram_bot_token)
    if not token:
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put its token in .env")
    builder = (
        ApplicationBuilder()
        .token(token)
        .rate_limiter(RetryingRateLimiter(max_retries=MAX_RETRIES))
        .concurrent_updates(CONCURRENT_UPDATES)
        .post_init(announce)
    )
    if settings.telegram_base_url:
        api, files = _api_urls(settings.telegram_base_url)
        builder = builder.base_url(api).base_file_url(files)
    application = builder.build()
    application.bot_data[_CORE] = core

    new, private = filters.UpdateType.MESSAGE, filters.ChatType.PRIVATE
    application.add_handlers([
        CommandHandler("start", start, filters=new),
        CommandHandler("help", show_help, filters=new),
        CommandHandler("ask", ask, filters=new),
        MessageHandler(new & filters.TEXT & ~filters.COMMAND, answer_message),
        MessageHandler(new & private & filters.COMMAND, unknown_command),
        MessageHandler(new & private & filters.ATTACHMENT, reject_non_text),
        CallbackQueryHandler(show_sources, pattern=_SOURCES),
        CallbackQueryHandler(vote, pattern=_VOTE),
        CallbackQueryHandler(ask_person, pattern=_ASK),
        CallbackQueryHandler(withdraw, pattern=_FORGET),
        CallbackQueryHandler(expire_button),
    ])
    application.add_error_handler(log_error)
    return application


def webhook_options(settings: BotSettings) -> dict[str, Any]:
    """``run_webhook`` arguments: the local address to bind, the path of the public URL, the secret to check."""
    url = settings.telegram_webhook_url or ""
    secret = settings.telegram_webhook_secret
    return {
        "listen": settings.telegram_listen_host,
        "port": settings.telegram_listen_port,
        "url_path": urlsplit(url).path.strip("/"),
        "webhook_url": url,
        "secret_token": reveal(secret) or None,
        "allowed_updates": ALLOWED_UPDATES,
    }


def run(application: Application, settings: BotSettings) -> None:
    """Serve until interrupted: long polling, or a webhook when ``CITEBOT_TELEGRAM_WEBHOOK_URL`` is set."""
    asyncio.run(_check_token(application.bot))
    if settings.telegram_webhook_url:
        application.run_webhook(**webhook_options(settings))
    else:
        application.run_polling(allowed_updates=ALLOWED_UPDATES)


async def _check_token(bot: Bot) -> None:
    """Fail with a clear error when Telegram rejects the token.

    Left to ``run_polling``, a rejected token is logged by python-telegram-bot with the token in the message.
    """
    try:
        async with bot:
            pass
    except InvalidToken:
        raise ConfigError("Telegram rejected TELEGRAM_BOT_TOKEN: check it with @BotFather") from None


async def announce(application: Application) -> None:
    """Register the command menu and log which bot is running (post-init hook)."""
    try:
        await application.bot.set_my_commands(COMMANDS)
    except TelegramError as exc:
        logger.warning("could not set the command menu: %s", exc)
    logger.info("Telegram bot @%s is ready", application.bot.username)


# --- handlers ------------------------------------------------------------------------------------------


async def start(update: Update, context: Context) -> None:
    """Greet and explain how to ask."""
    await _send_help(update, context, greeting=True)


async def show_help(update: Update, context: Context) -> None:
    """Explain how to ask and which documents are indexed."""
    await _send_help(update, context, greeting=False)


async def ask(update: Update, context: Context) -> None:
    """Answer the question written after /ask."""
    message = update.effective_message
    parts = (message.text or "").split(maxsplit=1) if message else []
    question = _strip_mention(parts[1], context.bot.username) if len(parts) > 1 else ""
    if question:
        await _answer(update, context, question)
    elif message and await _admitted(update, context):
        await message.reply_text(ASK_USAGE, reply_parameters=_reply_to(message))


async def answer_message(update: Update, context: Context) -> None:
    """Answer a text message: every one in a private chat, in groups only those addressed to the bot."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    if message.chat.type == ChatType.PRIVATE:
        await _answer(update, context, message.text)
    elif await _relayed(update, context):
        return
    elif _addressed(message, context.bot):
        await _answer(update, context, _strip_mention(message.text, context.bot.username))


async def unknown_command(update: Update, context: Context) -> None:
    """Point a private chat that sent an unknown command at the ones that exist."""
    if update.effective_message and await _admitted(update, context):
        await update.effective_message.reply_text(COMMAND_USAGE, reply_parameters=_reply_to(update.effective_message))


async def reject_non_text(update: Update, context: Context) -> None:
    """Tell a private chat that sent a sticker, photo or voice message that only text is read."""
    if update.effective_message and await _admitted(update, context):
        await update.effective_message.reply_text(TEXT_ONLY, reply_parameters=_reply_to(update.effective_message))


async def show_sources(update: Update, context: Context) -> None:
    """Show the quoted passages of an answer as a new message; its ◀ ▶ buttons page through them in place."""
    query, who = update.callback_query, _presser(update)
    match = _SOURCES.fullmatch(query.data or "") if query else None
    if query is None or who is None or match is None or not isinstance(query.message, Message):
        await expire_button(update, context)
        return
    reply = await _core(context).sources(match[1], who)
    if reply.stored is None:
        await query.answer(reply.text)
        return
    await query.answer()
    stored = reply.stored
    pages = render.sources_pages_telegram(stored)
    page = min(max(int(match[2] or 1), 1), len(pages))
    markup = _pager(stored.id, page, len(pages))
    if match[2] is None:
        send = partial(query.message.reply_text, reply_parameters=_reply_to(query.message), reply_markup=markup,
                       link_preview_options=_NO_PREVIEW)
        await _html_or_plain(send, pages[0])
        return
    try:
        await _html_or_plain(partial(query.edit_message_text, reply_markup=markup,
                                     link_preview_options=_NO_PREVIEW), pages[page - 1])
    except BadRequest as exc:
        if "not modified" not in exc.message:  # a double click asks for the page already shown
            raise


async def vote(update: Update, context: Context) -> None:
    """Store a 👍 or 👎 on an answer and thank the user."""
    query, who = update.callback_query, _presser(update)
    match = _VOTE.fullmatch(query.data or "") if query else None
    if query is None or who is None or match is None:
        await expire_button(update, context)
        return
    reply = await _core(context).vote(match[1], who, int(match[2]))
    await query.answer(reply.text)


async def ask_person(update: Update, context: Context) -> None:
    """Post the question and its answer to the help-desk group; tell the presser privately."""
    query, who = update.callback_query, _presser(update)
    match = _ASK.fullmatch(query.data or "") if query else None
    if query is None or who is None or match is None or not isinstance(query.message, Message):
        await expire_button(update, context)
        return
    answer, asker = query.message, _name(query.from_user)

    async def post(stored: StoredAnswer, helpdesk: str) -> tuple[str, str]:
        link = _message_link(answer)
        sent = await context.bot.send_message(int(helpdesk), render.escalation_text(stored, asker=asker, link=link,
                                                                                    slack=False),
                                              link_preview_options=_NO_PREVIEW)
        return str(sent.message_id), link

    reply = await _core(context).escalate(match[1], who, asker_name=asker, reply_to=str(answer.message_id),
                                          post=post)
    await query.answer(reply.text)


async def withdraw(update: Update, context: Context) -> None:
    """A responder's Withdraw press: the kept reply is no source any more; its confirmation says so."""
    query, who = update.callback_query, _presser(update)
    match = _FORGET.fullmatch(query.data or "") if query else None
    if query is None or who is None or match is None:
        await expire_button(update, context)
        return
    reply = await _core(context).withdraw(match[1], who)
    await query.answer(reply.text)
    if reply.kind == "withdrawn":
        await query.edit_message_text(reply.text)


async def expire_button(update: Update, context: Context) -> None:
    """Answer a button this version does not know (an old keyboard) so the client stops waiting."""
    if update.callback_query:
        await update.callback_query.answer(UNAVAILABLE_TEXT)


async def log_error(update: object, context: Context) -> None:
    """Log an error with the update it came from, never the bot token."""
    error = context.error
    if update is None and isinstance(error, NetworkError) and not isinstance(error, BadRequest):
        logger.warning("Telegram is unreachable: %s", _redact(str(error), context.bot.token))
        return
    where = "no update"
    if isinstance(update, Update):
        chat, user = update.effective_chat, update.effective_user
        where = f"update {update.update_id} (chat {chat.id if chat else '-'}, user {user.id if user else '-'})"
    trace = "".join(traceback.format_exception(error)) if error else "no exception"
    logger.error("error while handling %s:\n%s", where, _redact(trace, context.bot.token))


# --- helpers -------------------------------------------------------------------------------------------


def _core(context: Context) -> ChatCore:
    return context.bot_data[_CORE]


def _api_urls(base_url: str) -> tuple[str, str]:
    """(API, file) base URLs of a self-hosted Bot API server, given ``http://host:port`` or ``…/bot``."""
    root = base_url.rstrip("/").removesuffix("/bot")
    return f"{root}/bot", f"{root}/file/bot"


def _redact(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


def _reply_to(message: Message) -> ReplyParameters:
    # Still deliver the answer when the question was deleted meanwhile.
    return ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)


def _incoming(update: Update, text: str) -> IncomingMessage | None:
    """The message as the core sees it; None for bots."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or (user.is_bot and message.sender_chat is None):
        return None
    # Anonymous group admins and linked channels write as a chat, through a shared bot account.
    sender = str(message.sender_chat.id if message.sender_chat else user.id)
    thread = f":{message.message_thread_id}" if message.is_topic_message else ""
    return IncomingMessage(PLATFORM, f"{message.chat.id}{thread}", sender, text, chat_id=str(message.chat.id))


def _presser(update: Update) -> IncomingMessage | None:
    """Who pressed a button, and in which chat, as the core sees it."""
    query, chat = update.callback_query, update.effective_chat
    if query is None or chat is None:
        return None
    return IncomingMessage(PLATFORM, str(chat.id), str(query.from_user.id), "", chat_id=str(chat.id))


async def _admitted(update: Update, context: Context) -> bool:
    """Whether the core lets the sender of a command use the bot here; the refusal is shown once a chat."""
    incoming = _incoming(update, "")
    if incoming is None:
        return False
    refusal = _core(context).admit(incoming)
    if refusal is not None and update.effective_message:
        await _refuse(update.effective_message, context, refusal)
    return refusal is None


async def _refuse(message: Message, context: Context, refusal: Reply) -> None:
    """The core's refusal, once a chat, so a group is not spammed."""
    if context.chat_data is not None and not context.chat_data.get(_REFUSED):
        context.chat_data[_REFUSED] = True
        await message.reply_text(refusal.text, reply_parameters=_reply_to(message))


async def _relayed(update: Update, context: Context) -> bool:
    """Pass a reply to an escalation in the help-desk group on to the asker; whether it was such a reply."""
    message, sender, core = update.effective_message, update.effective_user, _core(context)
    replied = message.reply_to_message if message else None
    if (message is None or replied is None or sender is None or message.text is None
            or core.escalation_at(PLATFORM, str(message.chat.id), str(replied.message_id)) is None):
        return False
    msg = IncomingMessage(PLATFORM, str(message.chat.id), str(sender.id),
                          _strip_mention(message.text, context.bot.username), chat_id=str(message.chat.id))

    async def post(escalation: Escalation, text: str) -> None:
        await context.bot.send_message(
            int(escalation.reply_chat), render.clip(text, render.TELEGRAM_LIMIT), link_preview_options=_NO_PREVIEW,
            reply_parameters=ReplyParameters(message_id=int(escalation.reply_to), allow_sending_without_reply=True))

    reply = await core.relay(msg, str(replied.message_id), responder_name=_name(sender),
                             reply_ref=str(message.message_id), post=post)
    if reply is not None and reply.text:
        markup = None if reply.kept is None else InlineKeyboardMarkup(
            [[InlineKeyboardButton(WITHDRAW_BUTTON, callback_data=f"forget:{reply.kept}")]])
        await message.reply_text(reply.text, reply_parameters=_reply_to(message), reply_markup=markup)
    return reply is not None


def _name(person: User) -> str:
    """How the help desk names someone: their @username, else their name."""
    return f"@{person.username}" if person.username else person.full_name


def _message_link(message: Message) -> str:
    """A t.me link to ``message`` for the members of its chat; "" where Telegram has none (private chats)."""
    chat = message.chat
    if chat.username:
        return f"https://t.me/{chat.username}/{message.message_id}"
    if str(chat.id).startswith("-100"):  # a supergroup: its members can open /c/ links
        return f"https://t.me/c/{str(chat.id)[4:]}/{message.message_id}"
    return ""


def _addressed(message: Message, bot: Bot) -> bool:
    """Whether a group message is meant for the bot: it mentions it or replies to one of its messages."""
    replied = message.reply_to_message
    if replied and replied.from_user and replied.from_user.id == bot.id:
        return True
    mentions = message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION])
    return any((entity.user and entity.user.id == bot.id) or text[1:].lower() == bot.username.lower()
               for entity, text in mentions.items())


def _strip_mention(text: str, username: str) -> str:
    return re.sub(rf"@{re.escape(username)}\b[,:]?", "", text, flags=re.IGNORECASE).strip()


async def _answer(update: Update, context: Context, question: str) -> None:
    """Ask the core, showing "typing…" and the answer being written meanwhile, and reply to the asking message."""
    message, incoming = update.effective_message, _incoming(update, question)
    if message is None or incoming is None:
        return
    core = _core(context)
    refusal = core.admit(incoming)  # a chat that may not ask sees no "typing…"
    if refusal is not None:
        await _refuse(message, context, refusal)
        return
    draft = _Draft(message)
    async with _typing(message), LivePreview(draft.show) as preview:
        reply = await core.handle(incoming, on_sentence=preview.on_sentence)
    await _deliver(message, reply, draft if draft.sent else None)


class _Draft:
    """The plain-text message an answer is written into while the language model streams it."""

    def __init__(self, question: Message) -> None:
        self.question = question
        self.sent: Message | None = None
        self._text = ""

    async def show(self, text: str) -> None:
        """Send ``text`` replying to the question, or edit the message already sent to it."""
        text = render.telegram_draft(text)
        if text == self._text:  # Telegram refuses an edit that changes nothing
            return
        if self.sent is None:
            self.sent = await self.question.reply_text(text, reply_parameters=_reply_to(self.question),
                                                       link_preview_options=_NO_PREVIEW)
        else:
            await self.sent.edit_text(text, link_preview_options=_NO_PREVIEW)
        self._text = text

    async def replace(self, text: str, **kwargs: Any) -> Message | bool:
        """Edit the sent draft into ``text``; when the draft was deleted meanwhile, reply with ``text`` anew."""
        if self.sent is None:
            raise ValueError("no draft was sent")
        try:
            return await self.sent.edit_text(text, **kwargs)
        except BadRequest as exc:
            if "not found" not in exc.message:
                raise
            logger.info("the answer's draft in chat %s is gone; sending the answer anew", self.question.chat_id)
            return await self.question.reply_text(text, reply_parameters=_reply_to(self.question), **kwargs)


@asynccontextmanager
async def _typing(message: Message) -> AsyncIterator[None]:
    """Show "typing…" in the message's chat, renewed every few seconds, while the block runs."""
    done = asyncio.Event()

    async def keep_typing() -> None:
        while not done.is_set():
            try:
                await message.reply_chat_action(ChatAction.TYPING)
            except TelegramError as exc:  # a lost indicator must not cost the answer
                logger.debug("typing action failed in chat %s: %s", message.chat_id, exc)
            with suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), TYPING_EVERY)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        # Not cancelled: an action already on its way finishes, then the loop ends.
        done.set()
        await task


async def _deliver(message: Message, reply: Reply, draft: _Draft | None = None) -> None:
    """Send a reply: an answer as HTML parts, the first replying to the question, buttons on the last.

    The first part replaces the ``draft`` the answer was streamed into, when one was sent.
    """
    if reply.answer is None:
        if draft is None:
            await message.reply_text(reply.text, reply_parameters=_reply_to(message))
        else:
            await draft.replace(reply.text)
        return
    parts = render.to_telegram_html(reply.answer)
    keyboard = _answer_keyboard(reply)
    for i, part in enumerate(parts):
        markup = keyboard if i == len(parts) - 1 else None
        if i == 0 and draft is not None:
            send = partial(draft.replace, link_preview_options=_NO_PREVIEW, reply_markup=markup)
        else:
            send = partial(message.reply_text, do_quote=False, link_preview_options=_NO_PREVIEW,
                           reply_parameters=_reply_to(message) if i == 0 else None, reply_markup=markup)
        await _html_or_plain(send, part)


async def _html_or_plain(send: Callable[..., Awaitable[T]], text: str) -> T:
    """``send(text)`` as Telegram HTML; when Telegram cannot parse it, the same text without markup."""
    try:
        return await send(text, parse_mode=ParseMode.HTML)
    except BadRequest as exc:
        if not _MARKUP_ERROR.search(exc.message):
            raise
        logger.warning("Telegram rejected a message's HTML (%s); sending it as plain text", exc.message)
        return await send(html.unescape(_TAG.sub("", text)), parse_mode=None)


def _answer_keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """Sources (when something is cited), 👍 and 👎, then "Ask a person" with a help desk; none when the
    answer could not be stored."""
    if reply.answer_id is None:
        return None
    n = reply.answer_id
    buttons = [InlineKeyboardButton("👍", callback_data=f"vote:{n}:1"),
               InlineKeyboardButton("👎", callback_data=f"vote:{n}:-1")]
    if reply.answer and reply.answer.citations:
        buttons.insert(0, InlineKeyboardButton("Sources", callback_data=f"src:{n}"))
    rows = [buttons]
    if reply.ask_person:
        rows.append([InlineKeyboardButton(ASK_PERSON_BUTTON, callback_data=f"ask:{n}")])
    return InlineKeyboardMarkup(rows)


def _pager(answer_id: int, page: int, pages: int) -> InlineKeyboardMarkup | None:
    """◀ ▶ buttons to the neighbouring pages of the sources that exist."""
    buttons = []
    if page > 1:
        buttons.append(InlineKeyboardButton("◀", callback_data=f"src:{answer_id}:{page - 1}"))
    if page < pages:
        buttons.append(InlineKeyboardButton("▶", callback_data=f"src:{answer_id}:{page + 1}"))
    return InlineKeyboardMarkup([buttons]) if buttons else None


async def _send_help(update: Update, context: Context, *, greeting: bool) -> None:
    """The help text, with how many documents are indexed and a few of their titles."""
    message = update.effective_message
    if message is None or not await _admitted(update, context):
        return
    documents = await _core(context).indexed_documents()
    parts = [START_TEXT if greeting else "", HELP_TEXT.format(username=context.bot.username),
             _corpus(documents)]
    await message.reply_text("\n\n".join(p for p in parts if p), reply_parameters=_reply_to(message))


def _corpus(documents: list[dict[str, Any]] | None) -> str:
    """"12 documents are indexed, for example: • …"; empty when the responder cannot tell."""
    if documents is None:
        return ""
    if not documents:
        return NOTHING_INDEXED
    titles = [render.shorten(str(d.get("title") or d.get("source", "untitled")), 80) for d in documents]
    count = "1 document is" if len(titles) == 1 else f"{len(titles):,} documents are"
    listed = "\n".join(f"• {t}" for t in titles[:HELP_TITLES])
    more = f"\n… and {len(titles) - HELP_TITLES:,} more" if len(titles) > HELP_TITLES else ""
    return INDEXED_EXAMPLES.format(count=count, listed=listed, more=more)
