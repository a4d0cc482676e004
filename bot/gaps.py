"""What the documents are missing: the questions declined, voted 👎 or escalated, grouped by meaning.

``find_gaps`` reads them from the feedback store and groups them with the packaged embedder
(``retrieval.group_by_meaning``); ``citebot gaps`` prints the groups, and the weekly digest (``digest_text``)
posts the top ones to the help-desk conversation. A group says how often it was asked, in which wordings, and
whether a person's answer to one of them is now kept as a source.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.feedback import FeedbackStore, GapQuestion
from bot.texts import DIGEST_ANSWERED, DIGEST_LINE, DIGEST_TEXT, DIGEST_VARIANTS
from retrieval import RetrievalSettings, group_by_meaning

_SPAN = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DIGEST_VARIANTS_SHOWN = 2  # other wordings a digest line quotes


@dataclass(frozen=True)
class Gap:
    """One group of questions of the same meaning that the documents did not serve."""

    count: int  # times asked
    variants: list[str]  # the distinct wordings, most asked first
    declined: int
    down_voted: int
    escalated: int
    answered: bool  # a responder's reply to one of them is kept as a source
    last_asked: str  # ISO time (UTC)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_since(text: str) -> timedelta:
    """``7d``, ``12h``, ``2w`` or ``30m`` as a time span; ``ValueError`` for anything else."""
    match = _SPAN.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is no time span: write e.g. 7d, 12h, 2w or 30m")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def find_gaps(store: FeedbackStore, settings: RetrievalSettings, *, since: timedelta | None = None,
              platform: str | None = None, space: str | None = None, now: datetime | None = None) -> list[Gap]:
    """The groups of questions asked within ``since`` (all when None), on ``platform`` and in conversations
    using the document ``space`` (all when None), that were declined, voted 👎 or escalated; most asked first."""
    start = "" if since is None else ((now or datetime.now(UTC)) - since).isoformat(timespec="seconds")
    questions = [q for q in store.gap_questions(start) if (platform is None or q.platform == platform)
                 and (space is None or space in q.space.split("+"))]
    groups = group_by_meaning([q.question for q in questions], settings)
    gaps = sorted((_gap([questions[i] for i in members]) for members in groups), key=lambda g: g.last_asked,
                  reverse=True)
    return sorted(gaps, key=lambda g: (-g.count, g.answered))  # stable: newest first among equals


def digest_text(gaps: list[Gap], *, top: int, days: int) -> str:
    """The help-desk digest of the ``top`` groups of the last ``days`` days; "" when there are none."""
    if not gaps:
        return ""
    lines = [DIGEST_TEXT.format(days=days, groups=len(gaps), questions=sum(g.count for g in gaps))]
    for gap in gaps[:top]:
        others = gap.variants[1 : 1 + DIGEST_VARIANTS_SHOWN]
        lines.append(DIGEST_LINE.format(count=gap.count, question=gap.variants[0])
                     + (DIGEST_VARIANTS.format(variants="; ".join(others)) if others else "")
                     + (DIGEST_ANSWERED if gap.answered else ""))
    return "\n".join(lines)


def next_digest(now: datetime, weekday: int, hour: int) -> datetime:
    """The first ``weekday`` (0 Monday) at ``hour``:00 UTC after ``now``."""
    day = now.astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    due = day + timedelta(days=(weekday - day.weekday()) % 7)
    return due if due > now else due + timedelta(days=7)


def _gap(questions: list[GapQuestion]) -> Gap:
    wordings: Counter[str] = Counter()
    first: dict[str, str] = {}
    for q in questions:
        key = " ".join(q.question.casefold().split()).rstrip("?!. ")
        wordings[key] += 1
        first.setdefault(key, " ".join(q.question.split()))
    return Gap(
        count=len(questions),
        variants=[first[key] for key, _ in wordings.most_common()],
        declined=sum(q.declined for q in questions),
        down_voted=sum(q.down_voted for q in questions),
        escalated=sum(q.escalated for q in questions),
        answered=any(q.answered for q in questions),
        last_asked=max(q.created_at for q in questions),
    )

