"""The help desk's memory: a responder's relayed reply, saved as a small Markdown document the index reads.

Each reply is one file in the answers folder (``BotSettings.answers_dir``), named after the platform, the
escalation and the reply's message, so a person can read, edit or delete it, and ``citebot index`` over that
folder rebuilds the same sources. Its first heading is the title a citation shows:
``Answer by @ann, 2026-12-01``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from bot.types import Escalation

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def answer_document(escalation: Escalation, *, responder: str, text: str, reply_ref: str,
                    folder: Path, now: datetime | None = None) -> Path:
    """Write the reply as Markdown in ``folder`` (created when missing); returns the file's path."""
    day = (now or datetime.now(UTC)).date().isoformat()
    name = f"{escalation.platform}-{escalation.id}-{_UNSAFE.sub('_', reply_ref).strip('_') or 'reply'}.md"
    lines = [
        f"# Answer by {_one_line(responder)}, {day}",
        "",
        f"Question: {_one_line(escalation.question)}",
        "",
        f"Answer: {text.strip()}",
        "",
        f"Answered by {_one_line(responder)} on {day} in the help desk ({escalation.platform}).",
    ]
    if escalation.link:
        lines.append(f"Asked in: {escalation.link}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _one_line(text: str) -> str:
    # A heading or a line break in a name or question would start a new Markdown section.
    return " ".join(text.split()).lstrip("#").strip()
