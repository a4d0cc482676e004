"""The pipeline: documents in, cited answers out. One object the CLI and the chat bots share."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.answer import extractive_answer, is_relevant
from retrieval.embeddings import TokenEmbedder, get_embedder
from retrieval.errors import LLMError, UnverifiedAnswerError
from retrieval.followup import condense_question
from retrieval.prompts import LLM_UNAVAILABLE_NOTICE, LLM_UNVERIFIED_NOTICE
from retrieval.search import Searcher, SearchResult
from retrieval.settings import RetrievalSettings
from retrieval.store import ChunkStore, make_client, recorded_embedder
from retrieval.types import Answer, Passage, Scope, Turn, folder_of

if TYPE_CHECKING:  # the LLM client (openai, langchain-openai) and the loaders (pypdf, docx, bs4) load when used
    from retrieval.llm import LLMAnswerer, SentenceCallback
    from retrieval.loaders import LoadedDocument
    from retrieval.sync import ProgressFn, SyncReport

logger = logging.getLogger(__name__)


class Pipeline:
    """Index documents and answer questions over them with citations.

    Args:
        settings: where the store lives and how to search and answer.
        embedder: the embedding model; by default the packaged one named in settings.
        store: an open chunk store; by default the one settings point at.
    """

    def __init__(
        self,
        settings: RetrievalSettings | None = None,
        *,
        embedder: TokenEmbedder | None = None,
        store: ChunkStore | None = None,
    ) -> None:
        self.settings = settings or RetrievalSettings()
        client = None
        if embedder is None:
            name = self.settings.embedder
            if store is None and "embedder" not in self.settings.model_fields_set:
                # An index keeps the embedder that built it unless one is asked for: a default that changed
                # between releases must not lock a team out of its index.
                client = make_client(self.settings)
                name = recorded_embedder(client, self.settings.collection) or name
            embedder = get_embedder(name, batch_size=self.settings.embed_batch_size, data_dir=self.settings.data_dir)
        self.store = store or ChunkStore(self.settings, embedder, client=client)
        self.embedder = embedder
        self.searcher = Searcher(self.store, self.settings)
        self.llm: LLMAnswerer | None = None
        if self.settings.llm_enabled:
            from retrieval.llm import LLMAnswerer

            self.llm = LLMAnswerer(self.settings, embedder)
        # One sync at a time: a serving bot indexes from several threads (citebot index's hand-offs, the folder
        # watcher, kept replies, posted documents) and two syncs of one store must not interleave.
        self._indexing = threading.Lock()

    def index(self, paths: Iterable[Path], *, progress: ProgressFn | None = None) -> SyncReport:
        """Bring the index in line with these files and folders (a path that no longer exists is forgotten)."""
        from retrieval.sync import sync

        with self._indexing:
            return sync(paths, self.store, self.settings, progress=progress)

    def index_documents(
        self, root: str, docs: Iterable[LoadedDocument], *, progress: ProgressFn | None = None
    ) -> SyncReport:
        """Bring the index in line with documents already in memory, the whole contents of ``root``."""
        from retrieval.sync import sync_documents

        with self._indexing:
            return sync_documents(root, docs, self.store, self.settings, progress=progress)

    def search(self, question: str, *, k: int | None = None, scope: Scope | None = None) -> SearchResult:
        """The best passages for ``question`` (inside ``scope`` when given)."""
        return self.searcher.search(question, k=k, scope=scope)

    def ask(
        self, question: str, history: Sequence[Turn] = (), *, on_sentence: SentenceCallback | None = None,
        scope: Scope | None = None,
    ) -> Answer:
        """A cited answer to ``question``; ``history`` holds earlier turns, of which the last ``history_turns``
        are read.

        A follow-up is made standalone before the search. With a language model configured, its verified
        sentences stream to ``on_sentence`` (without markers) and its verified answer is returned; if it fails, the
        extractive one is, with a notice saying why. With a ``scope``, only its documents are searched, so
        nothing else is read, quoted or sent to the model.
        """
        history = list(history)[max(0, len(history) - self.settings.history_turns) :]
        t0 = time.perf_counter()
        standalone = condense_question(question, history, self.llm.chat if self.llm else None)
        found = self.search(standalone, k=max(self.settings.top_k, self.settings.read_k), scope=scope)
        t1 = time.perf_counter()
        answer = self._answer(found.question, found.passages, history, on_sentence)
        answer.question = question  # the user's words; the standalone form only steered search and answer
        answer.timings.update(found.timings, search=t1 - t0, answer=time.perf_counter() - t1)
        answer.timings["total"] = time.perf_counter() - t0
        return answer

    def extractive(self, question: str, passages: Sequence[Passage]) -> Answer:
        """The offline answer: the passages' sentences that answer ``question``, quoted and cited."""
        return extractive_answer(question, passages, self.settings, self.embedder)

    def _answer(
        self, question: str, passages: list[Passage], history: Sequence[Turn], on_sentence: SentenceCallback | None
    ) -> Answer:
        """The language model's verified answer where one is configured and the passages are relevant.

        The model reads the best ``top_k`` passages; the extractive reader all ``read_k`` of them.
        """
        if self.llm is None or not is_relevant(passages, self.settings):
            return self.extractive(question, passages)
        try:
            return self.llm.answer(question, passages[: self.settings.top_k], history, on_sentence)
        except UnverifiedAnswerError as exc:
            logger.warning("showing the extractive answer: %s", exc)
            notice = LLM_UNVERIFIED_NOTICE
        except LLMError as exc:
            notice = LLM_UNAVAILABLE_NOTICE.format(reason=exc)
        answer = self.extractive(question, passages)
        answer.notice = notice
        return answer

    def passages(self, ids: Sequence[str], *, scope: Scope | None = None) -> list[Passage]:
        """The passages with these ids (repeats ignored) still indexed, and inside ``scope`` when given; a
        removed document's passages are gone."""
        found = (Passage(c.id, c.text, c.metadata) for c in self.store.get(list(dict.fromkeys(ids))))
        return [p for p in found if scope is None or scope.covers(folder_of(p.source))]

    def folders(self) -> dict[str, tuple[int, int]]:
        """Every indexed folder (relative to its root) with its (documents, chunks)."""
        self.store.catch_up()
        return self.store.catalog.folders()

    def sources(self, *, scope: Scope | None = None) -> list[dict[str, Any]]:
        """One row per indexed document (inside ``scope`` when given): source path, title, identifiers and chunk
        count."""
        docs: dict[str, dict[str, Any]] = {}
        for chunk in self.store.scan(documents=False):
            m = chunk.metadata
            if scope is not None and not scope.covers(folder_of(str(m["source"]))):
                continue
            row = docs.setdefault(
                f"{m.get('root')}/{m['source']}",
                {k: m[k] for k in ("source", "title", "doi", "pmid", "pmcid", "year", "format") if k in m},
            )
            row["chunks"] = row.get("chunks", 0) + 1
        return sorted(docs.values(), key=lambda r: r["source"])
