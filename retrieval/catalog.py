"""The catalog: a SQLite file beside the store that sync and keyword search read instead of Chroma.

It holds one row per indexed document (content hash, chunk count, file size and modification time, the
generation that wrote it), every chunk's text, metadata and vector (what a search reads of its candidates), an
FTS5 table of every chunk's analysed terms, and a log of the documents each change touched. A document's change
is one transaction over all of them, so adding or removing one document costs that document's chunks, not the
corpus; readers in any thread or process on the machine see it the moment it commits (WAL mode). Questions are
ranked in memory by ``keyword_index.KeywordIndex``, which loads the terms once and then follows the log. The
file is rebuilt from the Chroma collection when it is missing, of an older ``FORMAT`` or made for another
collection (``collection_id``), so it can always be deleted.

FTS5 was chosen over tantivy and over segments of ``bm25s``: it ships with Python's ``sqlite3``, commits a
document's terms together with its state row, and needs no merge thread (BENCHMARKS.md, "Live index"). Its own
``bm25()`` is what the in-memory ranking is tested against, score for score. The terms are our own analyser's
(``keyword.analyze``: stemmed, no stop words, options such as "-k" whole), joined by spaces, so FTS5's
tokenizer only splits on those spaces: the underscore and the dash are token characters to it (``_TOKENIZE``).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.bm25 import best, common, contribution, nth_best
from retrieval.keyword import analyze, keyword_text
from retrieval.types import folder_of

# Bumped whenever what the catalog holds changes (schema, analyser, indexed text): older ones are rebuilt.
# 3: each chunk's folder, which scoped searches filter on. 4: each chunk's text, metadata, vector; the change log.
# 5: options ("-k", "--keep") are terms; "where" and "when" are stop words.
FORMAT = 5
# How FTS5 splits the analysed text into terms: at the spaces only, since an option's dashes and a name's
# underscores are part of its term. A terms table made with another tokenizer is made again (``Catalog``).
_TOKENIZE = "unicode61 remove_diacritics 0 tokenchars '_-'"
# FTS5's BM25 gives a term found in half the rows or more no weight at all (its IDF, log((N - n + 0.5) /
# (n + 0.5)), is clamped at zero), so in a help desk of a few documents most words would count for nothing.
# These rows, of one padding term each chunk's typical length, sit in every catalog as documents holding
# no real term (the in-memory index counts them too): at 100k chunks they shift each IDF by about 1%, at five
# documents they keep it positive.
PAD_ROWS = 1000
PAD_TERMS = 100  # about a default chunk's terms
PAD_TEXT = " ".join(["__pad__"] * PAD_TERMS)  # "__pad__" is no analysed word
# Folder lists whose chunk ids and statistics ``_scope`` keeps per thread (10,000 ids: about 1 MB).
_SCOPES_CACHED = 8
# Entries of the change log kept: a reader further behind than this many document changes loads everything.
_CHANGES_KEPT = 10_000
_COLUMNS = ("folder", "text", "metadata", "vector")  # chunk columns since FORMAT 2: a table without one is rebuilt

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    root TEXT NOT NULL, source TEXT NOT NULL, doc_hash TEXT NOT NULL, n_chunks INTEGER NOT NULL,
    size INTEGER, mtime_ns INTEGER, generation INTEGER NOT NULL, PRIMARY KEY (root, source)
);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, root TEXT NOT NULL, source TEXT NOT NULL,
    folder TEXT NOT NULL DEFAULT '', text TEXT NOT NULL DEFAULT '', metadata TEXT NOT NULL DEFAULT '{{}}',
    vector BLOB  -- float32, as the store holds it
);
-- One row per document a change touched (root NULL: the whole catalog was cleared), for in-memory readers.
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, root TEXT, source TEXT);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks (root, source);
CREATE INDEX IF NOT EXISTS chunks_by_folder ON chunks (folder);
CREATE VIRTUAL TABLE IF NOT EXISTS terms USING fts5(body, tokenize="{_TOKENIZE}");
"""


@dataclass(frozen=True)
class DocumentRow:
    """What the catalog knows of one document (``root`` is the store's root key, not a path)."""

    root: str
    source: str
    doc_hash: str
    n_chunks: int
    generation: int
    size: int | None = None
    mtime_ns: int | None = None


@dataclass(frozen=True)
class CatalogChunk:
    """One chunk as the catalog holds it: its text, its metadata, its vector, and (from text and title) its terms."""

    id: str
    source: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    vector: np.ndarray | None = None

    def terms(self) -> str:
        """What the keyword index holds: the analysed ``keyword_text`` (title in front), joined by spaces."""
        return " ".join(analyze(keyword_text(self.text, str(self.metadata.get("title") or ""))))


