"""Incremental indexing: bring the store in line with folders of documents.

A document whose bytes hash the same as its stored chunks (all present) is left alone; a changed one is
re-chunked, re-embedded and replaced; a file that disappeared from an indexed folder has its chunks
removed. Unreadable files are skipped with a one-line reason and counted; the run goes on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from langchain_core.documents import Document

from retrieval.chunking import split
from retrieval.errors import LoadError
from retrieval.loaders import Skipped, discover, load
from retrieval.settings import RetrievalSettings
from retrieval.store import ChunkStore

logger = logging.getLogger(__name__)

_FLUSH_CHUNKS = 256  # embed chunks of several small documents together: dynamic padding batches better


@dataclass
class SyncReport:
    """What an indexing run did, document by document."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    chunks_embedded: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed, {len(self.skipped)} skipped ({self.chunks_embedded} chunks embedded)"
        )


ProgressFn = Callable[[str, int, int], None]  # (current source, files done, files total)


def file_hash(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class _Batch:
    """Chunks waiting to be embedded and written, grouped by the root they belong to."""

    def __init__(self, store: ChunkStore, report: SyncReport) -> None:
        self.store, self.report = store, report
        self.chunks: list[Document] = []
        self.root = ""

    def add(self, root: str, chunks: list[Document]) -> None:
        if self.root != root:
            self.flush()
            self.root = root
        self.chunks += chunks
        if len(self.chunks) >= _FLUSH_CHUNKS:
            self.flush()

    def flush(self) -> None:
        if not self.chunks:
            return
        vectors = self.store.embedder.embed([c.page_content for c in self.chunks])
        self.store.write(self.root, self.chunks, np.asarray(vectors, dtype=np.float32))
        self.report.chunks_embedded += len(self.chunks)
        self.chunks = []


def sync(
    paths: Iterable[Path],
    store: ChunkStore,
    settings: RetrievalSettings,
    *,
    progress: ProgressFn | None = None,
) -> SyncReport:
    """Index ``paths`` (files or folders) into ``store`` and return what changed."""
    report = SyncReport()
    paths = [Path(p) for p in paths]
    # Only a folder given as such is ours to prune; a single file's siblings are left alone.
    folders = {str(p.resolve()) for p in paths if p.is_dir()}
    own = Path(settings.data_dir).resolve()

    def ours(path: Path) -> bool:  # never index our own store, nor complain about its files
        return path.resolve().is_relative_to(own)

    found: list[tuple[Path, Path]] = []
    for item in discover(paths):
        if isinstance(item, Skipped):
            if not any(ours(Path(folder) / item.source) for folder in folders):
                report.skipped.append(item)
        elif not ours(item[0]):
            found.append(item)
    batch = _Batch(store, report)
    states: dict[str, dict] = {}
    seen: dict[str, set[str]] = {}
    for done, (path, root) in enumerate(found):
        root_str = str(root.resolve())
        if root_str not in states:
            states[root_str] = store.document_states(root_str)
            seen[root_str] = set()
        source = path.relative_to(root).as_posix()
        seen[root_str].add(source)
        if progress:
            progress(source, done, len(found))
        _sync_file(path, root, source, states[root_str].get(source), batch, settings)
    batch.flush()
    for root_str in folders:
        sources = seen.get(root_str, set())
        states.setdefault(root_str, store.document_states(root_str))
        gone = sorted(set(states[root_str]) - sources)
        if gone:
            store.remove(root_str, gone)
            report.removed += gone
    if progress:
        progress("", len(found), len(found))
    logger.info("index: %s", report.summary())
    return report


def _sync_file(path, root, source, state, batch: _Batch, settings: RetrievalSettings) -> None:
    report = batch.report
    try:
        if state and state.complete and state.doc_hash == file_hash(path):
            report.unchanged.append(source)
            return
        doc = load(path, root)
        chunks = split(doc, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
        if not chunks:
            raise LoadError("no text to index")
    except LoadError as exc:
        report.skipped.append(Skipped(source, str(exc)))
        return
    except OSError as exc:
        report.skipped.append(Skipped(source, f"cannot read: {exc.strerror or exc}"))
        return
    (report.updated if state else report.added).append(source)
    batch.add(str(root.resolve()), chunks)
