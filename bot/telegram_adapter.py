"""Telegram front end: python-telegram-bot's ``Application`` around the chat core.

``build_application(core, settings)`` wires every handler in one block; ``run(application, settings)``
long-polls, or serves a webhook when ``CITEBOT_TELEGRAM_WEBHOOK_URL`` is set. Handlers only translate: a
Telegram message becomes an ``IncomingMessage``, the core's ``Reply`` becomes Telegram HTML through
``bot.render``. In private chats every text message is a question; in groups only a message that mentions
the bot, replies to one of its messages or starts with ``/ask``. Edited messages, channel posts and other
bots' messages are ignored.

With a help desk set up, every answer has "Ask a person": the question, the answer and who asked go to the
help-desk group; a listed responder's reply to that post goes back to the asker's chat, attributed, and
becomes a source (``ChatCore.relay``) until a responder presses Withdraw under the bot's confirmation. A
document sent in a private chat (or with a mention in a group) is indexed when a listed admin sent it; a
weekly digest of the unanswered questions can go to the help-desk group. Those handlers live in
``bot.telegram_helpdesk``; what both modules share in ``bot.telegram_messages``.

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
    Message,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import render, telegram_helpdesk
from bot.core import ChatCore, Reply
from bot.settings import BotSettings, reveal
from bot.streaming import LivePreview
from bot.telegram_messages import (
    CORE_KEY,
    NO_PREVIEW,
    Context,
    addressed,
    core_of,
    expire_button,
    incoming,
    pressed,
    reply_to,
    strip_mention,
)
from bot.texts import (
    ASK_PERSON_BUTTON,
    ASK_USAGE,
    COMMAND_USAGE,
    HELP_TEXT,
    INDEXED_EXAMPLES,
    NOTHING_INDEXED,
    START_TEXT,
    TEXT_ONLY,
)
from retrieval import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")

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

_REFUSED = "citebot_refused"  # chat_data key: this chat has had its one refusal
_SOURCES = re.compile(r"src:(\d+)(?::(\d{1,6}))?")  # "src:<answer>" opens the sources, "src:<answer>:<page>" pages
_VOTE = re.compile(r"vote:(\d+):(-?1)")
_TAG = re.compile(r"<[^>]*>")  # document text is escaped, so every tag in our HTML is our own markup
_MARKUP_ERROR = re.compile(r"pars|entit|tag", re.IGNORECASE)


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


def _token(settings: BotSettings) -> str:
    token = reveal(settings.telegram_bot_token)
    if not token:
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put its token in .env")
    return token


def check_connection(settings: BotSettings) -> None:
    """Raise ``ConfigError`` with one line when the token is unset or rejected, or Telegram is out of reach.

    Run before the index is opened, so a typo costs a second, not a start-up.
    """
    urls = _api_urls(settings.telegram_base_url) if settings.telegram_base_url else None
    bot = Bot(_token(settings), **({"base_url": urls[0], "base_file_url": urls[1]} if urls else {}))
    asyncio.run(_check_token(bot, settings.telegram_base_url or "https://api.telegram.org"))


def build_application(core: ChatCore, settings: BotSettings) -> Application:
    """The bot: every handler and the error handler wired to ``core``; serve it with ``run``."""
    builder = (
        ApplicationBuilder()
        .token(_token(settings))
        .rate_limiter(RetryingRateLimiter(max_retries=MAX_RETRIES))
        .concurrent_updates(CONCURRENT_UPDATES)
        .post_init(announce)
    )
    if settings.telegram_base_url:
        api, files = _api_urls(settings.telegram_base_url)
        builder = builder.base_url(api).base_file_url(files)
    application = builder.build()
    application.bot_data[CORE_KEY] = core

    new, private = filters.UpdateType.MESSAGE, filters.ChatType.PRIVATE
    application.add_handlers([
        CommandHandler("start", start, filters=new),
        CommandHandler("help", show_help, filters=new),
        CommandHandler("ask", ask, filters=new),
        MessageHandler(new & filters.TEXT & ~filters.COMMAND, answer_message),
        MessageHandler(new & private & filters.COMMAND, unknown_command),
        MessageHandler(new & filters.Document.ALL, telegram_helpdesk.receive_document),
        MessageHandler(new & private & filters.ATTACHMENT, reject_non_text),
        CallbackQueryHandler(show_sources, pattern=_SOURCES),
        CallbackQueryHandler(vote, pattern=_VOTE),
        CallbackQueryHandler(telegram_helpdesk.ask_person, pattern=telegram_helpdesk.ASK),
        CallbackQueryHandler(telegram_helpdesk.withdraw, pattern=telegram_helpdesk.FORGET),
        CallbackQueryHandler(expire_button),
    ])
    application.add_error_handler(log_error)
    telegram_helpdesk.schedule_digest(application, settings)
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
    """Serve until interrupted: long polling, or a webhook when ``CITEBOT_TELEGRAM_WEBHOOK_URL`` is set.

    ``check_connection`` first: left to ``run_polling``, a rejected token is logged by python-telegram-bot with
    the token in the message, and an unreachable server in a hundred lines.
    """
    if settings.telegram_webhook_url:
        application.run_webhook(**webhook_options(settings))
    else:
        application.run_polling(allowed_updates=ALLOWED_UPDATES)


async def _check_token(bot: Bot, where: str) -> None:
    """``getMe``: a rejected token or an unreachable server becomes one ``ConfigError`` line."""
    try:
        async with bot:
            pass
    except InvalidToken:
        raise ConfigError("Telegram rejected TELEGRAM_BOT_TOKEN: check it with @BotFather") from None
    except NetworkError as exc:
        raise ConfigError(f"cannot reach Telegram at {where} ({_redact(exc.message, bot.token)}): check the "
                          "network, or TELEGRAM_BASE_URL for a self-hosted Bot API server") from None


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
    question = strip_mention(parts[1], context.bot.username) if len(parts) > 1 else ""
    if question:
        await _answer(update, context, question)
    elif message and await _admitted(update, context):
        await message.reply_text(ASK_USAGE, reply_parameters=reply_to(message))


async def answer_message(update: Update, context: Context) -> None:
    """Answer a text message: every one in a private chat, in groups only those addressed to the bot."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    if message.chat.type == ChatType.PRIVATE:
        await _answer(update, context, message.text)
    elif await telegram_helpdesk.relayed(update, context):
        return
    elif addressed(message, context.bot):
        await _answer(update, context, strip_mention(message.text, context.bot.username))


