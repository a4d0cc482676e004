"""Bounded extraction: what a file may expand to, and how long reading it may take.

The size limit (``CITEBOT_MAX_FILE_MB``) bounds the bytes of a file, not what they expand to: a 108 KB PDF
can yield 20 MB of text and a 119 KB DOCX parse for minutes into 20,000 chunks. So a document whose text
runs past ``CITEBOT_MAX_EXTRACTED_CHARS`` is skipped, and the formats whose parsing is not linear in the
file's size (PDF, DOCX, HTML) are parsed in a worker process that is killed, and the file skipped, after
``CITEBOT_MAX_EXTRACT_SECONDS``: a thread could not be stopped, and would go on burning a core. Plain text
and Markdown are read in process: their parse is one pass over bytes the size limit already bounds.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import multiprocessing.pool
import os
import threading
from pathlib import Path

from retrieval.errors import LoadError
from retrieval.loaders import LoadedDocument, load
from retrieval.settings import RetrievalSettings

logger = logging.getLogger(__name__)

_IN_PROCESS = frozenset({".txt", ".md", ".markdown"})


class _Worker:
    """One spawned process that parses files; replaced after it is killed for taking too long."""

    def __init__(self) -> None:
        self._pool: multiprocessing.pool.Pool | None = None
        self._lock = threading.Lock()  # one file at a time: the indexer runs in one thread

    def load(self, path: Path, root: Path, seconds: float) -> LoadedDocument:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: a bot's threads (Chroma, the embedder, the chat clients) must not be forked.
                self._pool = multiprocessing.get_context("spawn").Pool(1)
                self._pool.apply(_ready)  # the start-up and imports are not the file's time
                atexit.register(self.close)
            pending = self._pool.apply_async(load, (path, root))
            try:
                return pending.get(timeout=seconds)
            except multiprocessing.TimeoutError:
                self.close()
                raise LoadError(
                    f"reading it took over {seconds:g} s (the limit is CITEBOT_MAX_EXTRACT_SECONDS)"
                ) from None

    def close(self) -> None:
        """Stop the worker (it is started again on the next file)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
            atexit.unregister(self.close)


def _ready() -> int:
    """Run in the worker once: unpickling it imports this module, and so the parsers."""
    return os.getpid()


_WORKER = _Worker()


def load_bounded(path: Path, root: Path, settings: RetrievalSettings) -> LoadedDocument:
    """``loaders.load`` within the extraction limits of ``settings``; raises ``LoadError`` past them."""
    if path.suffix.lower() in _IN_PROCESS:
        doc = load(path, root)
    else:
        doc = _WORKER.load(path, root, settings.max_extract_seconds)
    if len(doc.text) > settings.max_extracted_chars:
        raise LoadError(f"it expands to {len(doc.text):,} characters of text (the limit is "
                        f"CITEBOT_MAX_EXTRACTED_CHARS={settings.max_extracted_chars:,})")
    return doc
