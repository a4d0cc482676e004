"""The chunk store: a Chroma collection, embedded in the data directory or on a Chroma server.

With the embedder's Chroma face (``embeddings.ChromaEmbeddingFunction``), the only module that imports
``chromadb``. Chunks carry their document's content hash and chunk count, which is what makes re-indexing
incremental and crash-safe: a document counts as indexed only when all of its chunks with the current hash
are present; anything else is rewritten on the next run. Chunk ids are deterministic, so a rewrite replaces
and never duplicates.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import chromadb
import httpx
import numpy as np
from chromadb.config import Settings as ChromaSettings
from langchain_core.documents import Document

from retrieval.embeddings import ChromaEmbeddingFunction, Embedder
from retrieval.errors import ConfigError, StoreError
from retrieval.settings import RetrievalSettings

logger = logging.getLogger(__name__)

_PAGE = 5000  # rows per get() page when scanning the collection


@dataclass(frozen=True)
class DocState:
    """What the store holds of one document."""

    doc_hash: str
    n_chunks: int  # how many chunks the document was cut into
    present: int  # how many of them are stored

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
        where = f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else settings.data_dir
        raise StoreError(f"cannot open the Chroma store at {where}: {exc}") from exc


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

    def count(self) -> int:
        return self._call(self._collection.count)

    def document_states(self, root: str) -> dict[str, DocState]:
        """Per source path below ``root``: its stored hash, expected and present chunk counts."""
        counts: dict[tuple[str, str], list[int]] = {}
        for chunk in self.scan(where={"root": root_key(root)}, documents=False):
            key = (str(chunk.metadata["source"]), str(chunk.metadata["doc_hash"]))
            counts.setdefault(key, [int(chunk.metadata["n_chunks"]), 0])[1] += 1
        states: dict[str, DocState] = {}
        for (source, doc_hash), (n_chunks, present) in counts.items():
            # Two hashes for one source mean a rewrite was interrupted: mark it incomplete.
            if source in states:
                states[source] = DocState(doc_hash, n_chunks, -1)
            else:
                states[source] = DocState(doc_hash, n_chunks, present)
        return states

    def write(self, root: str, chunks: Sequence[Document], embeddings: np.ndarray) -> None:
        """Replace every stored chunk of the chunks' documents with these ones."""
        self.remove(root, sorted({str(c.metadata["source"]) for c in chunks}))
        ids = [chunk_id(root, c.metadata["source"], c.metadata["chunk_index"]) for c in chunks]
        metadatas = [{**c.metadata, "root": root_key(root)} for c in chunks]
        step = self._call(self.client.get_max_batch_size)
        for i in range(0, len(ids), step):
            self._call(
                self._collection.upsert,
                ids=ids[i : i + step],
                documents=[c.page_content for c in chunks[i : i + step]],
                metadatas=metadatas[i : i + step],
                embeddings=embeddings[i : i + step],
            )

    def remove(self, root: str, sources: Sequence[str]) -> None:
        """Delete the chunks of these documents."""
        for i in range(0, len(sources), 500):
            where = {"$and": [{"root": root_key(root)}, {"source": {"$in": list(sources[i : i + 500])}}]}
            self._call(self._collection.delete, where=where)

    def query(self, embedding: np.ndarray, k: int) -> list[tuple[StoredChunk, float]]:
        """The ``k`` nearest chunks (fewer when the store holds fewer) with their cosine similarity, best first."""
        # Chroma returns what it holds for any k, so no count() first: counting scans the collection (9 ms
        # at 100,000 chunks, a sixth of the search; BENCHMARKS.md, Latency).
        res = self._call(
            self._collection.query,
            query_embeddings=[embedding],
            n_results=k,
            include=["documents", "metadatas", "distances"],
        )
        rows = zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True)
        return [(StoredChunk(i, d, dict(m)), 1.0 - float(dist)) for i, d, m, dist in rows]

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

    def scan(self, *, where: dict[str, Any] | None = None, documents: bool = True) -> Iterator[StoredChunk]:
        """Every stored chunk (optionally filtered), page by page."""
        include = ["metadatas"] + (["documents"] if documents else [])
        offset = 0
        while True:
            res = self._call(self._collection.get, where=where, include=include, limit=_PAGE, offset=offset)
            for n, i in enumerate(res["ids"]):
                text = res["documents"][n] if documents else ""
                yield StoredChunk(i, text, dict(res["metadatas"][n]))
            if len(res["ids"]) < _PAGE:
                return
            offset += _PAGE

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, StoreError):
            raise
        except Exception as exc:  # network, server and storage faults all surface as StoreError
            raise StoreError(f"Chroma {getattr(fn, '__name__', 'call')} failed: {exc}") from exc
