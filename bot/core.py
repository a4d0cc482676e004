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

The core imports no platform library and never raises to the adapter.

An adapter that shows answers while they are written passes ``on_sentence``: a plain callable the responder
calls with each verified sentence of a language-model answer (markers removed), on the worker thread the
responder runs in (see ``bot.streaming``). Extractive answers, refusals and limits never call it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, runtime_checkable

from bot.feedback import FeedbackStore
from bot.settings import BotSettings
from bot.text import sanitize
from bot.texts import (
    ERROR_TEXT,
    RATE_LIMIT_TEXT,
    REFUSAL_TEXT,
    TRUNCATED_NOTICE,
    UNAVAILABLE_TEXT,
    USAGE_TEXT,
    VOTE_THANKS,
)
from bot.types import StoredAnswer, StoredCitation
from retrieval import Answer, Passage, SentenceCallback, Turn

logger = logging.getLogger(__name__)

# Conversations whose history (and users whose rate-limit window) are remembered at most; the oldest go first.
MAX_TRACKED = 10_000

# The local terminal user is the operator: no allowlist, no rate limit.
LOCAL_PLATFORMS = frozenset({"cli"})

ReplyKind = Literal["answer", "declined", "refused", "rate_limited", "invalid", "error", "sources", "voted"]
MAX_ANSWER_ID = 2**63 - 1  # SQLite's largest row id: a bigger number in a button was never ours


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


class Responder(Protocol):
    """Whatever writes the answers: the retrieval library in production, a small fake in tests.

    ``on_sentence``, when given, receives the verified sentences of an answer as a language model writes them.
    ``passages`` returns those of ``ids`` that are still indexed, so a removed document is never quoted again.
    """

    def answer(self, question: str, history: Sequence[Turn], on_sentence: SentenceCallback | None = None) -> Answer: ...

    def passages(self, ids: Sequence[str]) -> list[Passage]: ...


@runtime_checkable
class Catalogue(Protocol):
    """A responder that can also list its indexed documents, for the bots' help texts."""

    def sources(self) -> list[dict[str, Any]]: ...


class RateLimiter:
    """Sliding-window limit of ``limit`` events per ``window`` seconds per key; thread-safe."""

    def __init__(self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: OrderedDict[object, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: object) -> float:
        """Count an event for ``key`` and return 0, or return the seconds to wait when over the limit."""
        if self.limit == 0:
            return 0.0
        now = self._clock()
        with self._lock:
            events = self._events.pop(key, None) or deque()
            while events and events[0] <= now - self.window:
                events.popleft()
            wait = events[0] + self.window - now if len(events) >= self.limit else 0.0
            if not wait:
                events.append(now)
            self._events[key] = events
            if len(self._events) > MAX_TRACKED:
                self._events.popitem(last=False)
        return wait


class ChatCore:
    """Access control, cleaning, rate limits and history around a ``Responder``.

    Args:
        responder: writes the answers.
        settings: allowlists and limits.
        feedback: stores every answer and the votes on it.
        clock: monotonic seconds, for the rate limiter.
    """

    def __init__(self, responder: Responder, settings: BotSettings, feedback: FeedbackStore, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.responder = responder
        self.settings = settings
        self.feedback = feedback
        self._limiter = RateLimiter(settings.rate_limit_questions, settings.rate_limit_window, clock=clock)
        self._history: OrderedDict[tuple[str, str], deque[Turn]] = OrderedDict()
        self._history_lock = threading.Lock()

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
        try:
            answer, answer_id = await asyncio.to_thread(self._answer, msg, question, self.history(msg), notice,
                                                        on_sentence)
        except Exception:
            logger.exception(
                "answering failed: %s conversation %s user %s, question of %d characters",
                msg.platform, msg.conversation_id, msg.user_id, len(question),
            )
            return Reply("error", ERROR_TEXT)
        self._remember(msg, Turn(question, answer.text))
        return Reply("answer" if answer.found else "declined", answer.text, answer, answer_id)

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
        return Reply("sources", "", answer_id=stored.id, stored=await asyncio.to_thread(self._still_indexed, stored))

    async def vote(self, answer_id: object, who: IncomingMessage, vote: int) -> Reply:
        """A 👍 (+1) / 👎 (-1) click: stored when the voter may see the answer; otherwise a refusal."""
        stored = await asyncio.to_thread(self.answer_for, answer_id, who) if vote in (1, -1) else None
        if stored is None or not await asyncio.to_thread(self._record_vote, stored.id, who, vote):
            return Reply("refused", UNAVAILABLE_TEXT)
        return Reply("voted", VOTE_THANKS.format(emoji="👍" if vote > 0 else "👎"), answer_id=stored.id)

    def answer_for(self, answer_id: object, who: IncomingMessage) -> StoredAnswer | None:
        """The stored answer a button names, when ``who`` may see it; None otherwise (never raises).

        It must have been given on the same platform, in the same chat (and Slack workspace), and ``who`` must
        be allowed to ask in that chat: a button copied elsewhere, forged or guessed opens nothing.
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
                or (stored.team_id and stored.team_id != who.team_id)):
            logger.info("refused %s user %s a button of answer %s in chat %s", who.platform, who.user_id, number,
                        who.chat_id)
            return None
        return stored

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

    async def indexed_documents(self) -> list[dict[str, Any]] | None:
        """The indexed documents (source, title, identifiers), or None when the responder cannot tell."""
        if not isinstance(self.responder, Catalogue):
            return None
        try:
            return await asyncio.to_thread(self.responder.sources)
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

    def _still_indexed(self, stored: StoredAnswer) -> StoredAnswer:
        """``stored`` with only the citations whose passage is still indexed and still holds the quote.

        Checked at every showing rather than purged when the index changes: the index is changed by another
        process (``citebot index``) that knows nothing of the bots, and a document put back is quotable again.
        A citation stored without its passage id cannot be checked, so it is left out too. When the index
        cannot be reached, no quote is shown.
        """
        ids = [c.passage_id for c in stored.citations if c.passage_id]
        try:
            indexed = {p.id: p.text for p in self.responder.passages(ids)} if ids else {}
        except Exception:
            logger.exception("could not check the sources of answer %s against the index", stored.id)
            indexed = {}
        kept: list[StoredCitation] = [c for c in stored.citations
                                      if c.passage_id in indexed and c.quote in indexed[c.passage_id]]
        if len(kept) == len(stored.citations):
            return stored
        return replace(stored, citations=kept, withdrawn=len(stored.citations) - len(kept))

    def _answer(self, msg: IncomingMessage, question: str, history: Sequence[Turn], notice: str,
                on_sentence: SentenceCallback | None) -> tuple[Answer, int | None]:
        """The answer and its feedback id, made on one worker thread.

        A second trip to the thread pool for storing would queue behind every question of a burst: even the
        first asker would hear back only once the last question had been answered.
        """
        answer = self.responder.answer(question, history, on_sentence)
        if notice:
            answer = replace(answer, notice="\n".join(filter(None, (notice, answer.notice))))
        return answer, self._record(msg, question, answer)

    def _record(self, msg: IncomingMessage, question: str, answer: Answer) -> int | None:
        # A full disk, a locked database or text SQLite cannot encode must not cost the user the answer:
        # it only loses the buttons.
        try:
            return self.feedback.record_answer(
                platform=msg.platform, conversation_id=msg.conversation_id, user_id=msg.user_id,
                question=question, answer=answer, chat_id=msg.chat_id, team_id=msg.team_id,
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