@dataclass(frozen=True)
class IndexedChunk:
    """A settled document's chunk as the in-memory keyword index reads it."""

    id: str
    root: str
    source: str
    folder: str
    terms: list[str]


class Catalog:
    """The SQLite catalog at ``path``; safe to share between threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        with self._write_lock:
            db = self._db()
            columns = {name for (name,) in db.execute("SELECT name FROM pragma_table_info('chunks')")}
            if columns and not columns.issuperset(_COLUMNS):
                # An older FORMAT: its identity no longer matches, so the store rebuilds it from scratch.
                db.executescript("DROP TABLE chunks; DELETE FROM meta;")
            made = db.execute("SELECT sql FROM sqlite_master WHERE name = 'terms'").fetchone()
            if made and _TOKENIZE not in made[0]:
                # FORMAT 4 or older split "-k" into "k": the table is made again with today's tokenizer, and
                # the store, no longer finding its identity in meta, fills it again from the collection.
                db.executescript("DROP TABLE terms; DELETE FROM meta;")
            db.executescript(_SCHEMA)
        with self._transaction() as db:
            if db.execute("SELECT count(*) FROM terms WHERE rowid < 0").fetchone()[0] < PAD_ROWS:
                db.execute("DELETE FROM terms WHERE rowid < 0")
                db.executemany("INSERT INTO terms (rowid, body) VALUES (?, ?)",
                               ((-n, PAD_TEXT) for n in range(1, PAD_ROWS + 1)))

    def _db(self) -> sqlite3.Connection:
        """This thread's connection: sqlite3 connections must not be shared between threads."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # Each term's document count, read from the index itself (a per-connection view, never stored).
            db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocabulary USING fts5vocab(main, terms, row)")
            # Every occurrence of each term (row and position): a scope's term frequencies.
            db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.occurrences USING fts5vocab(main, terms, instance)")
            self._local.db = db
        return db

    def get_meta(self, key: str) -> str | None:
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, **values: str) -> None:
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items())

    def documents(self, root: str) -> dict[str, DocumentRow]:
        """Every document of the root key ``root``, by source."""
        rows = self._db().execute(
            "SELECT root, source, doc_hash, n_chunks, generation, size, mtime_ns FROM documents WHERE root = ?",
            (root,),
        )
        return {r[1]: DocumentRow(*r) for r in rows}

    def document(self, root: str, source: str) -> DocumentRow | None:
        row = self._db().execute(
            "SELECT root, source, doc_hash, n_chunks, generation, size, mtime_ns FROM documents"
            " WHERE root = ? AND source = ?", (root, source),
        ).fetchone()
        return DocumentRow(*row) if row else None

    def chunk_ids(self, root: str, sources: Sequence[str]) -> dict[str, list[str]]:
        """The chunk ids of each of ``sources`` whose state is settled (not pending), by source."""
        found: dict[str, list[str]] = {}
        for source in sources:
            row = self.document(root, source)
            if row is not None and row.doc_hash:
                found[source] = [i for (i,) in self._db().execute(
                    "SELECT id FROM chunks WHERE root = ? AND source = ?", (root, source))]
        return found

    def chunk_count(self) -> int:
        return int(self._db().execute("SELECT count(*) FROM chunks").fetchone()[0])

    def folders(self) -> dict[str, tuple[int, int]]:
        """Every folder holding indexed documents (relative to its root), with its (documents, chunks)."""
        rows = self._db().execute(
            "SELECT folder, count(DISTINCT root || '/' || source), count(*) FROM chunks GROUP BY folder")
        return {f: (d, c) for f, d, c in rows}

    def folder_names(self) -> frozenset[str]:
        """The keys of ``folders``, read again only when the catalog changed (per thread: one connection)."""
        db = self._db()
        version = (db.execute("PRAGMA data_version").fetchone()[0], db.total_changes)
        cached = getattr(self._local, "folders", None)
        if cached is None or cached[0] != version:
            names = frozenset(f for (f,) in db.execute("SELECT DISTINCT folder FROM chunks"))
            cached = self._local.folders = (version, names)
        return cached[1]

    def ids_in(self, folders: Sequence[str]) -> list[str]:
        """The ids of every chunk in ``folders``."""
        return self._scope(folders).ids

    def _scope(self, folders: Sequence[str]) -> _Scope:
        """The chunk ids and BM25 statistics of ``folders``, read again only when the catalog changed (per
        thread, the last few folder lists asked for: a help desk asks from the same few spaces over and over)."""
        db = self._db()
        version = (db.execute("PRAGMA data_version").fetchone()[0], db.total_changes)
        cached = getattr(self._local, "scopes", None)
        if cached is None or cached[0] != version:
            cached = self._local.scopes = (version, {})
        key = tuple(sorted(folders))
        if key not in cached[1]:
            if len(cached[1]) >= _SCOPES_CACHED:
                cached[1].pop(next(iter(cached[1])))
            rows = db.execute("SELECT chunks.id, terms_docsize.sz FROM chunks JOIN terms_docsize ON"  # noqa: S608
                              f" terms_docsize.id = chunks.rowid WHERE folder IN ({','.join('?' * len(key))})", key)
            ids, length = [], 0
            for i, size in rows:
                ids.append(i)
                length += _varint(size)
            cached[1][key] = _Scope(ids, length)
        return cached[1][key]

    def replace(self, docs: Sequence[DocumentRow], chunks: Iterable[CatalogChunk]) -> None:
        """Put ``docs`` (with these chunks) in place of whatever the catalog held of them, in one commit."""
        by_source: dict[tuple[str, str], list[CatalogChunk]] = {(d.root, d.source): [] for d in docs}
        roots = {d.source: d.root for d in docs}
        for chunk in chunks:
            by_source[(roots[chunk.source], chunk.source)].append(chunk)
        with self._transaction() as db:
            keys = [(d.root, d.source) for d in docs]
            self._delete(db, keys)
            for d in docs:
                db.execute(
                    "INSERT INTO documents (root, source, doc_hash, n_chunks, size, mtime_ns, generation)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (d.root, d.source, d.doc_hash, d.n_chunks, d.size, d.mtime_ns, d.generation),
                )
                for c in by_source[(d.root, d.source)]:
                    vector = None if c.vector is None else np.asarray(c.vector, np.float32).tobytes()
                    rowid = db.execute(
                        "INSERT INTO chunks (id, root, source, folder, text, metadata, vector)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (c.id, d.root, d.source, folder_of(d.source), c.text, json.dumps(dict(c.metadata)), vector),
                    ).lastrowid
                    db.execute("INSERT INTO terms (rowid, body) VALUES (?, ?)", (rowid, c.terms()))
            _log(db, keys)

    def remove(self, root: str, sources: Sequence[str]) -> None:
        """Forget these documents and their chunks."""
        with self._transaction() as db:
            self._delete(db, [(root, s) for s in sources])
            _log(db, [(root, s) for s in sources])

    def mark_pending(self, root: str, sources: Sequence[str]) -> None:
        """Note that these documents are being rewritten: until ``replace`` commits, sync sees them incomplete
        and the keyword index leaves their chunks out (the store deletes them next)."""
        with self._transaction() as db:
            db.executemany("UPDATE documents SET doc_hash = '' WHERE root = ? AND source = ?",
                           ((root, s) for s in sources))
            _log(db, [(root, s) for s in sources])

    def stamp(self, root: str, source: str, size: int, mtime_ns: int) -> None:
        """Record a file's size and modification time: while both stay, sync need not hash it again."""
        with self._transaction() as db:
            db.execute("UPDATE documents SET size = ?, mtime_ns = ? WHERE root = ? AND source = ?",
                       (size, mtime_ns, root, source))

    def clear(self) -> None:
        with self._transaction() as db:
            for table in ("documents", "chunks", "meta", "changes"):
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            db.execute("DELETE FROM terms WHERE rowid > 0")  # the padding rows stay
            db.execute("INSERT INTO changes (root, source) VALUES (NULL, NULL)")  # every reader loads again

    def optimize(self) -> None:
        """Merge the keyword index into one segment: after a rebuild, the old rows' deletions would otherwise
        slow every query (2-3x at 100k chunks) until FTS5's gradual merging caught up."""
        with self._transaction() as db:
            db.execute("INSERT INTO terms (terms) VALUES ('optimize')")

    def search(self, query: str, k: int, folders: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """Up to ``k`` (chunk id, BM25 score) pairs for ``query``, best first; only chunks of ``folders`` when
        given, scored with the statistics of those folders alone (``_search_within``)."""
        return self.rank(query, k, folders)[0]

    def rank(
        self, query: str, k: int, folders: Sequence[str] | None = None, *, scored: Collection[str] = (),
        depth: int = 0,
    ) -> tuple[list[tuple[str, float]], dict[str, float]]:
        """``search(query, k, folders)``, and the BM25 score of each id of ``scored`` that ranks among the best
        ``depth`` (one ranked lower, or matching no term, is left out: it counts as scoring 0)."""
        if k <= 0 or (folders is not None and not folders):
            return [], {}
        if folders is not None:
            scores = self._search_within(query, folders)
            floor = nth_best(np.fromiter(scores.values(), float), depth)
            return best(scores, k), {i: scores[i] for i in scored if scores.get(i, -math.inf) >= floor}
        match = self._match(query)
        # Every matching row's score, unordered, and chunk ids only for the rows kept: at 10k chunks FTS5's
        # ``ORDER BY rank LIMIT 1000`` cost 1.3 ms more than scoring every match unordered (3.8 against 2.5), and
        # joining the 1,000 to their chunk ids 0.3 more (BENCHMARKS.md, "Indexing and search against e0e347b").
        db = self._db()
        rows = dict(db.execute("SELECT rowid, -bm25(terms) FROM terms WHERE terms MATCH ?", (match,))) if match else {}
        rows = {r: s for r, s in rows.items() if s > 0}
        if not rows:
            return [], {}
        values = np.fromiter(rows.values(), float)
        low = nth_best(values, k)  # every tie of the k-th best is read, so ties rank by chunk id
        kept = json.dumps([r for r, s in rows.items() if s >= low])
        ranking = best({i: rows[r] for r, i in db.execute(
            "SELECT chunks.rowid, chunks.id FROM json_each(?) AS j JOIN chunks ON chunks.rowid = j.value", (kept,))}, k)
        floor = nth_best(values, depth)
        wanted = list(scored)
        found = db.execute(f"SELECT id, rowid FROM chunks WHERE id IN ({','.join('?' * len(wanted))})",  # noqa: S608
                           wanted) if wanted else ()
        return ranking, {i: rows[r] for i, r in found if rows.get(r, -math.inf) >= floor}

    def _search_within(self, query: str, folders: Sequence[str]) -> dict[str, float]:
        """FTS5's BM25 as a catalog of only the chunks of ``folders`` would compute it (its padding rows
        included): each term's document count, the row count and the average length are the folders' own, so
        a space ranks as an index of its documents alone would. FTS5 computes its statistics over the whole
        table, so the occurrences of the question's terms in the folders are scored here; it costs about what
        FTS5's own query does for a tenth of 100k chunks, and more as the scope grows (BENCHMARKS.md,
        "Document spaces").
        """
        terms = analyze(query)
        if not terms:
            return {}
        distinct = sorted(set(terms))
        scope = self._scope(folders)
        # (term, chunk id, occurrences in the chunk, the chunk's length) for every chunk of the folders
        found = self._db().execute(
            "SELECT occurrences.term, chunks.id, count(*), terms_docsize.sz FROM occurrences"  # noqa: S608
            " JOIN chunks ON chunks.rowid = occurrences.doc JOIN terms_docsize ON terms_docsize.id = chunks.rowid"
            f" WHERE occurrences.term IN ({','.join('?' * len(distinct))})"
            f" AND chunks.folder IN ({','.join('?' * len(folders))}) GROUP BY occurrences.term, occurrences.doc",
            (*distinct, *folders),
        ).fetchall()
        counts = Counter(term for term, *_ in found)
        too_common = common(len(scope.ids))
        kept = [t for t in terms if counts[t] <= too_common] or terms  # as ``_match`` keeps them
        weight = Counter(kept)  # a repeated term counts once per occurrence, as in the FTS5 query
        rows = len(scope.ids) + PAD_ROWS
        average = (scope.length + PAD_ROWS * PAD_TERMS) / rows
        scores: dict[str, float] = {}
        for term, chunk, frequency, size in found:
            if term in weight:
                part = contribution(rows, counts[term], frequency, _varint(size), average)
                scores[chunk] = scores.get(chunk, 0.0) + weight[term] * part
        return scores

    def _match(self, query: str) -> str:
        """An FTS5 query matching any of the question's terms but the common ones (each quoted, so no term
        is read as an operator).

        A repeated term stays repeated, so it counts once per occurrence as it did with ``bm25s``: SciFact
        hybrid nDCG@10 0.735 against 0.732 when each term counts once (BENCHMARKS.md, "Live index").
        """
        terms = analyze(query)
        if not terms:
            return ""
        distinct = sorted(set(terms))
        db = self._db()
        marks = ",".join("?" * len(distinct))
        rows = dict(db.execute(f"SELECT term, doc FROM vocabulary WHERE term IN ({marks})", distinct))  # noqa: S608
        too_common = common(self.chunk_count())
        kept = [t for t in terms if rows.get(t, 0) <= too_common] or terms
        return " OR ".join(f'"{t}"' for t in kept)

    def chunks(self, ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """The text and metadata of each of ``ids`` that a settled document holds (a document being rewritten
        is left out: its chunks in the store may already be the new ones)."""
        rows = self._db().execute(
            "SELECT chunks.id, chunks.text, chunks.metadata FROM json_each(?) AS j JOIN chunks ON chunks.id = j.value"
            " JOIN documents ON documents.root = chunks.root AND documents.source = chunks.source"
            " WHERE documents.doc_hash != ''", (json.dumps(list(ids)),))
        return {i: (text, json.loads(metadata)) for i, text, metadata in rows}

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The vector of each of ``ids`` that a settled document holds (0.1 ms for 24 at 10k chunks, against
        0.7-1.2 for Chroma's ``get``)."""
        rows = self._db().execute(
            "SELECT chunks.id, chunks.vector FROM json_each(?) AS j JOIN chunks ON chunks.id = j.value"
            " JOIN documents ON documents.root = chunks.root AND documents.source = chunks.source"
            " WHERE documents.doc_hash != '' AND chunks.vector IS NOT NULL", (json.dumps(list(ids)),))
        return {i: np.frombuffer(blob, np.float32) for i, blob in rows}

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One snapshot for every read inside (WAL: writers go on, and what they commit is not seen)."""
        db = self._db()
        db.execute("BEGIN")
        try:
            yield
        finally:
            db.execute("COMMIT")

    def last_change(self) -> int:
        """The change log's last sequence number (0 before any change): another number means new changes."""
        return int(self._db().execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0])

    def changed_since(self, seq: int) -> set[tuple[str, str]] | None:
        """The (root, source) of every document changed after ``seq``; None when any may have (the catalog was
        cleared, or the log no longer reaches back that far)."""
        db = self._db()
        first = db.execute("SELECT min(seq) FROM changes").fetchone()[0]
        if first is not None and first > seq + 1:
            return None
        rows = db.execute("SELECT root, source FROM changes WHERE seq > ?", (seq,)).fetchall()
        return None if any(root is None for root, _ in rows) else set(rows)

    def indexed(self, documents: Iterable[tuple[str, str]] | None = None) -> Iterator[IndexedChunk]:
        """The chunks of these settled documents (every one when None), with their terms."""
        query = ("SELECT chunks.id, chunks.root, chunks.source, chunks.folder, terms.body FROM chunks"
                 " JOIN documents ON documents.root = chunks.root AND documents.source = chunks.source"
                 " JOIN terms ON terms.rowid = chunks.rowid WHERE documents.doc_hash != ''")
        db = self._db()
        if documents is None:
            rows: Iterable[tuple[str, str, str, str, str]] = db.execute(query)
        else:
            keys = json.dumps([list(k) for k in documents])
            rows = db.execute(query + " AND (chunks.root, chunks.source) IN (SELECT j.value ->> 0, j.value ->> 1"
                              " FROM json_each(?) AS j)", (keys,))
        for i, root, source, folder, body in rows:
            yield IndexedChunk(i, root, source, folder, body.split())

    def _delete(self, db: sqlite3.Connection, keys: Sequence[tuple[str, str]]) -> None:
        for root, source in keys:
            rowids = [r for (r,) in db.execute("SELECT rowid FROM chunks WHERE root = ? AND source = ?",
                                               (root, source))]
            db.executemany("DELETE FROM terms WHERE rowid = ?", ((r,) for r in rowids))
            db.execute("DELETE FROM chunks WHERE root = ? AND source = ?", (root, source))
            db.execute("DELETE FROM documents WHERE root = ? AND source = ?", (root, source))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db(), self._write_lock)


class _Transaction:
    """``BEGIN IMMEDIATE`` .. ``COMMIT`` (or ``ROLLBACK``), one writer thread of this process at a time."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self.db, self.lock = db, lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()


def _log(db: sqlite3.Connection, keys: Sequence[tuple[str, str]]) -> None:
    """Note the documents a change touched, for in-memory readers (``changed_since``), keeping the log short."""
    db.executemany("INSERT INTO changes (root, source) VALUES (?, ?)", keys)
    db.execute("DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?", (_CHANGES_KEPT,))


@dataclass(frozen=True)
class _Scope:
    """The chunks of some folders as BM25 sees them: their ids and their total length in terms."""

    ids: list[str]
    length: int


def _varint(blob: bytes) -> int:
    """A chunk's length from FTS5's ``terms_docsize`` row: one SQLite varint per column (7 bits a byte, most
    significant first, the high bit set on all but the last; a ninth byte holds 8 bits)."""
    value = 0
    for byte in blob[:8]:
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value
    return (value << 8) | blob[8]
