"""The bot's own types: answers as the feedback database keeps them, shared by the core, storage and render.

A ``StoredAnswer`` is what a button refers to after the answer's message was sent (even after a restart): the
question, the text and its ``StoredCitation`` list, and where it was given (platform, chat, workspace), which
decides who may see it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from retrieval import Citation


@dataclass(frozen=True)
class StoredCitation:
    """A citation as stored with its answer: enough to show the source again after a restart.

    ``passage_id`` names the indexed passage quoted, so the quote is shown again only while that passage is
    still indexed; citations stored before it was recorded have none.
    """

    number: int
    title: str
    source: str
    location: str
    quote: str
    doi: str = ""
    pmid: str = ""
    pmcid: str = ""
    passage_id: str = ""

    @classmethod
    def from_citation(cls, c: Citation) -> StoredCitation:
        ids = c.identifiers
        return cls(
            number=c.number,
            title=c.passage.title,
            source=c.passage.source,
            location=c.passage.location,
            quote=c.quote,
            doi=ids.get("doi", ""),
            pmid=ids.get("pmid", ""),
            pmcid=ids.get("pmcid", ""),
            passage_id=c.passage.id,
        )


@dataclass(frozen=True)
class StoredAnswer:
    """One answered (or declined) question, as the feedback database holds it.

    ``withdrawn`` counts the citations left out because their passage is no longer indexed.
    """

    id: int
    platform: str
    conversation_id: str
    user_id: str
    question: str
    text: str
    found: bool
    mode: str
    citations: list[StoredCitation]
    created_at: str
    chat_id: str = ""  # telegram chat / slack channel the answer was given in
    team_id: str = ""  # slack workspace
    withdrawn: int = 0
    space: str = ""  # the document space it was answered from (``bot.spaces``); "" without a spaces file


@dataclass(frozen=True)
class Escalation:
    """An answer someone asked a person about: where it went in the help desk and where replies go back.

    ``reply_chat`` and ``reply_to`` name the asker's conversation and the message (Slack thread ts, Telegram
    message id) a relayed reply answers; ``helpdesk_message`` is the post in the help-desk conversation whose
    thread (Slack) or replies (Telegram) carry the responders' answers.
    """

    id: int
    answer_id: int
    platform: str
    question: str
    asker_id: str
    asker_name: str
    reply_chat: str
    reply_to: str
    helpdesk_chat: str
    helpdesk_message: str
    link: str
    created_at: str
