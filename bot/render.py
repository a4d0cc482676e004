"""An ``Answer`` as each front end shows it: terminal text, Telegram HTML or plain text, Slack Block Kit.

Pure functions, no platform library. Everything that comes from documents is escaped for the target format
before our own markup (links, bold) is added around it. Long answers are cut into messages within each
platform's limit at the coarsest boundary that works (paragraph, line, sentence, word, character), never
inside a ``[n]`` citation marker; lengths are counted in UTF-16 code units, as Telegram does.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from bot.text import sanitize
from bot.texts import ASK_PERSON_BUTTON, ESCALATION_LINK, ESCALATION_TEXT, WITHDRAW_BUTTON
from bot.types import StoredAnswer, StoredCitation
from retrieval import MARKER, NOT_FOUND_PHRASE, Answer, Citation

logger = logging.getLogger(__name__)

TELEGRAM_LIMIT = 4096  # characters per message
SLACK_SECTION_LIMIT = 3000  # characters per section or context element text
SLACK_MAX_BLOCKS = 50
SLACK_CONTEXT_ELEMENTS = 10
ACTION_SOURCES = "citebot_sources"
ACTION_VOTE_UP = "citebot_vote_up"
ACTION_VOTE_DOWN = "citebot_vote_down"
ACTION_ASK_PERSON = "citebot_ask_person"
ACTION_WITHDRAW = "citebot_withdraw"
ESCALATION_QUESTION_CHARS = 600  # of the question in a help-desk post
ESCALATION_ANSWER_CHARS = 2000  # of the answer the asker saw, in a help-desk post

QUOTE_CHARS = 200  # quotes in a one-line source
PAGE_QUOTE_CHARS = 1200  # quotes on the "Sources" pages
_TITLE_CHARS = 150
_FIELD_CHARS = 100  # a location (page, section)
_CLOSEST = 3  # passages listed under a declined answer
_LOCATIONS = 3  # pages or sections named in a source line at most
_SLACK_SOURCE_BLOCKS = 4  # context blocks of sources at most; the rest are counted, not listed

_MARKER = MARKER.pattern  # the library's own grammar: a cut never falls inside a marker it writes
# Each level: citation markers (skipped, so never cut) or a separator to cut at. Coarsest first.
_LEVELS = tuple(
    re.compile(f"{_MARKER}|{sep}")
    for sep in (r"(?P<sep>\n[ \t]*\n\s*)", r"(?P<sep>\n\s*)", r"(?<=[.!?…])(?P<sep>\s+)", r"(?P<sep>\s+)")
)
_ATOM = re.compile(f"{_MARKER}|.", re.DOTALL)
# Identifiers that do not look right are left out: they are metadata noise and would make broken links.
_DOI = re.compile(r"10\.\d{4,9}/[!-~]{1,80}")
_PMID = re.compile(r"\d{1,10}")
_PMCID = re.compile(r"PMC\d{1,10}")

Piece = tuple[str, str]  # (separator before it, rendered text)


@dataclass(frozen=True)
class _Style:
    """How one output format escapes document text and marks up our own."""

    escape: Callable[[str], str]
    link: Callable[[str, str], str]  # (url, escaped text) -> markup
    bold: Callable[[str], str]
    italic: Callable[[str], str]
    quote: Callable[[str], str]  # escaped one-line quotation -> markup


def _mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _same(text: str) -> str:
    return text


_PLAIN = _Style(_same, lambda url, text: text, _same, _same, lambda text: f"“{text}”")
_HTML = _Style(
    lambda text: html.escape(text, quote=False),
    lambda url, text: f'<a href="{html.escape(url)}">{text}</a>',
    lambda text: f"<b>{text}</b>",
    lambda text: f"<i>{text}</i>",
    lambda text: f"<blockquote>{text}</blockquote>",
)
_MRKDWN = _Style(
    _mrkdwn_escape,
    lambda url, text: f"<{url}|{text}>",
    lambda text: f"*{text}*",
    lambda text: f"_{text}_",
    lambda text: f">{text}",
)


def width(text: str) -> int:
    """Length in UTF-16 code units, the measure of Telegram's limits (an emoji counts twice)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def shorten(text: str, limit: int, measure: Callable[[str], int] = width) -> str:
    """``text`` on one line, cut at a word with "…" so that ``measure`` of it is at most ``limit``."""
    return clip(" ".join(sanitize(text).split()), limit, measure)


