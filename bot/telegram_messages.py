"""What the Telegram handlers share: updates as the chat core sees them, and how the bot replies to a message.

``bot.telegram_adapter`` (questions, sources, votes) and ``bot.telegram_helpdesk`` (help desk, posted
documents, digest) both use these; neither imports the other's handlers.
"""

from __future__ import annotations

import re

from telegram import Bot, CallbackQuery, LinkPreviewOptions, Message, MessageEntity, ReplyParameters, Update, User
from telegram.ext import ContextTypes

from bot.core import ChatCore, IncomingMessage
from bot.texts import UNAVAILABLE_TEXT

Context = ContextTypes.DEFAULT_TYPE

PLATFORM = "telegram"
CORE_KEY = "citebot_core"  # bot_data key
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
_MENTIONS = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]


def core_of(context: Context) -> ChatCore:
    return context.bot_data[CORE_KEY]


def reply_to(message: Message) -> ReplyParameters:
    # Still deliver the answer when the question was deleted meanwhile.
    return ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)


def incoming(update: Update, text: str) -> IncomingMessage | None:
    """The message as the core sees it; None for bots."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or (user.is_bot and message.sender_chat is None):
        return None
    # Anonymous group admins and linked channels write as a chat, through a shared bot account.
    sender = str(message.sender_chat.id if message.sender_chat else user.id)
    thread = f":{message.message_thread_id}" if message.is_topic_message else ""
    return IncomingMessage(PLATFORM, f"{message.chat.id}{thread}", sender, text, chat_id=str(message.chat.id))


def presser(update: Update) -> IncomingMessage | None:
    """Who pressed a button, and in which chat, as the core sees it."""
    query, chat = update.callback_query, update.effective_chat
    if query is None or chat is None:
        return None
    return IncomingMessage(PLATFORM, str(chat.id), str(query.from_user.id), "", chat_id=str(chat.id))


def name_of(person: User) -> str:
    """How the help desk names someone: their @username, else their name."""
    return f"@{person.username}" if person.username else person.full_name


def addressed(message: Message, bot: Bot) -> bool:
    """Whether a group message is meant for the bot: it (or its caption) mentions it, or it replies to one of
    the bot's messages."""
    replied = message.reply_to_message
    if replied and replied.from_user and replied.from_user.id == bot.id:
        return True
    mentions = {**message.parse_entities(_MENTIONS), **message.parse_caption_entities(_MENTIONS)}
    return any((entity.user and entity.user.id == bot.id) or text[1:].lower() == bot.username.lower()
               for entity, text in mentions.items())


def strip_mention(text: str, username: str) -> str:
    return re.sub(rf"@{re.escape(username)}\b[,:]?", "", text, flags=re.IGNORECASE).strip()


async def expire_button(update: Update, context: Context) -> None:
    """Answer a button this version does not know (an old keyboard) so the client stops waiting."""
    if update.callback_query:
        await update.callback_query.answer(UNAVAILABLE_TEXT)


async def pressed(
    update: Update, context: Context, pattern: re.Pattern[str], *, on_message: bool = False
) -> tuple[CallbackQuery, IncomingMessage, re.Match[str]] | None:
    """The press of a button whose data ``pattern`` reads (on a message still there, with ``on_message``), or
    None once a press it cannot read has been answered as expired."""
    query, who = update.callback_query, presser(update)
    match = pattern.fullmatch(query.data or "") if query else None
    if query is None or who is None or match is None or (on_message and not isinstance(query.message, Message)):
        await expire_button(update, context)
        return None
    return query, who, match
