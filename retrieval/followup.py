"""Follow-up questions made standalone before retrieval.

"And which of those are in clinical trials?" retrieves nothing useful on its own: "those" lives in the
conversation. With a language model configured, it rewrites the follow-up (``CONDENSE_QUESTION_PROMPT``);
offline, or when the model fails, a history-aware rule adds the key words of the question it follows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from retrieval.errors import LLMError
from retrieval.grounding import strip_markers
from retrieval.keyword import analyze
from retrieval.prompts import CONDENSE_QUESTION_PROMPT
from retrieval.types import Turn

if TYPE_CHECKING:
    from retrieval.llm import ChatClient

logger = logging.getLogger(__name__)

History = Sequence[Turn]  # earlier turns, oldest first; the pipeline passes the last ``history_turns``

# Words that point back into the conversation.
_ANAPHORA = frozenset({"it", "its", "they", "them", "their", "those", "these", "this", "that", "such", "ones"})
# Pronouns that stand for the earlier topic, so the topic can take their place.
_STAND_INS = re.compile(r"\b(?:those|these|they|them|it)\b", re.IGNORECASE)
_CONTINUATIONS = ("and ", "or ", "but ", "also ", "so ", "then ", "what about ", "how about ")
_SHORT = 2  # a question with at most this many key terms ("Why?", "Side effects?") leans on the previous one
_ANSWER_CHARS = 400  # of each earlier answer shown to the model: enough for what "those" may mean
_WORD = re.compile(r"[\w][\w-]*")
# Words too common to carry a topic over; the keyword index's stop list is short and keeps them.
_FUNCTION_WORDS = frozenset(
    {"do", "does", "did", "i", "me", "my", "we", "our", "you", "your", "can", "could", "should", "would", "may"}
    | {"might", "must", "have", "has", "had", "about", "tell", "please", "there", "any", "all", "some", "get"}
)


def is_followup(question: str) -> bool:
    """Does ``question`` lean on an earlier turn: a pointing word, a continuation, or almost no key terms?"""
    lowered = question.lower().strip()
    words = set(re.findall(r"[a-z]+", lowered))
    return bool(words & _ANAPHORA) or lowered.startswith(_CONTINUATIONS) or len(set(analyze(question))) <= _SHORT


def condense_offline(question: str, history: History) -> str:
    """The follow-up with the key words of the question it follows in place of its pronoun.

    "And which of those are in clinical trials?" after "What are the therapeutic targets in the TME?"
    becomes "And which of therapeutic targets TME are in clinical trials?"; a follow-up without such a
    pronoun ("Side effects?") gets the key words appended in brackets.
    """
    if not history or not is_followup(question):
        return question
    previous = condense_offline(history[-1][0], history[:-1])
    have = set(analyze(question))
    extra: dict[str, str] = {}  # stem -> first surface form
    for word in _WORD.findall(previous):
        if word.lower() in _FUNCTION_WORDS or word.lower() in _ANAPHORA:
            continue
        for stem in analyze(word):
            if stem not in have:
                extra.setdefault(stem, word)
    if not extra:
        return question
    topic = " ".join(extra.values())
    # The pronoun itself would pull in passages that merely share it ("Those vaccines ...").
    replaced, count = _STAND_INS.subn(topic, question.strip(), count=1)
    return replaced if count else f"{question.strip()} ({topic})"


def condense_question(question: str, history: History, chat: ChatClient | None = None) -> str:
    """A standalone version of ``question``: by the model when ``chat`` is given, else offline.

    Without history the question is returned as is; when the model fails, the offline rule answers.
    """
    if not history:
        return question
    if chat is None:
        return condense_offline(question, history)
    try:
        generation = chat.generate(_condense_messages(question, history))
    except LLMError as exc:
        logger.warning("condensing the follow-up offline: %s", exc)
        return condense_offline(question, history)
    condensed = _first_line(generation.text)
    logger.info("condensed %r to %r", question, condensed)
    return condensed or condense_offline(question, history)


def _condense_messages(question: str, history: History) -> list[tuple[str, str]]:
    lines = []
    for asked, answered in history:
        lines += [f"User: {asked}", f"Assistant: {strip_markers(answered)[:_ANSWER_CHARS]}"]
    return [("human", CONDENSE_QUESTION_PROMPT.format(history="\n".join(lines), question=question))]


def _first_line(text: str) -> str:
    """The model's question without a label or quotes around it."""
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    line = re.sub(r"^(?:standalone question|question)\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip("\"'` ")