def clip(text: str, limit: int, measure: Callable[[str], int] = width) -> str:
    """``text`` as it is, or cut at a word with "…" so that ``measure`` of it is at most ``limit``."""
    if measure(text) <= limit:
        return text
    low, high = 0, len(text)  # the longest prefix that fits with its ellipsis
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if measure(text[:mid] + "…") <= limit else (low, mid - 1)
    cut = text[:low]
    if " " in cut[len(cut) // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


# --- sources -------------------------------------------------------------------------------------------


def _flat(c: Citation | StoredCitation) -> StoredCitation:
    return StoredCitation.from_citation(c) if isinstance(c, Citation) else c


def groups(citations: Sequence[Citation | StoredCitation]) -> list[list[StoredCitation]]:
    """The citations of one answer grouped by number: one group per cited document, in number order."""
    by_number: dict[int, list[StoredCitation]] = {}
    for c in citations:
        by_number.setdefault(c.number, []).append(_flat(c))
    return [by_number[n] for n in sorted(by_number)]


def _identifiers(c: StoredCitation) -> Iterator[tuple[str, str, str]]:
    """(label, value, url) for the well-formed DOI, PMID and PMCID a citation carries."""
    doi = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:\s*)", "", c.doi.strip(), flags=re.IGNORECASE)
    if _DOI.fullmatch(doi):
        yield "DOI", doi, f"https://doi.org/{quote(doi, safe='/:;()._-')}"
    pmid = c.pmid.strip()
    if _PMID.fullmatch(pmid):
        yield "PMID", pmid, f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
    pmcid = c.pmcid.strip().upper()
    if _PMCID.fullmatch(pmcid):
        yield "PMCID", pmcid, f"https://pmc.ncbi.nlm.nih.gov/articles/{pmcid}/"


def _locations(group: Sequence[StoredCitation]) -> list[str]:
    return list(dict.fromkeys(c.location for c in group if c.location))


def _source(group: Sequence[StoredCitation], style: _Style) -> str:
    """``[n] Title, DOI …, PMID …, page 3, page 5`` with the title linked to the first identifier's page."""
    first = group[0]
    ids = list(_identifiers(first))
    title = style.escape(shorten(first.title or first.source or "untitled", _TITLE_CHARS))
    parts = [style.link(ids[0][2], title) if ids else title]
    parts += [f"{label} {style.link(url, style.escape(value))}" for label, value, url in ids]
    parts += [style.escape(shorten(where, _FIELD_CHARS)) for where in _locations(group)[:_LOCATIONS]]
    return f"[{first.number}] " + ", ".join(parts)


def source_line(group: Sequence[Citation | StoredCitation]) -> str:
    """One cited document as plain text: its ``[n]`` line, the file it is (two documents may share a title),
    then each quoted sentence on a line of its own."""
    flat = [_flat(c) for c in group]
    path = [f"    {sanitize(flat[0].source)}"] if flat[0].source and flat[0].source != flat[0].title else []
    quotes = [f'    "{shorten(c.quote, QUOTE_CHARS)}"' for c in flat]
    return "\n".join([_source(flat, _PLAIN), *path, *quotes])


