"""The inbox: documents a listed admin posts in chat, saved in one folder (``BotSettings.inbox``) and indexed
through the normal sync, like any folder ``citebot index`` is given.

A posted file keeps its (cleaned) name, so posting a new version of ``policy.pdf`` replaces the old one. With a
spaces file, a file posted in a conversation is saved in that conversation's space folder of the inbox
(``space-hr/policy.pdf``, ``bot.spaces.kept_folder``), the folder the space's scope already holds for the help
desk's kept replies: it is cited where it was posted and in no other space. A
file the index skips (unreadable, past the extraction limits) is taken out again and the version before it, if
any, put back: nothing of a refused file stays in the folder or the index. The folder is plain files a person
can read or delete; the bots index it when they start, so a rebuilt index has the documents again.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from bot.texts import UPLOAD_ADDED, UPLOAD_SKIPPED, UPLOAD_UNCHANGED, UPLOAD_UPDATED
from retrieval import SyncReport

_UNSAFE = re.compile(r"[^\w.()+-]+")
MAX_NAME_CHARS = 120

Index = Callable[[list[Path]], SyncReport]


def safe_name(name: str) -> str:
    """A file name for ``name`` as sent: no folders, no hidden or unsafe characters, its suffix kept."""
    base = _UNSAFE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip("._") or "document"
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        return base[:MAX_NAME_CHARS]
    return f"{stem[: MAX_NAME_CHARS - len(suffix) - 1]}.{suffix.lower()}"


class Inbox:
    """The folder of posted documents; ``put`` saves and indexes one, one at a time.

    Args:
        folder: where the documents are kept (created when missing).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()  # two versions of one name posted at once must not interleave

    def put(self, name: str, data: bytes, index: Index, *, within: str = "") -> SyncReport:
        """Save ``data`` as ``name`` in the inbox's folder ``within`` and index it; a file the index skips is
        removed (its previous version put back), so the index and the folder hold only what was indexed.

        The whole inbox is indexed, as the bots index it at start: a file's source is then its path inside the
        inbox (``space-hr/policy.pdf``, whose folder a space's scope covers) both times. Its unchanged files
        cost a look at their size and time; the report returned is this file's own.
        """
        path = self.folder / within / name
        path.parent.mkdir(parents=True, exist_ok=True)
        source = path.relative_to(self.folder).as_posix()
        with self._lock:
            previous = path.with_name(f".{uuid.uuid4().hex}.previous")  # hidden: never indexed itself
            if path.exists():
                path.rename(previous)
            try:
                path.write_bytes(data)
                report = _only(index([self.folder]), source)
            except BaseException:
                _restore(path, previous)
                raise
            if report.skipped:
                _restore(path, previous)
            else:
                previous.unlink(missing_ok=True)
        return report


def summary(name: str, report: SyncReport) -> str:
    """What the poster is told: added, re-indexed, unchanged, or skipped with the index's reason."""
    if report.skipped:
        return UPLOAD_SKIPPED.format(name=name, reason=report.skipped[0].reason)
    passages = "1 passage" if report.chunks_embedded == 1 else f"{report.chunks_embedded:,} passages"
    if report.added:
        return UPLOAD_ADDED.format(name=name, passages=passages)
    if report.updated:
        return UPLOAD_UPDATED.format(name=name, passages=passages)
    return UPLOAD_UNCHANGED.format(name=name)


def _only(report: SyncReport, source: str) -> SyncReport:
    """What ``report`` says of ``source`` (its passages: all those embedded, as the inbox's other files were
    unchanged unless a person edited them at that very moment)."""
    return SyncReport(added=[s for s in report.added if s == source],
                      updated=[s for s in report.updated if s == source],
                      unchanged=[s for s in report.unchanged if s == source],
                      skipped=[s for s in report.skipped if s.source == source],
                      chunks_embedded=report.chunks_embedded)


def _restore(path: Path, previous: Path) -> None:
    """Take ``path`` out and put ``previous`` (renamed, so its size and time, and so its index state, match)
    back when there was one."""
    path.unlink(missing_ok=True)
    if previous.exists():
        previous.rename(path)
