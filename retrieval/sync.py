"""Incremental indexing: bring the store in line with folders of documents.

A document whose bytes hash the same as its stored chunks (all present) is left alone; a changed one is
re-chunked, re-embedded and replaced; a file that disappeared from an indexed folder has its chunks
removed, and so has every document of a file or folder given that no longer exists. What is stored is read
from the store's catalog (one row per document), never from the chunks, and a file whose size and
modification time match the catalog's is not even hashed. Unreadable files are skipped with a one-line
reason and counted; the run goes on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document

from retrieval.chunking import split
from retrieval.errors import LoadError
from retrieval.extract import load_bounded
from retrieval.loaders import SUPPORTED_SUFFIXES, LoadedDocument, Skipped, discover, unsupported_reason
from retrieval.settings import RetrievalSettings
from retrieval.store import ChunkStore, DocState

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

    def lines(self) -> list[str]:
        """The report as ``citebot index`` prints it: the summary, then a line per file that changed or was
        skipped (unchanged files are only counted)."""
        named = [f"  {verb} {source}" for verb, sources in (("added", self.added), ("updated", self.updated),
                                                             ("removed", self.removed)) for source in sources]
        return [f"Indexed: {self.summary()}", *named, *(f"  skipped {s.source}: {s.reason}" for s in self.skipped)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyncReport:
        """The report ``to_dict`` gave, e.g. back from the serving process that indexed for ``citebot index``."""
        return cls(**{**data, "skipped": [Skipped(**s) for s in data.get("skipped", [])]})


ProgressFn = Callable[[str, int, int], None]  # (current source, documents done, documents total)


@dataclass(frozen=True)
class _Item:
    """A document to bring up to date: hashing it is cheap, loading it may not be."""

    root: str
    source: str
    size: int  # bytes (characters for documents already in memory)
    digest: Callable[[], str]
    load: Callable[[], LoadedDocument]
    mtime_ns: int | None = None  # a file's; with ``size``, what lets an unchanged file go unhashed


def file_hash(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def sync(
    paths: Iterable[Path], store: ChunkStore, settings: RetrievalSettings, *, progress: ProgressFn | None = None
) -> SyncReport:
    """Index ``paths`` (files or folders) into ``store`` and return what changed."""
    report = SyncReport()
    paths = [Path(p) for p in paths]
    # Only a folder given as such is ours to prune; a single file's siblings are left alone.
    folders = {str(p.resolve()) for p in paths if p.is_dir()}
    own = Path(settings.data_dir).resolve()

    def ours(path: Path) -> bool:  # never index our own store, nor complain about its files
        try:
            return path.resolve().is_relative_to(own)
        except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13): not ours
            return False

    items: list[_Item] = []
    present = [p for p in paths if p.exists() or p.is_symlink()]
    for gone in (p for p in paths if p not in present):
        forgotten = forget(gone, store)
        report.removed += forgotten
        if not forgotten:
            report.skipped.append(Skipped(gone.as_posix(), "not found"))
    for item in discover(present):
        if isinstance(item, Skipped):
            if not any(ours(Path(folder) / item.source) for folder in folders):
                report.skipped.append(item)
        elif not ours(item[0]):
            path, root = item
            stat = path.stat()
            items.append(
                _Item(str(root.resolve()), path.relative_to(root).as_posix(), stat.st_size,
                      lambda p=path: file_hash(p), lambda p=path, r=root: load_bounded(p, r, settings),
                      stat.st_mtime_ns)
            )
    _run(items, folders, store, settings, report, progress)
    return report


def forget(path: Path, store: ChunkStore) -> list[str]:
    """Remove from ``store`` every document indexed at or below ``path`` (a folder or file, there or not) and
    return their paths. The catalog knows folders only by a hash, so ``path`` itself and each of its parents
    are tried as the folder it was indexed from."""
    path = path.resolve()
    removed = []
    for root in (path, *path.parents):
        inside = "" if root == path else path.relative_to(root).as_posix()
        sources = sorted(s for s in store.document_states(str(root))
                         if not inside or s == inside or s.startswith(inside + "/"))
        if sources:
            store.remove(str(root), sources)
            removed += [(root / s).as_posix() for s in sources]
    return removed


def sync_documents(
    root: str,
    docs: Iterable[LoadedDocument],
    store: ChunkStore,
    settings: RetrievalSettings,
    *,
    progress: ProgressFn | None = None,
) -> SyncReport:
    """Index documents already in memory (e.g. a benchmark corpus) as the complete contents of ``root``."""
    items = [_Item(root, d.source, len(d.text), lambda d=d: d.content_hash, lambda d=d: d) for d in docs]
    report = SyncReport()
    _run(items, {root}, store, settings, report, progress)
    return report


def _run(items: Sequence[_Item], prune: set[str], store: ChunkStore, settings: RetrievalSettings,
         report: SyncReport, progress: ProgressFn | None) -> None:
    states: dict[str, dict[str, DocState]] = {}
    seen: dict[str, set[str]] = {root: set() for root in prune}
    batch = _Batch(store, report)
    for done, item in enumerate(items):
        if item.root not in states:
            states[item.root] = store.document_states(item.root)
        seen.setdefault(item.root, set()).add(item.source)
        if progress:
            progress(item.source, done, len(items))
        _sync_one(item, states[item.root].get(item.source), batch, settings)
    batch.flush()
    for root in sorted(prune):
        gone = sorted(set(states.get(root) or store.document_states(root)) - seen[root])
        if gone:
            store.remove(root, gone)
            report.removed += gone
    if progress:
        progress("", len(items), len(items))
    logger.info("index: %s", report.summary())


def max_file_bytes(settings: RetrievalSettings) -> int:
    """The largest file indexing reads (``CITEBOT_MAX_FILE_MB``), in bytes."""
    return int(settings.max_file_mb * 1024 * 1024)


def skip_reason(name: str, size: int, settings: RetrievalSettings) -> str | None:
    """Why indexing would skip a file called ``name`` of ``size`` bytes without reading it; None when it would
    read it. Lets a file be refused before it is downloaded."""
    suffix = Path(name).suffix.lower()
    return unsupported_reason(suffix) if suffix not in SUPPORTED_SUFFIXES else _too_large(size, settings)


def _too_large(size: int, settings: RetrievalSettings) -> str | None:
    if size <= max_file_bytes(settings):
        return None
    return f"too large ({size / 2**20:.1f} MB; the limit is CITEBOT_MAX_FILE_MB={settings.max_file_mb:g})"


def _sync_one(item: _Item, state: DocState | None, batch: _Batch, settings: RetrievalSettings) -> None:
    report = batch.report
    reason = _too_large(item.size, settings)
    if reason:
        report.skipped.append(Skipped(item.source, reason))
        return
    try:
        if state and state.complete and _unchanged(item, state, batch.store):
            report.unchanged.append(item.source)
            return
        chunks = split(item.load(), chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
        if not chunks:
            raise LoadError("no text to index")
    except LoadError as exc:
        report.skipped.append(Skipped(item.source, str(exc)))
        return
    except OSError as exc:
        report.skipped.append(Skipped(item.source, f"cannot read: {exc.strerror or exc}"))
        return
    (report.updated if state else report.added).append(item.source)
    batch.add(item.root, chunks, None if item.mtime_ns is None else (item.size, item.mtime_ns))


def _unchanged(item: _Item, state: DocState, store: ChunkStore) -> bool:
    """Whether the stored document is this one: the same size and modification time, or else the same hash."""
    if item.mtime_ns is not None and (state.size, state.mtime_ns) == (item.size, item.mtime_ns):
        return True
    if state.doc_hash != item.digest():
        return False
    if item.mtime_ns is not None:
        store.stamp(item.root, item.source, item.size, item.mtime_ns)
    return True


class _Batch:
    """Chunks waiting to be embedded and written, all of one root."""

    def __init__(self, store: ChunkStore, report: SyncReport) -> None:
        self.store, self.report = store, report
        self.chunks: list[Document] = []
        self.stamps: dict[str, tuple[int, int]] = {}
        self.root = ""

    def add(self, root: str, chunks: list[Document], stamp: tuple[int, int] | None) -> None:
        if self.root != root:
            self.flush()
            self.root = root
        self.chunks += chunks
        if stamp:
            self.stamps[str(chunks[0].metadata["source"])] = stamp
        if len(self.chunks) >= _FLUSH_CHUNKS:
            self.flush()

    def flush(self) -> None:
        if not self.chunks:
            return
        vectors = self.store.embedder.embed([c.page_content for c in self.chunks])
        self.store.write(self.root, self.chunks, np.asarray(vectors, dtype=np.float32), self.stamps)
        self.report.chunks_embedded += len(self.chunks)
        self.chunks, self.stamps = [], {}