def _source_entry(group: Sequence[StoredCitation], style: _Style, limit: int) -> str:
    """A source and its quotations, within ``limit``."""
    head = _source(group, style)
    budget = min(PAGE_QUOTE_CHARS, (limit - width(head)) // len(group) - width(style.quote("")) - 1)
    quotes = [shorten(c.quote, budget, lambda s: width(style.escape(s))) for c in group] if budget > 10 else []
    return "\n".join([head, *(style.quote(style.escape(q)) for q in quotes if q)])


def _closest(answer: Answer, style: _Style) -> list[str]:
    """Title and location of the first passages of a declined answer."""
    lines = []
    for p in answer.passages[:_CLOSEST]:
        where = ", ".join(filter(None, (shorten(p.title, _TITLE_CHARS), shorten(p.location, _FIELD_CHARS))))
        lines.append("• " + style.escape(where))
    return lines


# --- splitting -----------------------------------------------------------------------------------------


def _split_at(text: str, pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """(separator before, piece) around the separators ``pattern`` finds; blank pieces dropped."""
    pieces, sep, start = [], "", 0
    for m in pattern.finditer(text):
        if m.group("sep") is None:
            continue
        if text[start : m.start()].strip():
            pieces.append((sep, text[start : m.start()]))
            sep = m.group("sep")
        start = m.end()
    if text[start:].strip():
        pieces.append((sep, text[start:]))
    return pieces


def _pieces(text: str, style: _Style, limit: int, level: int = 0, sep: str = "") -> Iterator[Piece]:
    """Rendered pieces of ``text``, each within ``limit``, cut as coarsely as possible."""
    rendered = style.escape(text)
    if width(rendered) <= limit:
        yield sep, rendered
    elif level < len(_LEVELS):
        for i, (own_sep, part) in enumerate(_split_at(text, _LEVELS[level])):
            yield from _pieces(part, style, limit, level + 1, sep if i == 0 else own_sep)
    else:
        for i, m in enumerate(_ATOM.finditer(text)):
            yield (sep if i == 0 else ""), style.escape(m.group())


def _pack(pieces: Iterable[Piece], limit: int, *, max_pieces: int = 0) -> list[str]:
    """Join pieces (each within ``limit``) greedily into as few messages within ``limit`` as possible."""
    messages: list[str] = []
    current: list[str] = []
    used = count = 0
    for sep, text in pieces:
        grown = used + width(sep) + width(text)
        if current and (grown > limit or count == max_pieces > 0):
            messages.append("".join(current).strip())
            current, used, count = [], 0, 0
            sep, grown = "", width(text)
        current += [sep, text]
        used, count = grown, count + 1
    if current:
        messages.append("".join(current).strip())
    return [m for m in messages if m]


def _body(answer: Answer, style: _Style, limit: int) -> list[Piece]:
    """The notice, the answer text and (declined) the closest passages, as pieces."""
    pieces: list[Piece] = []
    if answer.notice.strip():
        pieces.append(("", style.italic(style.escape(shorten(answer.notice, 500)))))
    text = sanitize(answer.text)
    if not text.strip() and not answer.citations:
        text = NOT_FOUND_PHRASE
    if text.strip():
        parts = list(_pieces(text, style, limit))
        pieces += [("\n\n", parts[0][1]), *parts[1:]]
    if not answer.found:
        pieces += _titled("Closest passages (not cited):", _closest(answer, style), style)
    return pieces


def _titled(title: str, lines: Sequence[str], style: _Style) -> list[Piece]:
    """Lines under a bold title, as pieces; the title sticks to the first line when messages are cut."""
    return [("\n", line) if i else ("\n\n", f"{style.bold(title)}\n{line}") for i, line in enumerate(lines)]


def _source_lines(citations: Sequence[Citation | StoredCitation], style: _Style) -> list[Piece]:
    return _titled("Sources", [_source(g, style) for g in groups(citations)], style)


# --- terminal ------------------------------------------------------------------------------------------


def to_terminal(answer: Answer) -> str:
    """The answer as the terminal shows it: text, then the sources with their quotes (or closest passages)."""
    parts = [sanitize(answer.notice).strip(), sanitize(answer.text).strip() or NOT_FOUND_PHRASE]
    if answer.citations:
        parts.append("Sources:\n" + "\n".join(source_line(g) for g in groups(answer.citations)))
    elif not answer.found and answer.passages:
        parts.append("Closest passages (not cited):\n" + "\n".join(_closest(answer, _PLAIN)))
    return "\n\n".join(p for p in parts if p)


# --- Telegram ------------------------------------------------------------------------------------------


def _telegram(answer: Answer, style: _Style) -> list[str]:
    return _pack([*_body(answer, style, TELEGRAM_LIMIT), *_source_lines(answer.citations, style)],
                 TELEGRAM_LIMIT)


def to_telegram_html(answer: Answer) -> list[str]:
    """Messages for Telegram's HTML parse mode, each within 4,096 characters, sources at the end."""
    return _telegram(answer, _HTML)


def _withdrawn(answer: Answer | StoredAnswer) -> list[str]:
    """The line saying how many quoted passages are no longer indexed (and so not shown), if any."""
    n = answer.withdrawn if isinstance(answer, StoredAnswer) else 0
    if not n:
        return []
    return ["1 quoted passage is no longer in the index." if n == 1 else
            f"{n} quoted passages are no longer in the index."]


def sources_pages_telegram(answer: Answer | StoredAnswer, page_size: int = 5) -> list[str]:
    """The quoted passages in Telegram HTML, at most ``page_size`` sources a page, each within limits."""
    if not answer.citations:
        return [html.escape(" ".join(_withdrawn(answer)) or "This answer cites no passages.")]
    room = TELEGRAM_LIMIT - 40  # for the page header
    entries = [("\n\n", _source_entry(g, _HTML, room)) for g in groups(answer.citations)]
    entries += [("\n\n", _HTML.italic(line)) for line in _withdrawn(answer)]
    pages = _pack(entries, room, max_pieces=page_size)
    if len(pages) == 1:
        return [f"<b>Sources</b>\n\n{pages[0]}"]
    return [f"<b>Sources {i}/{len(pages)}</b>\n\n{page}" for i, page in enumerate(pages, 1)]


# --- Slack ---------------------------------------------------------------------------------------------


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(texts: Sequence[str]) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts]}


def _button(text: str, action_id: str, value: str) -> dict:
    return {"type": "button", "text": {"type": "plain_text", "text": text, "emoji": True},
            "action_id": action_id, "value": value}


