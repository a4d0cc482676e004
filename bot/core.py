"""The platform-neutral chat core every front end (Telegram, Slack, terminal) shares.

An adapter turns a platform event into an ``IncomingMessage`` and asks the core, which makes every access
decision and returns a ``Reply`` whose ``kind`` tells the adapter what to show:

- ``handle(msg)``: a question. The core decides who may ask, cleans the question, applies the per-user rate
  limit, answers with the conversation's recent history and stores the answer for the buttons.
- ``admit(msg)``: a command that asks nothing (help, usage hints): None when the sender may use the bot here,
  or the refusal to show.
- ``sources(answer_id, who)`` and ``vote(answer_id, who, vote)``: a button under an answer. The stored answer is
  shown, or voted on, only in the chat (and Slack workspace) where it was given, only for someone allowed to
  ask there, and only with the quotes whose passages are still indexed. Anything else (a forged or foreign
  click, an unknown or out-of-range id) gets one refusal that reveals nothing of any answer.
- ``escalate(answer_id, who, ...)``: an "Ask a person" click, decided like the other buttons; the adapter's
  ``post`` puts the question and the answer the asker saw into the help-desk conversation, and the core keeps
  the escalation so that replies find their way back.
- ``relay(msg, thread, ...)``: a message in the help-desk conversation. A listed responder's reply to an
  escalation is passed to the asker through the adapter's ``post``, saved as a Markdown source
  (``bot.helpdesk``) and indexed, so the next similar question is answered citing it.
- ``withdraw(reply_id, who)``: a responder's Withdraw click in the help desk: the saved reply is deleted and
  unindexed.
- ``ingest(msg, name=..., size=..., fetch=...)``: a file sent to the bot. A listed admin's is downloaded by the
  adapter's ``fetch`` (within the size limit), saved in the inbox (``bot.inbox``) and indexed; the reply is
  the summary. Anybody else gets one polite line, and nothing is downloaded.
- ``digest(platform)``: the weekly digest of the question groups the documents did not answer
  (``bot.gaps``), for the adapter to post to the help desk.

The core imports no platform library and never raises to the adapter.

An adapter that shows answers while they are written passes ``on_sentence``: a plain callable the responder
calls with each verified sentence of a language-model answer (markers removed), on the worker thread the
responder runs in (see ``bot.streaming``). Extractive answers, refusals and limits never call it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from bot.feedback import FeedbackStore
from bot.gaps import digest_text, find_gaps
from bot.helpdesk import answer_document
from bot.inbox import Inbox, safe_name, summary
from bot.limits import MAX_TRACKED, RateLimiter
from bot.settings import BotSettings
from bot.spaces import Spaces, kept_folder
from bot.spaces import key as space_key
from bot.text import sanitize
from bot.texts import (
    ALREADY_ESCALATED,
    ERROR_TEXT,
    ESCALATED_TEXT,
    ESCALATION_FAILED,
    RATE_LIMIT_TEXT,
    REFUSAL_TEXT,
    RELAY_FAILED,
    RELAY_TEXT,
    RELAYED_TEXT,
    RELAYED_UNSAVED,
    TRUNCATED_NOTICE,
    UNAVAILABLE_TEXT,
    UPLOAD_FAILED,
    UPLOAD_REFUSED,
    UPLOAD_SKIPPED,
    USAGE_TEXT,
    VOTE_THANKS,
    WITHDRAW_FAILED,
    WITHDRAWN_TEXT,
)
from bot.types import Escalation, StoredAnswer, StoredCitation
from retrieval import Answer, Passage, Scope, SentenceCallback, SyncReport, Turn, max_file_bytes, skip_reason

logger = logging.getLogger(__name__)


# The local terminal user is the operator: no allowlist, no rate limit.
LOCAL_PLATFORMS = frozenset({"cli"})

ReplyKind = Literal["answer", "declined", "refused", "rate_limited", "invalid", "error", "sources", "voted",
                    "escalated", "relayed", "ignored", "withdrawn", "indexed", "not_indexed"]
MAX_ANSWER_ID = 2**63 - 1  # SQLite's largest row id: a bigger number in a button was never ours
MAX_REPLY_CHARS = 3500  # of a responder's reply relayed and kept: one Telegram message with its attribution
DIGEST_DAYS = 7  # the weekly digest covers the week before it

# An adapter's help-desk post: (stored answer, help-desk conversation) -> (the post's message id, link to the
# asker's conversation or "").
PostEscalation = Callable[[StoredAnswer, str], Awaitable[tuple[str, str]]]
# An adapter's relay to the asker: (escalation, attributed reply text).
PostRelay = Callable[[Escalation, str], Awaitable[object]]
# An adapter's download of a posted file: (most bytes wanted) -> its bytes (at most one more than that).
FetchFile = Callable[[int], Awaitable[bytes]]


@dataclass(frozen=True)
class IncomingMessage:
    """A question as an adapter hands it over; with empty ``text``, who pressed a button or sent a command."""

    platform: str  # "telegram" | "slack" | "cli"
    conversation_id: str  # telegram chat id (+ thread), slack channel + thread_ts: the history key
    user_id: str
    text: str
    chat_id: str = ""  # telegram chat id / slack channel id: checked against the allowlists
    team_id: str = ""  # slack workspace


@dataclass
class Reply:
    """What the adapter should show: an ``Answer`` to render, a ``StoredAnswer``'s sources, or ``text``."""

    kind: ReplyKind
    text: str
    answer: Answer | None = None
    answer_id: int | None = None  # row id in the feedback store, for the buttons' callback data
    retry_after: float = 0.0
    stored: StoredAnswer | None = None  # "sources": the answer whose quoted passages to show
    ask_person: bool = False  # show the "Ask a person" button: a help desk is set up for this platform
    kept: int | None = None  # "relayed": the id of the reply saved as a source, for its Withdraw button


