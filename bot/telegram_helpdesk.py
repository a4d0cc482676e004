"""Telegram's help-desk handlers: "Ask a person", replies relayed from the help-desk group, Withdraw, documents
an admin sends to be indexed, and the weekly digest (PTB's JobQueue).

The core decides everything (``ChatCore.escalate``, ``relay``, ``withdraw``, ``ingest``, ``digest``); these
handlers only carry Telegram's messages to it and its replies back.
"""

from __future__ import annotations

import re
from datetime import UTC, time

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters, Update
from telegram.constants import ChatType
from telegram.ext import Application

from bot import render
from bot.core import IncomingMessage
from bot.settings import BotSettings
from bot.telegram_messages import (
    NO_PREVIEW,
    PLATFORM,
    Context,
    addressed,
    core_of,
    incoming,
    name_of,
    pressed,
    reply_to,
    strip_mention,
)
from bot.texts import WITHDRAW_BUTTON
from bot.types import Escalation, StoredAnswer
from retrieval import ConfigError

ASK = re.compile(r"ask:(\d+)")
FORGET = re.compile(r"forget:(\d+)")
DIGEST_JOB = "citebot-digest"


async def ask_person(update: Update, context: Context) -> None:
    """Post the question and its answer to the help-desk group; tell the presser privately."""
    if (press := await pressed(update, context, ASK, on_message=True)) is None:
        return
    query, who, match = press
    answer, asker = query.message, name_of(query.from_user)

    async def post(stored: StoredAnswer, helpdesk: str) -> tuple[str, str]:
        link = message_link(answer)
        sent = await context.bot.send_message(int(helpdesk), render.escalation_text(stored, asker=asker, link=link,
                                                                                    slack=False),
                                              link_preview_options=NO_PREVIEW)
        return str(sent.message_id), link

    reply = await core_of(context).escalate(match[1], who, asker_name=asker, reply_to=str(answer.message_id),
                                            post=post)
    await query.answer(reply.text)


async def withdraw(update: Update, context: Context) -> None:
    """A responder's Withdraw press: the kept reply is no source any more; its confirmation says so."""
    if (press := await pressed(update, context, FORGET)) is None:
        return
    query, who, match = press
    reply = await core_of(context).withdraw(match[1], who)
    await query.answer(reply.text)
    if reply.kind == "withdrawn":
        await query.edit_message_text(reply.text)


async def relayed(update: Update, context: Context) -> bool:
    """Pass a reply to an escalation in the help-desk group on to the asker; whether it was such a reply."""
    message, sender, core = update.effective_message, update.effective_user, core_of(context)
    replied = message.reply_to_message if message else None
    if (message is None or replied is None or sender is None or message.text is None
            or core.escalation_at(PLATFORM, str(message.chat.id), str(replied.message_id)) is None):
        return False
    msg = IncomingMessage(PLATFORM, str(message.chat.id), str(sender.id),
                          strip_mention(message.text, context.bot.username), chat_id=str(message.chat.id))

    async def post(escalation: Escalation, text: str) -> None:
        await context.bot.send_message(
            int(escalation.reply_chat), render.clip(text, render.TELEGRAM_LIMIT), link_preview_options=NO_PREVIEW,
            reply_parameters=ReplyParameters(message_id=int(escalation.reply_to), allow_sending_without_reply=True))

    reply = await core.relay(msg, str(replied.message_id), responder_name=name_of(sender),
                             reply_ref=str(message.message_id), post=post)
    if reply is not None and reply.text:
        markup = None if reply.kept is None else InlineKeyboardMarkup(
            [[InlineKeyboardButton(WITHDRAW_BUTTON, callback_data=f"forget:{reply.kept}")]])
        await message.reply_text(reply.text, reply_parameters=reply_to(message), reply_markup=markup)
    return reply is not None


async def receive_document(update: Update, context: Context) -> None:
    """Index a document sent in a private chat, or in a group with a mention of the bot; reply with the summary."""
    message, who = update.effective_message, incoming(update, "")
    if message is None or message.document is None or who is None:
        return
    if message.chat.type != ChatType.PRIVATE and not addressed(message, context.bot):
        return
    document = message.document

    async def fetch(limit: int) -> bytes:
        # getFile, then the download; the Bot API serves files of up to 20 MB, the core checked the size.
        return bytes(await (await document.get_file()).download_as_bytearray())

    reply = await core_of(context).ingest(who, name=document.file_name or document.file_unique_id,
                                          size=document.file_size, fetch=fetch)
    await message.reply_text(reply.text, reply_parameters=reply_to(message))


def schedule_digest(application: Application, settings: BotSettings) -> None:
    """Post the weekly digest to the help-desk group with PTB's JobQueue, when it is turned on."""
    if not settings.helpdesk_digest or settings.helpdesk_chat(PLATFORM) is None:
        return
    if application.job_queue is None:
        raise ConfigError("the weekly digest needs PTB's JobQueue: pip install 'python-telegram-bot[job-queue]'")
    # PTB counts days from Sunday (0); the setting from Monday (0).
    application.job_queue.run_daily(post_digest, time(settings.helpdesk_digest_hour, tzinfo=UTC),
                                    days=((settings.helpdesk_digest_weekday + 1) % 7,), name=DIGEST_JOB)


async def post_digest(context: Context) -> None:
    """Post the week's unanswered question groups to the help-desk group."""
    digest = await core_of(context).digest(PLATFORM)
    if digest is not None:
        chat, text = digest
        await context.bot.send_message(int(chat), render.clip(text, render.TELEGRAM_LIMIT),
                                       link_preview_options=NO_PREVIEW)


def message_link(message: Message) -> str:
    """A t.me link to ``message`` for the members of its chat; "" where Telegram has none (private chats)."""
    chat = message.chat
    if chat.username:
        return f"https://t.me/{chat.username}/{message.message_id}"
    if str(chat.id).startswith("-100"):  # a supergroup: its members can open /c/ links
        return f"https://t.me/c/{str(chat.id)[4:]}/{message.message_id}"
    return ""
