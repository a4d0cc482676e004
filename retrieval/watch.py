"""Watching folders: re-sync them as files land, change or go (``citebot serve --watch``).

``watchfiles`` (inotify on Linux, polling elsewhere) collects the changes and waits until none has come for
``DEBOUNCE_MS``, so a copy of many files costs one sync, not one per file. The sync itself is the ordinary
incremental one: unchanged files are recognised by size and modification time without being read, so a
change costs the changed files (and a ``stat`` of the rest).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import watchfiles

from retrieval.background import Background

logger = logging.getLogger(__name__)

DEBOUNCE_MS = 500


class Watcher(Background):
    """Runs ``index(paths)`` once at start and again after every burst of changes below ``paths``.

    ``ignore`` is a folder whose changes never count (the data dir, which indexing itself writes).
    """

    def __init__(self, paths: Sequence[Path], index: Callable[[list[Path]], list[str]], *, ignore: Path) -> None:
        super().__init__("citebot-watcher")
        self.paths = [Path(p).resolve() for p in paths]
        self._index = index
        self._filter = watchfiles.DefaultFilter(ignore_paths=[Path(ignore).resolve()])

    def _run(self) -> None:
        self._sync("start")
        for changes in watchfiles.watch(*self.paths, watch_filter=self._filter, debounce=DEBOUNCE_MS,
                                        stop_event=self._stop, raise_interrupt=False):
            self._sync(f"{len(changes)} change(s)")

    def _sync(self, why: str) -> None:
        try:
            lines = self._index(self.paths)
        except Exception:  # the bot goes on serving; the next change tries again
            logger.exception("re-syncing the watched folders failed")
            return
        logger.info("watched folders re-synced (%s): %s", why, "; ".join(lines))