class Responder(Protocol):
    """Whatever writes the answers: the retrieval library in production, a small fake in tests.

    ``on_sentence``, when given, receives the verified sentences of an answer as a language model writes them.
    ``scope``, when given, is all the answer may draw on. ``passages`` returns those of ``ids`` that are still
    indexed (and inside ``scope``), so a removed document is never quoted again.
    """

    def answer(self, question: str, history: Sequence[Turn], on_sentence: SentenceCallback | None = None, *,
               scope: Scope | None = None) -> Answer: ...

    def passages(self, ids: Sequence[str], *, scope: Scope | None = None) -> list[Passage]: ...


@runtime_checkable
class Catalogue(Protocol):
    """A responder that can also list its indexed documents (those in ``scope``), for the bots' help texts."""

    def sources(self, *, scope: Scope | None = None) -> list[dict[str, Any]]: ...


@runtime_checkable
class FolderLister(Protocol):
    """A responder that can name its indexed folders, so a spaces file naming another one is refused."""

    def folders(self) -> dict[str, tuple[int, int]]: ...


@runtime_checkable
class Indexer(Protocol):
    """A responder that can index files, so a responder's saved reply or an admin's document becomes a source."""

    def index(self, paths: Sequence[Path]) -> SyncReport: ...


class ChatCore:
    """Access control, cleaning, rate limits and history around a ``Responder``.

    Args:
        responder: writes the answers.
        settings: allowlists, limits and the spaces file.
        feedback: stores every answer and the votes on it.
        clock: monotonic seconds, for the rate limiter.

    Raises ``ConfigError`` when the spaces file is unusable or names a folder the responder has not indexed.
    """

    def __init__(self, responder: Responder, settings: BotSettings, feedback: FeedbackStore, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.responder = responder
        self.settings = settings
        self.feedback = feedback
        self.spaces = Spaces.load(settings.spaces_file)
        if self.spaces.configured and isinstance(responder, FolderLister):
            self.spaces.check(responder.folders())
        self._limiter = RateLimiter(settings.rate_limit_questions, settings.rate_limit_window, clock=clock)
        self._history: OrderedDict[tuple[str, str], deque[Turn]] = OrderedDict()
        self._history_lock = threading.Lock()
        self._inbox = Inbox(settings.inbox)

    async def handle(self, msg: IncomingMessage, *, on_sentence: SentenceCallback | None = None) -> Reply:
        """Answer one message, passing ``on_sentence`` to the responder; never raises."""
        refusal = self.admit(msg)
        if refusal is not None:
            return refusal
        question = sanitize(msg.text).strip()
        if not question:
            return Reply("invalid", USAGE_TEXT)
        notice = ""
        if len(question) > self.settings.max_question_chars:
            question = question[: self.settings.max_question_chars]
            notice = TRUNCATED_NOTICE.format(limit=self.settings.max_question_chars)
        if msg.platform not in LOCAL_PLATFORMS:
            wait = self._limiter.acquire((msg.platform, msg.user_id))
            if wait:
                seconds = max(1, math.ceil(wait))
                return Reply("rate_limited", RATE_LIMIT_TEXT.format(seconds=seconds), retry_after=wait)
        space, scope = self.space(msg)
        try:
            answer, answer_id = await asyncio.to_thread(self._answer, msg, question, self.history(msg), notice,
                                                        on_sentence, space, scope)
        except Exception:
            logger.exception(
                "answering failed: %s conversation %s user %s, question of %d characters",
                msg.platform, msg.conversation_id, msg.user_id, len(question),
            )
            return Reply("error", ERROR_TEXT)
        self._remember(msg, Turn(question, answer.text))
        return Reply("answer" if answer.found else "declined", answer.text, answer, answer_id,
                     ask_person=answer_id is not None and self.helpdesk_chat(msg.platform) is not None)

    def space(self, msg: IncomingMessage) -> tuple[str, Scope | None]:
        """The document space the message's conversation sees: its key (what stored answers record, "" without
        a spaces file) and the scope its answers are drawn from (None: every document)."""
        if not self.spaces.configured:
            return "", None
        names = self.spaces.of(msg.platform, msg.chat_id, msg.user_id)
        return space_key(names), self.spaces.scope(names)

    def admit(self, msg: IncomingMessage) -> Reply | None:
        """None when the sender may use the bot in this chat; otherwise the refusal to show."""
        if self._allowed(msg):
            return None
        logger.info("refused %s user %s in chat %s", msg.platform, msg.user_id, msg.chat_id)
        return Reply("refused", REFUSAL_TEXT)

    async def sources(self, answer_id: object, who: IncomingMessage) -> Reply:
        """A "Sources" click: the stored answer, its quotes of removed documents left out; or a refusal."""
        stored = await asyncio.to_thread(self.answer_for, answer_id, who)
        if stored is None:
            return Reply("refused", UNAVAILABLE_TEXT)
        return Reply("sources", "", answer_id=stored.id,
                     stored=await asyncio.to_thread(self._still_indexed, stored, self.space(who)[1]))

    async def vote(self, answer_id: object, who: IncomingMessage, vote: int) -> Reply:
        """A 👍 (+1) / 👎 (-1) click: stored when the voter may see the answer; otherwise a refusal."""
        stored = await asyncio.to_thread(self.answer_for, answer_id, who) if vote in (1, -1) else None
        if stored is None or not await asyncio.to_thread(self._record_vote, stored.id, who, vote):
            return Reply("refused", UNAVAILABLE_TEXT)
        return Reply("voted", VOTE_THANKS.format(emoji="👍" if vote > 0 else "👎"), answer_id=stored.id)

    def answer_for(self, answer_id: object, who: IncomingMessage) -> StoredAnswer | None:
        """The stored answer a button names, when ``who`` may see it; None otherwise (never raises).

        It must have been given on the same platform, in the same chat (and Slack workspace) and document space,
        and ``who`` must be allowed to ask in that chat: a button copied elsewhere, forged or guessed opens
        nothing, nor does one whose chat has since been moved to another space.
        """
        number = _answer_number(answer_id)
        if number is None or self.admit(who) is not None:
            return None
        try:
            stored = self.feedback.get_answer(number)
        except sqlite3.Error:
            logger.exception("could not read answer %s", number)
            return None
        if (stored is None or stored.platform != who.platform or stored.chat_id != who.chat_id
                or (stored.team_id and stored.team_id != who.team_id) or stored.space != self.space(who)[0]):
            logger.info("refused %s user %s a button of answer %s in chat %s", who.platform, who.user_id, number,
                        who.chat_id)
            return None
        return stored

    def helpdesk_chat(self, platform: str) -> str | None:
        """The help-desk conversation of ``platform``, when it and its responders are configured."""
        return self.settings.helpdesk_chat(platform)

    def index_kept(self) -> None:
        """Index the kept replies' folder and the inbox (at start), so they are sources again after the index
        was rebuilt."""
        s = self.settings
        for folder, used in ((s.answers_dir, any(map(self.helpdesk_chat, ("slack", "telegram")))),
                             (s.inbox, bool(s.admins("slack") or s.admins("telegram")))):
            if used and folder.is_dir() and isinstance(self.responder, Indexer):
                try:
                    self.responder.index([folder])
                except Exception:
                    logger.exception("could not index %s", folder)

    def may_upload(self, msg: IncomingMessage) -> bool:
        """Whether the sender may add documents by sending them: a listed admin (of a served Slack workspace)."""
        s = self.settings
        if msg.platform == "slack" and s.slack_allowed_teams and msg.team_id not in s.slack_allowed_teams:
            return False
        return msg.user_id in s.admins(msg.platform)

    async def ingest(self, msg: IncomingMessage, *, name: str, size: int | None, fetch: FetchFile) -> Reply:
        """A file sent to the bot as ``name`` (``size`` bytes, when the platform says): a listed admin's is
        fetched, saved in the inbox and indexed, with the limits of ``citebot index``; the reply says what
        became of it. Nothing is fetched for anybody else, nor for a file the index would skip unread."""
        if not self.may_upload(msg):
            logger.info("refused a file from %s user %s in chat %s", msg.platform, msg.user_id, msg.chat_id)
            return Reply("refused", UPLOAD_REFUSED)
        name, limits = safe_name(name), self.settings.retrieval
        reason = skip_reason(name, size or 0, limits)
        if reason:
            return Reply("not_indexed", UPLOAD_SKIPPED.format(name=name, reason=reason))
        try:
            data = await fetch(max_file_bytes(limits))
            reason = skip_reason(name, len(data), limits)
            if reason:
                return Reply("not_indexed", UPLOAD_SKIPPED.format(name=name, reason=reason))
            space, _ = self.space(msg)
            report = await asyncio.to_thread(self._inbox.put, name, data, self._index,
                                             within=kept_folder(space) if space else "")
        except Exception:
            logger.exception("could not add %s from %s user %s", name, msg.platform, msg.user_id)
            return Reply("error", UPLOAD_FAILED.format(name=name))
        logger.info("%s user %s posted %s: %s", msg.platform, msg.user_id, name, report.summary())
        return Reply("not_indexed" if report.skipped else "indexed", summary(name, report))

    async def digest(self, platform: str) -> tuple[str, str] | None:
        """The weekly digest of ``platform``'s question groups the documents did not answer, as (help-desk
        conversation, text); None when the digest is off, there is no help desk, or nothing to report."""
        chat = self.helpdesk_chat(platform)
        if chat is None or not self.settings.helpdesk_digest:
            return None
        try:
            gaps = await asyncio.to_thread(find_gaps, self.feedback, self.settings.retrieval,
                                           since=timedelta(days=DIGEST_DAYS), platform=platform)
        except Exception:
            logger.exception("could not make the %s digest", platform)
            return None
        text = digest_text(gaps, top=self.settings.helpdesk_digest_groups, days=DIGEST_DAYS)
        return (chat, text) if text else None

    async def escalate(self, answer_id: object, who: IncomingMessage, *, asker_name: str, reply_to: str,
                       post: PostEscalation) -> Reply:
        """An "Ask a person" click: the answer posted to the help desk by ``post``, once; or a refusal.

        ``reply_to`` is the message of ``who``'s chat that replies will answer (Slack thread, Telegram message).
        """
        helpdesk = self.helpdesk_chat(who.platform)
        stored = await asyncio.to_thread(self.answer_for, answer_id, who) if helpdesk else None
        if helpdesk is None or stored is None:
            return Reply("refused", UNAVAILABLE_TEXT)
        try:
            reserved = await asyncio.to_thread(
                self.feedback.open_escalation, stored.id, asker_id=who.user_id, asker_name=asker_name,
                reply_chat=who.chat_id, reply_to=reply_to, helpdesk_chat=helpdesk)
        except sqlite3.Error:
            logger.exception("could not store the escalation of answer %s", stored.id)
            return Reply("error", ESCALATION_FAILED)
        if reserved is None:
            return Reply("escalated", ALREADY_ESCALATED, answer_id=stored.id)
        try:
            message, link = await post(stored, helpdesk)
            await asyncio.to_thread(self.feedback.posted_escalation, reserved, message, link)
        except Exception:
            logger.exception("could not escalate answer %s to the help desk %s", stored.id, helpdesk)
            with contextlib.suppress(sqlite3.Error):
                await asyncio.to_thread(self.feedback.drop_escalation, reserved)
            return Reply("error", ESCALATION_FAILED)
        logger.info("escalated answer %s of %s user %s to %s", stored.id, who.platform, who.user_id, helpdesk)
        return Reply("escalated", ESCALATED_TEXT, answer_id=stored.id)

    def escalation_at(self, platform: str, chat_id: str, message: str) -> Escalation | None:
        """The escalation posted as ``message`` of the help-desk ``chat_id``, or None (never raises)."""
        if self.helpdesk_chat(platform) != chat_id:
            return None
        try:
            return self.feedback.escalation_at(platform, chat_id, message)
        except sqlite3.Error:
            logger.exception("could not look up the escalation at %s %s", chat_id, message)
            return None

    async def relay(self, msg: IncomingMessage, thread: str, *, responder_name: str, reply_ref: str,
                    post: PostRelay) -> Reply | None:
        """A help-desk message replying to the escalation posted as ``thread``; None when it replies to none.

        A listed responder's reply is passed to the asker by ``post``, then saved as a source named after
        ``reply_ref`` (the reply's message id) and indexed; anybody else's is ignored.
        """
        escalation = await asyncio.to_thread(self.escalation_at, msg.platform, msg.chat_id, thread)
        if escalation is None:
            return None
        text = sanitize(msg.text).strip()[:MAX_REPLY_CHARS]
        if msg.user_id not in self.settings.responders(msg.platform) or not text:
            logger.info("not relayed: %s user %s in the help desk is no responder (or wrote nothing)", msg.platform,
                        msg.user_id)
            return Reply("ignored", "")
        try:
            await post(escalation, RELAY_TEXT.format(responder=responder_name, text=text))
        except Exception:
            logger.exception("could not relay a reply to escalation %s", escalation.id)
            return Reply("error", RELAY_FAILED)
        kept = await asyncio.to_thread(self._keep, escalation, msg.user_id, responder_name, text, reply_ref)
        if kept is None:
            return Reply("relayed", RELAYED_UNSAVED)
        path, reply_id = kept
        return Reply("relayed", RELAYED_TEXT.format(document=path.name), kept=reply_id)

    async def withdraw(self, reply_id: object, who: IncomingMessage) -> Reply:
        """A Withdraw click under a kept reply: by a listed responder in the help desk, the reply's document is
        deleted and unindexed, so it is never cited again; anything else gets a refusal."""
        number = _answer_number(reply_id)
        if (number is None or who.chat_id != self.helpdesk_chat(who.platform)
                or who.user_id not in self.settings.responders(who.platform)):
            return Reply("refused", UNAVAILABLE_TEXT)
        try:
            removed = await asyncio.to_thread(self._forget, number, who.platform)
        except Exception:
            logger.exception("could not withdraw kept reply %s", number)
            return Reply("error", WITHDRAW_FAILED)
        if not removed:
            return Reply("refused", UNAVAILABLE_TEXT)
        logger.info("%s user %s withdrew kept reply %s", who.platform, who.user_id, number)
        return Reply("withdrawn", WITHDRAWN_TEXT)

    def _keep(self, escalation: Escalation, responder_id: str, responder_name: str, text: str,
              reply_ref: str) -> tuple[Path, int] | None:
        """Save a relayed reply as a source, index its folder and record it; None when that failed.

        The reply to an answer of a space is kept in that space's folder, so only the space cites it.
        """
        folder = self.settings.answers_dir
        try:
            stored = self.feedback.get_answer(escalation.answer_id)
            if stored is not None and stored.space:
                folder = folder / kept_folder(stored.space)
            path = answer_document(escalation, responder=responder_name, text=text, reply_ref=reply_ref,
                                   folder=folder)
            self._reindex()
            reply_id = self.feedback.record_reply(escalation.id, responder_id=responder_id,
                                                  responder_name=responder_name, text=text, document=str(path))
        except Exception:
            logger.exception("could not keep the reply to escalation %s as a source in %s", escalation.id, folder)
            return None
        logger.info("kept the reply to escalation %s as %s", escalation.id, path)
        return path, reply_id

    def _forget(self, reply_id: int, platform: str) -> bool:
        """Delete a kept reply's document and unindex it; False when it is not kept (any more).

        Marked withdrawn last, so a failure on the way leaves it kept and the button can be pressed again.
        """
        document = self.feedback.kept_document(reply_id, platform)
        if document is None:
            return False
        Path(document).unlink(missing_ok=True)  # a person may have deleted it already
        self._reindex()
        self.feedback.withdraw_reply(reply_id)
        return True

    def _reindex(self) -> None:
        # The whole folder: the index prunes what is gone from it, and picks up a person's edits.
        if isinstance(self.responder, Indexer):
            self.responder.index([self.settings.answers_dir])

    def _index(self, paths: list[Path]) -> SyncReport:
        if not isinstance(self.responder, Indexer):
            raise TypeError(f"{type(self.responder).__name__} cannot index files")
        return self.responder.index(paths)

    def _allowed(self, msg: IncomingMessage) -> bool:
        """Whether the allowlists let this message through; unknown platforms never pass.

        Within a platform, a listed chat (channel) or a listed user is enough; on Slack the workspace
        must also be listed when workspaces are.
        """
        s = self.settings
        if msg.platform in LOCAL_PLATFORMS:
            return True
        if msg.platform == "telegram":
            return _listed(msg.chat_id, msg.user_id, s.telegram_allowed_chats, s.telegram_allowed_users)
        if msg.platform == "slack":
            if s.slack_allowed_teams and msg.team_id not in s.slack_allowed_teams:
                return False
            return _listed(msg.chat_id, msg.user_id, s.slack_allowed_channels, s.slack_allowed_users)
        logger.warning("refused message from unknown platform %r", msg.platform)
        return False

    def history(self, msg: IncomingMessage) -> list[Turn]:
        """The recent turns of the message's conversation, oldest first."""
        with self._history_lock:
            return list(self._history.get((msg.platform, msg.conversation_id), ()))

    async def indexed_documents(self, msg: IncomingMessage) -> list[dict[str, Any]] | None:
        """The indexed documents (source, title, identifiers) of the message's space, or None when the
        responder cannot tell."""
        if not isinstance(self.responder, Catalogue):
            return None
        try:
            return await asyncio.to_thread(self.responder.sources, scope=self.space(msg)[1])
        except Exception:
            logger.exception("could not list the indexed documents")
            return None

    def _record_vote(self, answer_id: int, who: IncomingMessage, vote: int) -> bool:
        try:
            return self.feedback.record_vote(answer_id, who.platform, who.user_id, vote)
        except sqlite3.Error:
            logger.exception("could not store a vote on answer %s from %s user %s", answer_id, who.platform,
                             who.user_id)
            return False

    def _still_indexed(self, stored: StoredAnswer, scope: Scope | None) -> StoredAnswer:
        """``stored`` with only the citations whose passage is still indexed, inside ``scope`` and still holds
        the quote.

        Checked at every showing rather than purged when the index changes: the index is changed by another
        process (``citebot index``) that knows nothing of the bots, and a document put back is quotable again.
        A citation stored without its passage id cannot be checked, so it is left out too. When the index
        cannot be reached, no quote is shown.
        """
        ids = [c.passage_id for c in stored.citations if c.passage_id]
        try:
            indexed = {p.id: p.text for p in self.responder.passages(ids, scope=scope)} if ids else {}
        except Exception:
            logger.exception("could not check the sources of answer %s against the index", stored.id)
            indexed = {}
        kept: list[StoredCitation] = [c for c in stored.citations
                                      if c.passage_id in indexed and c.quote in indexed[c.passage_id]]
        if len(kept) == len(stored.citations):
            return stored
        return replace(stored, citations=kept, withdrawn=len(stored.citations) - len(kept))

    def _answer(self, msg: IncomingMessage, question: str, history: Sequence[Turn], notice: str,
                on_sentence: SentenceCallback | None, space: str, scope: Scope | None) -> tuple[Answer, int | None]:
        """The answer and its feedback id, made on one worker thread.

        A second trip to the thread pool for storing would queue behind every question of a burst: even the
        first asker would hear back only once the last question had been answered.
        """
        answer = self.responder.answer(question, history, on_sentence, scope=scope)
        if notice:
            answer = replace(answer, notice="\n".join(filter(None, (notice, answer.notice))))
        return answer, self._record(msg, question, answer, space)

    def _record(self, msg: IncomingMessage, question: str, answer: Answer, space: str) -> int | None:
        # A full disk, a locked database or text SQLite cannot encode must not cost the user the answer:
        # it only loses the buttons.
        try:
            return self.feedback.record_answer(
                platform=msg.platform, conversation_id=msg.conversation_id, user_id=msg.user_id,
                question=question, answer=answer, chat_id=msg.chat_id, team_id=msg.team_id, space=space,
            )
        except Exception:
            logger.exception("could not store the answer for %s conversation %s", msg.platform,
                             msg.conversation_id)
            return None

    def _remember(self, msg: IncomingMessage, turn: Turn) -> None:
        key = (msg.platform, msg.conversation_id)
        with self._history_lock:
            turns = self._history.pop(key, None) or deque(maxlen=self.settings.retrieval.history_turns)
            turns.append(turn)
            self._history[key] = turns
            if len(self._history) > MAX_TRACKED:
                self._history.popitem(last=False)


def _answer_number(value: object) -> int | None:
    """The answer id a button carries, or None when it is no row id at all."""
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if 0 < number <= MAX_ANSWER_ID else None


def _listed(chat_id: str, user_id: str, chats: Sequence[object], users: Sequence[object]) -> bool:
    """Open when both lists are empty; otherwise the chat or the user must be listed."""
    if not chats and not users:
        return True
    return chat_id in {str(c) for c in chats} or user_id in {str(u) for u in users}