def _slack_sources(citations: Sequence[Citation]) -> list[dict]:
    """Context blocks listing the sources, one element each, ten elements a block."""
    lines = [_source(g, _MRKDWN) for g in groups(citations)]
    room = _SLACK_SOURCE_BLOCKS * SLACK_CONTEXT_ELEMENTS
    if len(lines) > room:
        lines = lines[: room - 1] + [f"… and {len(lines) - room + 1} more sources"]
    step = SLACK_CONTEXT_ELEMENTS
    return [_context(lines[i : i + step]) for i in range(0, len(lines), step)]


def to_slack_blocks(answer: Answer, answer_id: int | None, *, ask_person: bool = False) -> tuple[str, list[dict]]:
    """(notification text, blocks): the answer in sections, its sources, and the sources/vote buttons, with
    "Ask a person" when ``ask_person``.

    Without an ``answer_id`` (the answer could not be stored) there are no buttons.
    """
    sources = _slack_sources(answer.citations)
    actions = []
    if answer_id is not None:
        value = str(answer_id)
        buttons = [_button("👍", ACTION_VOTE_UP, value), _button("👎", ACTION_VOTE_DOWN, value)]
        if answer.citations:
            buttons.insert(0, _button("Show sources", ACTION_SOURCES, value))
        if ask_person:
            buttons.append(_button(ASK_PERSON_BUTTON, ACTION_ASK_PERSON, value))
        actions = [{"type": "actions", "block_id": "citebot_actions", "elements": buttons}]
    sections = [_section(t) for t in _pack(_body(answer, _MRKDWN, SLACK_SECTION_LIMIT), SLACK_SECTION_LIMIT)]
    room = SLACK_MAX_BLOCKS - len(sources) - len(actions)
    if len(sections) > room:
        logger.warning("answer too long for Slack: %d sections, %d shown", len(sections), room - 1)
        sections = sections[: room - 1] + [_section("_… the answer is too long for Slack and was cut here._")]
    fallback = shorten(answer.text, SLACK_SECTION_LIMIT, lambda s: width(_mrkdwn_escape(s)))
    return _mrkdwn_escape(fallback) or NOT_FOUND_PHRASE, [*sections, *sources, *actions]


def sources_blocks_slack(answer: Answer | StoredAnswer) -> tuple[str, list[dict]]:
    """(notification text, blocks) with each cited source and its quoted passage."""
    title = _mrkdwn_escape(f"Sources for: {shorten(answer.question, 200)}")  # the asker's words, any markup
    if not answer.citations:
        return title, [_section(" ".join(_withdrawn(answer)) or "This answer cites no passages.")]
    entries = [_source_entry(g, _MRKDWN, SLACK_SECTION_LIMIT) for g in groups(answer.citations)]
    room = SLACK_MAX_BLOCKS - len(_withdrawn(answer))
    if len(entries) > room:
        extra = len(entries) - room + 1
        entries = entries[: room - 1] + [f"… and {extra} more sources"]
    return title, [_section(e) for e in [*entries, *(_MRKDWN.italic(line) for line in _withdrawn(answer))]]


# --- drafts: an answer shown while it is written, until the verified answer replaces it -----------------


def telegram_draft(text: str) -> str:
    """A streamed draft as a Telegram message without markup, within the message limit."""
    return clip(text, TELEGRAM_LIMIT)


def slack_draft(text: str) -> str:
    """A streamed draft as Slack message text: escaped, within a section's limit."""
    return slack_plain(text)


def slack_plain(text: str) -> str:
    """``text`` as Slack message text showing as written: escaped, within a section's limit."""
    return _mrkdwn_escape(clip(text, SLACK_SECTION_LIMIT, lambda s: width(_mrkdwn_escape(s))))


# --- the help desk -----------------------------------------------------------------------------------


def escalation_text(stored: StoredAnswer, *, asker: str, link: str, slack: bool) -> str:
    """The help-desk post of an "Ask a person" click: who asked, the question and the answer text the asker saw.

    ``asker`` is already in the platform's form (a Slack mention, a Telegram name). Only the answer's text goes,
    no quotes of its sources: the help desk sees nothing of the documents the asker did not see. Telegram
    gets plain text (sent without a parse mode); Slack's is escaped.
    """
    escape = _mrkdwn_escape if slack else _same
    return ESCALATION_TEXT.format(
        asker=asker,
        question=escape(shorten(stored.question, ESCALATION_QUESTION_CHARS)),
        answer=escape(clip(sanitize(stored.text), ESCALATION_ANSWER_CHARS)),
        link=ESCALATION_LINK.format(link=link) if link else "",
    )


def kept_blocks_slack(text: str, reply_id: int) -> tuple[str, list[dict]]:
    """(notification text, blocks): the help desk's confirmation that a reply was kept, with its Withdraw button."""
    plain = slack_plain(text)
    return plain, [_section(plain), {"type": "actions", "block_id": "citebot_kept",
                                     "elements": [_button(WITHDRAW_BUTTON, ACTION_WITHDRAW, str(reply_id))]}]
