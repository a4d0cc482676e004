"""The chunk store: a Chroma collection, embedded in the data directory or on a Chroma server.

This is the only module that imports ``chromadb``. Beside the chunks' collection, ``<name>-documents`` holds
one record per document (content hash, chunk count, the generation that wrote it, pending or removed) and
the store's generation record, which every write bumps. Both live where the chunks live, so replicas on a
Chroma server share them. Each process keeps a local ``Catalog`` (the documents and the keyword index) and
catches it up from the records written since its last look: a change costs its own documents, never a scan.

A write marks its documents pending (record and catalog) before touching their chunks and commits their new
state only after, so a run killed half-way leaves them pending and the next sync rewrites them. Chunk ids
are deterministic, so a rewrite replaces and never duplicates.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chromadb
import chromadb.errors
import httpx
import numpy as np
from chromadb.config import Settings as ChromaSettings

from retrieval.catalog import FORMAT, Catalog, CatalogChunk, DocumentRow
from retrieval.embeddings import ChromaEmbeddingFunction, Embedder
from retrieval.errors import ConfigError, StoreError
from retrieval.keyword_index import KeywordIndex
from retrieval.settings import RetrievalSettings
from retrieval.types import Scope, folder_of

if TYPE_CHECKING:  # a question never loads LangChain: only indexing makes Documents
    from langchain_core.documents import Document

logger = logging.getLogger(__name__)

_PAGE = 5000  # rows per get() page when scanning the collection
_GENERATION_ID = "~generation"  # the record in the documents collection that every write bumps
# The most chunk ids a scoped dense query sends (about 1.3 MB of JSON to a Chroma server); a larger scope is
# filtered on the folder metadata instead. Chroma's metadata filter costs about 175 ms at 100k chunks for a
# space of 10,000 against 25 ms with the ids, and the ids stay faster up to the whole collection on both
# clients (BENCHMARKS.md, "Document spaces"): the cap bounds the request body, not the time.
_QUERY_IDS_MAX = 50_000


@dataclass(frozen=True)
class DocState:
    """What the store holds of one document."""

    doc_hash: str
    n_chunks: int  # how many chunks the document was cut into
    present: int  # how many of them are stored (-1: a write of it was interrupted)
    size: int | None = None  # the file's size and modification time when it was last found unchanged
    mtime_ns: int | None = None

    @property
    def complete(self) -> bool:
        return self.present == self.n_chunks


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    metadata: dict[str, Any]
    embedding: np.ndarray | None = None


def root_key(root: str) -> str:
    """A short stable key for an indexed folder, so chunks never carry server paths."""
    return hashlib.sha256(root.encode()).hexdigest()[:12]


def chunk_id(root: str, source: str, index: int) -> str:
    digest = hashlib.sha256("\0".join((root, source)).encode()).hexdigest()[:20]
    return f"{digest}:{index}"


def _source_key(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:20]


def _http_client(settings: RetrievalSettings, chroma_settings: ChromaSettings) -> chromadb.ClientAPI:
    """An ``HttpClient`` whose requests time out: chromadb's own wait forever on a frozen server."""
    scheme = "https" if settings.chroma_ssl else "http"
    # The client's constructor already talks to the server: check it answers in time first.
    httpx.get(f"{scheme}://{settings.chroma_host}:{settings.chroma_port}/api/v2/heartbeat",
              timeout=settings.chroma_timeout).raise_for_status()
    client = chromadb.HttpClient(
        host=settings.chroma_host, port=settings.chroma_port, ssl=settings.chroma_ssl, settings=chroma_settings
    )
    session = getattr(getattr(client, "_server", None), "_session", None)  # chromadb 1.5: an httpx.Client
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(settings.chroma_timeout)
    else:
        logger.warning("cannot set a timeout on this chromadb version's HTTP client")
    return client