async def unknown_command(update: Update, context: Context) -> None:
    """Point a private chat that sent an unknown command at the ones that exist."""
    if update.effective_message and await _admitted(update, context):
        await update.effective_message.reply_text(COMMAND_USAGE, reply_parameters=reply_to(update.effective_message))


async def reject_non_text(update: Update, context: Context) -> None:
    """Tell a private chat that sent a sticker, photo or voice message that only text is read."""
    if update.effective_message and await _admitted(update, context):
        await update.effective_message.reply_text(TEXT_ONLY, reply_parameters=reply_to(update.effective_message))


async def show_sources(update: Update, context: Context) -> None:
    """Show the quoted passages of an answer as a new message; its ◀ ▶ buttons page through them in place."""
    if (press := await pressed(update, context, _SOURCES, on_message=True)) is None:
        return
    query, who, match = press
    reply = await core_of(context).sources(match[1], who)
    if reply.stored is None:
        await query.answer(reply.text)
        return
    await query.answer()
    stored = reply.stored
    pages = render.sources_pages_telegram(stored)
    page = min(max(int(match[2] or 1), 1), len(pages))
    markup = _pager(stored.id, page, len(pages))
    if match[2] is None:
        send = partial(query.message.reply_text, reply_parameters=reply_to(query.message), reply_markup=markup,
                       link_preview_options=NO_PREVIEW)
        await _html_or_plain(send, pages[0])
        return
    try:
        await _html_or_plain(partial(query.edit_message_text, reply_markup=markup,
                                     link_preview_options=NO_PREVIEW), pages[page - 1])
    except BadRequest as exc:
        if "not modified" not in exc.message:  # a double click asks for the page already shown
            raise


async def vote(update: Update, context: Context) -> None:
    """Store a 👍 or 👎 on an answer and thank the user."""
    if (press := await pressed(update, context, _VOTE)) is None:
        return
    query, who, match = press
    reply = await core_of(context).vote(match[1], who, int(match[2]))
    await query.answer(reply.text)


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


def _api_urls(base_url: str) -> tuple[str, str]:
    """(API, file) base URLs of a self-hosted Bot API server, given ``http://host:port`` or ``…/bot``."""
    root = base_url.rstrip("/").removesuffix("/bot")
    return f"{root}/bot", f"{root}/file/bot"


def _redact(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


async def _admitted(update: Update, context: Context) -> bool:
    """Whether the core lets the sender of a command use the bot here; the refusal is shown once a chat."""
    who = incoming(update, "")
    if who is None:
        return False
    refusal = core_of(context).admit(who)
    if refusal is not None and update.effective_message:
        await _refuse(update.effective_message, context, refusal)
    return refusal is None


async def _refuse(message: Message, context: Context, refusal: Reply) -> None:
    """The core's refusal, once a chat, so a group is not spammed."""
    if context.chat_data is not None and not context.chat_data.get(_REFUSED):
        context.chat_data[_REFUSED] = True
        await message.reply_text(refusal.text, reply_parameters=reply_to(message))


async def _answer(update: Update, context: Context, question: str) -> None:
    """Ask the core, showing "typing…" and the answer being written meanwhile, and reply to the asking message."""
    message, asker = update.effective_message, incoming(update, question)
    if message is None or asker is None:
        return
    core = core_of(context)
    refusal = core.admit(asker)  # a chat that may not ask sees no "typing…"
    if refusal is not None:
        await _refuse(message, context, refusal)
        return
    draft = _Draft(message)
    async with _typing(message), LivePreview(draft.show) as preview:
        reply = await core.handle(asker, on_sentence=preview.on_sentence)
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
            self.sent = await self.question.reply_text(text, reply_parameters=reply_to(self.question),
                                                       link_preview_options=NO_PREVIEW)
        else:
            await self.sent.edit_text(text, link_preview_options=NO_PREVIEW)
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
            return await self.question.reply_text(text, reply_parameters=reply_to(self.question), **kwargs)


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
            await message.reply_text(reply.text, reply_parameters=reply_to(message))
        else:
            await draft.replace(reply.text)
        return
    parts = render.to_telegram_html(reply.answer)
    keyboard = _answer_keyboard(reply)
    for i, part in enumerate(parts):
        markup = keyboard if i == len(parts) - 1 else None
        if i == 0 and draft is not None:
            send = partial(draft.replace, link_preview_options=NO_PREVIEW, reply_markup=markup)
        else:
            send = partial(message.reply_text, do_quote=False, link_preview_options=NO_PREVIEW,
                           reply_parameters=reply_to(message) if i == 0 else None, reply_markup=markup)
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
    message, who = update.effective_message, incoming(update, "")
    if message is None or who is None or not await _admitted(update, context):
        return
    documents = await core_of(context).indexed_documents(who)  # of the chat's space only
    parts = [START_TEXT if greeting else "", HELP_TEXT.format(username=context.bot.username),
             _corpus(documents)]
    await message.reply_text("\n\n".join(p for p in parts if p), reply_parameters=reply_to(message))


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