def make_client(settings: RetrievalSettings) -> chromadb.ClientAPI:
    """A Chroma client: ``HttpClient`` when CHROMA_HOST is set, else a store in the data directory."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_host:
            return _http_client(settings, chroma_settings)
        path = settings.data_dir / "chroma"
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except Exception as exc:  # chromadb raises plain ValueError/ConnectionError/... here
        if settings.chroma_host:
            raise StoreError(f"cannot reach the Chroma server at {settings.chroma_host}:{settings.chroma_port} "
                             f"({exc}): is it running? check CHROMA_HOST and CHROMA_PORT") from exc
        raise StoreError(f"cannot open the Chroma store in {settings.data_dir} ({exc}): set CITEBOT_DATA_DIR to a "
                         "folder you may write") from exc


def recorded_embedder(client: chromadb.ClientAPI, collection: str) -> str | None:
    """The embedder an existing collection was built with; None when there is no such collection yet."""
    try:
        found = client.get_collection(collection, embedding_function=None)  # metadata only: no embedding here
    except chromadb.errors.NotFoundError:
        return None
    except Exception as exc:
        raise StoreError(f"cannot open collection {collection!r}: {exc}") from exc
    return (found.metadata or {}).get("embedder")


class ChunkStore:
    """Chunks and their embeddings in one Chroma collection (cosine space)."""

    def __init__(
        self,
        settings: RetrievalSettings,
        embedder: Embedder,
        *,
        client: chromadb.ClientAPI | None = None,
        collection: str | None = None,
    ) -> None:
        self.client = client or make_client(settings)
        self.name = collection or settings.collection
        self.embedder = embedder
        try:
            self._collection = self.client.get_or_create_collection(
                self.name,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"embedder": embedder.name},
                embedding_function=ChromaEmbeddingFunction(embedder),  # type: ignore[arg-type]
            )
        except Exception as exc:
            raise StoreError(f"cannot open collection {self.name!r}: {exc}") from exc
        built_with = (self._collection.metadata or {}).get("embedder")
        if built_with and built_with != embedder.name:
            raise ConfigError(
                f"collection {self.name!r} was built with embedder {built_with!r}, not {embedder.name!r}: "
                f"set CITEBOT_EMBEDDER={built_with} or index into another CITEBOT_COLLECTION"
            )
        try:  # one record per document and the generation record: what every reader catches up from
            self._documents = self.client.get_or_create_collection(
                f"{self.name}-documents",
                embedding_function=ChromaEmbeddingFunction(embedder),  # type: ignore[arg-type]
            )
        except Exception as exc:
            raise StoreError(f"cannot open collection {self.name!r}-documents: {exc}") from exc
        self.catalog = Catalog(Path(settings.data_dir) / "catalog" / f"{self.name}.sqlite")
        self._open_catalog()
        self.keywords = KeywordIndex(self.catalog)  # loads on its first query: indexing never needs it

    def count(self) -> int:
        return self._call(self._collection.count)

    def generation(self) -> tuple[int, str]:
        """The store's generation and the nonce of the write that set it: any write changes the pair."""
        res = self._call(self._documents.get, ids=[_GENERATION_ID], include=["metadatas"])
        if not res["ids"]:
            return 0, ""
        meta = res["metadatas"][0]
        return int(meta["generation"]), str(meta["nonce"])

    def document_states(self, root: str) -> dict[str, DocState]:
        """Per source path below ``root``: its stored hash and chunk count, from the catalog (no scan)."""
        self.catch_up()
        return {
            source: DocState(row.doc_hash, row.n_chunks, row.n_chunks if row.doc_hash else -1, row.size,
                             row.mtime_ns)
            for source, row in self.catalog.documents(root_key(root)).items()
        }

    def write(self, root: str, chunks: Sequence[Document], embeddings: np.ndarray,
              stamps: Mapping[str, tuple[int, int]] | None = None) -> None:
        """Replace every stored chunk of the chunks' documents with these ones.

        ``stamps`` maps a source to its file's (size, mtime_ns), which lets a later sync skip hashing it.
        """
        sources = sorted({str(c.metadata["source"]) for c in chunks})
        generation, caught_up = self._begin(root, sources)
        ids = [chunk_id(root, c.metadata["source"], c.metadata["chunk_index"]) for c in chunks]
        metadatas = [{**c.metadata, "root": root_key(root), "folder": folder_of(str(c.metadata["source"]))}
                     for c in chunks]
        step = self._call(self.client.get_max_batch_size)
        for i in range(0, len(ids), step):
            self._call(
                self._collection.upsert,
                ids=ids[i : i + step],
                documents=[c.page_content for c in chunks[i : i + step]],
                metadatas=metadatas[i : i + step],
                embeddings=embeddings[i : i + step],
            )
        first = {str(c.metadata["source"]): c.metadata for c in chunks}
        rows = [
            DocumentRow(root_key(root), s, str(first[s]["doc_hash"]), int(first[s]["n_chunks"]), generation,
                        *(stamps or {}).get(s, (None, None)))
            for s in sources
        ]
        self._put_rows(rows, generation)
        self.catalog.replace(rows, [CatalogChunk(i, str(m["source"]), c.page_content, m, v)
                                    for i, c, m, v in zip(ids, chunks, metadatas, embeddings, strict=True)])
        self._finish(generation, caught_up)

    def remove(self, root: str, sources: Sequence[str]) -> None:
        """Delete the chunks of these documents."""
        if not sources:
            return
        generation, caught_up = self._begin(root, sources)
        self._put_records(root, sources, generation, removed=True)
        self.catalog.remove(root_key(root), sources)
        self._finish(generation, caught_up)

    def _begin(self, root: str, sources: Sequence[str]) -> tuple[int, bool]:
        """Mark ``sources`` pending (record and catalog) and delete their chunks: the first half of a change.

        Returns the change's generation and whether the catalog had applied every change before it.
        """
        generation, nonce = self.generation()
        caught_up = (str(generation), nonce) == (self.catalog.get_meta("generation"), self.catalog.get_meta("nonce"))
        rk = root_key(root)
        settled = self.catalog.chunk_ids(rk, sources)
        unsettled = [s for s in sources if s not in settled]
        self._put_records(root, sources, generation + 1, pending=True)  # an interrupted change stays visible
        self.catalog.mark_pending(rk, sources)
        known = [i for s in sources for i in settled.get(s, [])]
        if known:
            self._call(self._collection.delete, ids=known)
        # A document the catalog has no settled chunks of may still have some, from an interrupted run:
        # find them by metadata (slower at scale) unless its record says nothing of it was ever stored.
        records = self._call(self._documents.get, ids=[f"{rk}:{_source_key(s)}" for s in unsettled],
                             include=["metadatas"])["metadatas"] if unsettled else []
        stale = [str(m["source"]) for m in records if not m["removed"]]
        for i in range(0, len(stale), 500):
            where = {"$and": [{"root": rk}, {"source": {"$in": stale[i : i + 500]}}]}
            self._call(self._collection.delete, where=where)
        return generation + 1, caught_up

    def _finish(self, generation: int, caught_up: bool) -> None:
        """Announce the change to every reader; a catalog that was current is current again without a look."""
        nonce = self._set_generation(generation)
        if caught_up:
            self.catalog.set_meta(generation=str(generation), nonce=nonce)

    def stamp(self, root: str, source: str, size: int, mtime_ns: int) -> None:
        """Remember an unchanged file's size and modification time, so the next sync need not hash it."""
        self.catalog.stamp(root_key(root), source, size, mtime_ns)

    def keyword_search(self, query: str, k: int, folders: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """Up to ``k`` (chunk id, BM25 score) pairs for ``query``, best first (``KeywordIndex.search``)."""
        return self.keywords.search(query, k, folders)

    def keyword_rank(self, query: str, k: int, folders: Sequence[str] | None = None, *, scored: Collection[str],
                     depth: int) -> tuple[list[tuple[str, float]], dict[str, float]]:
        """``keyword_search``, and the BM25 scores of the ids of ``scored`` that rank among the best ``depth``."""
        return self.keywords.rank(query, k, folders, scored=scored, depth=depth)

    def folders(self, scope: Scope | None) -> list[str] | None:
        """The indexed folders ``scope`` covers, sorted (None: no scope, every folder)."""
        if scope is None:
            return None
        return sorted(f for f in self.catalog.folder_names() if scope.covers(f))

    def catch_up(self) -> int:
        """Bring the catalog up to the store's generation, one changed document at a time.

        Another process (or replica) that wrote to the store bumped its generation; the documents it wrote
        or removed since the catalog's last look carry a generation at least that high. Returns how many
        documents changed in the catalog.
        """
        generation, nonce = self.generation()
        applied = int(self.catalog.get_meta("generation") or 0)
        if (applied, self.catalog.get_meta("nonce") or "") == (generation, nonce):
            return 0
        # At or above: a second writer may have used the generation this catalog last applied.
        changed, unsettled = 0, []
        for meta in self._records(where={"generation": {"$gte": applied}}):
            changed += self._apply_record(meta, unsettled)
        if unsettled:  # being written right now: look again from there next time
            self.catalog.set_meta(generation=str(min(unsettled)), nonce="")
        else:
            self.catalog.set_meta(generation=str(generation), nonce=nonce)
        if changed:
            logger.info("catalog caught up with %d changed document(s), generation %d", changed, generation)
        return changed

    def query(self, embedding: np.ndarray, k: int, folders: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """The ids of the ``k`` nearest chunks (fewer when the store holds fewer) with their cosine similarity,
        best first; only chunks of ``folders`` when given (Chroma filters before it ranks). Only ids and
        distances: a search reads the texts of the few passages it keeps (``get``).

        A scope is passed to Chroma as the catalog's chunk ids of its folders (up to ``_QUERY_IDS_MAX``), else
        as a filter on the folder metadata. Either way HNSW searches the whole graph keeping only those chunks,
        so the results are the same; a chunk id names its document, so no id reaches another folder.
        """
        if folders is None:
            return self._nearest(embedding, k)
        ids = self.catalog.ids_in(folders) if folders else []
        if not ids:
            return []
        if len(ids) <= _QUERY_IDS_MAX:
            try:
                return self._nearest(embedding, k, ids=ids)
            except StoreError as exc:
                # Chroma fails the whole query when one id is unknown ("Error finding id"): a chunk the catalog
                # still lists while a write replaces it, or one another replica removed. The filter answers.
                if not isinstance(exc.__cause__, chromadb.errors.InternalError):
                    raise
                logger.debug("scoped query by ids failed (%s): filtering on the folders instead", exc)
        return self._nearest(embedding, k, where={"folder": {"$in": list(folders)}})

    def _nearest(self, embedding: np.ndarray, k: int, *, ids: list[str] | None = None,
                 where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        # Chroma returns what it holds for any k, so no count() first: counting scans the collection (9 ms
        # at 100,000 chunks, a sixth of the search; BENCHMARKS.md, Latency).
        res = self._call(self._collection.query, query_embeddings=[embedding], n_results=k, ids=ids, where=where,
                         include=["distances"])
        return [(i, 1.0 - float(dist)) for i, dist in zip(res["ids"][0], res["distances"][0], strict=True)]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored embeddings of these ids (unknown ids are left out), without their texts: from the catalog,
        from Chroma only those it does not hold settled."""
        held = self.catalog.vectors(ids)
        ids = [i for i in ids if i not in held]
        if not ids:
            return held
        res = self._call(self._collection.get, ids=list(ids), include=["embeddings"])
        return held | {i: np.asarray(res["embeddings"][n], dtype=np.float32) for n, i in enumerate(res["ids"])}

    def get(self, ids: Sequence[str], *, embeddings: bool = False) -> list[StoredChunk]:
        """The chunks with these ids (unknown ids are left out), in the order given."""
        if not ids:
            return []
        include = ["documents", "metadatas"] + (["embeddings"] if embeddings else [])
        res = self._call(self._collection.get, ids=list(ids), include=include)
        found = {
            i: StoredChunk(i, res["documents"][n], dict(res["metadatas"][n]),
                           res["embeddings"][n] if embeddings else None)
            for n, i in enumerate(res["ids"])
        }
        return [found[i] for i in ids if i in found]

    def chunks(self, ids: Sequence[str]) -> list[StoredChunk]:
        """``get(ids)`` for a search's kept passages: read from the catalog (0.1 ms for 24 against 1.4-2.6 for
        Chroma's ``get`` at 10k chunks), from Chroma only those the catalog does not hold settled yet."""
        held = self.catalog.chunks(ids)
        missing = {c.id: c for c in self.get([i for i in ids if i not in held])}
        return [StoredChunk(i, *held[i]) if i in held else missing[i] for i in ids if i in held or i in missing]

    def scan(
        self, *, where: dict[str, Any] | None = None, documents: bool = True, embeddings: bool = False
    ) -> Iterator[StoredChunk]:
        """Every stored chunk (optionally filtered), page by page."""
        include = ["metadatas"] + (["documents"] if documents else []) + (["embeddings"] if embeddings else [])
        offset = 0
        while True:
            res = self._call(self._collection.get, where=where, include=include, limit=_PAGE, offset=offset)
            for n, i in enumerate(res["ids"]):
                text = res["documents"][n] if documents else ""
                yield StoredChunk(i, text, dict(res["metadatas"][n]), res["embeddings"][n] if embeddings else None)
            if len(res["ids"]) < _PAGE:
                return
            offset += _PAGE

    def _open_catalog(self) -> None:
        """Rebuild the catalog from the collection when it was made for another one, or by an older citebot."""
        identity = f"{FORMAT}:{self._collection.id}:{self._documents.id}"
        if self.catalog.get_meta("identity") == identity:
            return
        if self.catalog.get_meta("identity") is not None or self.count():
            logger.info("rebuilding the catalog of collection %r from the store", self.name)
        self.catalog.clear()
        if self.count():
            self._rebuild_catalog()
            self.catalog.optimize()
        self.catalog.set_meta(identity=identity)

    def _rebuild_catalog(self) -> None:
        """Read every chunk once: per document, the catalog rows and (for a store older than the document
        records) the records themselves. A document not completely stored is left out, so sync rewrites it."""
        by_doc: dict[tuple[str, str], list[StoredChunk]] = {}
        unfoldered: list[StoredChunk] = []
        for chunk in self.scan(embeddings=True):
            by_doc.setdefault((str(chunk.metadata["root"]), str(chunk.metadata["source"])), []).append(chunk)
            if "folder" not in chunk.metadata:
                unfoldered.append(chunk)
        self._add_folders(unfoldered)
        generation, nonce = self.generation()
        records = {(str(m["root"]), str(m["source"])): m for m in self._records()} if generation else {}
        rows, terms = [], []
        for (rk, source), stored in by_doc.items():
            hashes = {str(c.metadata["doc_hash"]) for c in stored}
            n_chunks = int(stored[0].metadata["n_chunks"])
            record = records.get((rk, source))
            if len(hashes) > 1 or len(stored) != n_chunks or (
                    record is not None and (record["pending"] or record["doc_hash"] != next(iter(hashes)))):
                continue
            rows.append(DocumentRow(rk, source, hashes.pop(), n_chunks, generation))
            terms += [CatalogChunk(c.id, source, c.text, c.metadata, c.embedding) for c in stored]
        if not generation:  # a store written before document records existed
            self._put_rows(rows, 1)
            generation = 2  # above the records, so catching up never reads them all again
            nonce = self._set_generation(generation)
        self.catalog.replace(rows, terms)
        self.catalog.set_meta(generation=str(generation), nonce=nonce)
        logger.info("catalog rebuilt: %d documents, %d chunks", len(rows), len(terms))

    def _add_folders(self, chunks: Sequence[StoredChunk]) -> None:
        """Give chunks written before scoped search their folder, which the dense side filters on: a metadata
        update, no re-embedding (any replica may do it; the value is the same)."""
        step = self._call(self.client.get_max_batch_size)
        for i in range(0, len(chunks), step):
            part = chunks[i : i + step]
            self._call(self._collection.update, ids=[c.id for c in part],
                       metadatas=[{**c.metadata, "folder": folder_of(str(c.metadata["source"]))} for c in part])
        if chunks:
            logger.info("added the folder to %d chunk(s) indexed before scoped search", len(chunks))

    def _apply_record(self, meta: Mapping[str, Any], unsettled: list[int]) -> int:
        """Bring one document of the catalog in line with its record; 1 when the catalog changed."""
        rk, source = str(meta["root"]), str(meta["source"])
        row = self.catalog.document(rk, source)
        if meta["pending"]:
            unsettled.append(int(meta["generation"]))
            return 0
        if meta["removed"]:
            if row is None:
                return 0
            self.catalog.remove(rk, [source])
            return 1
        if row is not None and row.doc_hash == meta["doc_hash"]:
            return 0
        stored = list(self.scan(where={"$and": [{"root": rk}, {"source": source}]}, embeddings=True))
        if len(stored) != int(meta["n_chunks"]) or any(c.metadata["doc_hash"] != meta["doc_hash"] for c in stored):
            unsettled.append(int(meta["generation"]))
            return 0
        new = DocumentRow(rk, source, str(meta["doc_hash"]), int(meta["n_chunks"]), int(meta["generation"]))
        self.catalog.replace([new], [CatalogChunk(c.id, source, c.text, c.metadata, c.embedding) for c in stored])
        return 1

    def _records(self, where: dict[str, Any] | None = None) -> Iterator[Mapping[str, Any]]:
        """The document records (matching ``where``), page by page; the generation record left out."""
        offset = 0
        while True:
            res = self._call(self._documents.get, where=where, include=["metadatas"], limit=_PAGE, offset=offset)
            yield from (m for m in res["metadatas"] if "source" in m)
            if len(res["ids"]) < _PAGE:
                return
            offset += _PAGE

    def _put_records(self, root: str, sources: Sequence[str], generation: int, *, pending: bool = False,
                     removed: bool = False) -> None:
        """Mark the records of ``sources`` pending (a write under way) or removed, at ``generation``."""
        empty = [DocumentRow(root_key(root), s, "", 0, generation) for s in sources]
        self._put_rows(empty, generation, pending=pending, removed=removed)

    def _put_rows(self, rows: Sequence[DocumentRow], generation: int, *, pending: bool = False,
                  removed: bool = False) -> None:
        for i in range(0, len(rows), 1000):
            part = rows[i : i + 1000]
            self._call(
                self._documents.upsert,
                ids=[f"{r.root}:{_source_key(r.source)}" for r in part],
                metadatas=[{"root": r.root, "source": r.source, "doc_hash": r.doc_hash, "n_chunks": r.n_chunks,
                            "generation": generation, "pending": pending, "removed": removed} for r in part],
                embeddings=np.ones((len(part), 1), dtype=np.float32),
            )

    def _set_generation(self, generation: int) -> str:
        """Announce a finished write to every reader; returns the nonce that tells two writers' equal numbers
        apart."""
        nonce = uuid.uuid4().hex
        self._call(self._documents.upsert, ids=[_GENERATION_ID], embeddings=np.ones((1, 1), dtype=np.float32),
                   metadatas=[{"generation": generation, "nonce": nonce}])
        return nonce

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, StoreError):
            raise
        except Exception as exc:  # network, server and storage faults all surface as StoreError
            raise StoreError(f"Chroma {getattr(fn, '__name__', 'call')} failed: {exc}") from exc
