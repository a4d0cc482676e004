"""Wiring: the retrieval pipeline behind the platform-neutral chat core, as every front end uses it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.core import ChatCore
from bot.feedback import FeedbackStore
from bot.settings import BotSettings
from retrieval import (
    STORE_SERVED_ERROR,
    Answer,
    Passage,
    Pipeline,
    Scope,
    SentenceCallback,
    StoreError,
    SyncReport,
    Turn,
    Watcher,
    owner,
)


class PipelineResponder:
    """The ``Responder`` the chat core calls: a pipeline, with the conversation's turns as history."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def answer(self, question: str, history: Sequence[Turn], on_sentence: SentenceCallback | None = None, *,
               scope: Scope | None = None) -> Answer:
        return self.pipeline.ask(question, history, on_sentence=on_sentence, scope=scope)

    def passages(self, ids: Sequence[str], *, scope: Scope | None = None) -> list[Passage]:
        """The passages of ``ids`` still indexed (in ``scope``), so stored answers never quote a removed
        document, nor one outside the space."""
        return self.pipeline.passages(ids, scope=scope)

    def folders(self) -> dict[str, tuple[int, int]]:
        """The indexed folders, for the spaces file's check."""
        return self.pipeline.folders()

    def sources(self, *, scope: Scope | None = None) -> list[dict[str, Any]]:
        """The indexed documents (in ``scope``), for the bots' help texts."""
        return self.pipeline.sources(scope=scope)

    def index(self, paths: Sequence[Path]) -> SyncReport:
        """Index ``paths`` (the help desk's saved replies, posted documents) through the normal sync."""
        return self.pipeline.index(paths)


def build_core(settings: BotSettings, *, pipeline: Pipeline | None = None) -> ChatCore:
    """A chat core over the index ``settings`` point at (or over ``pipeline``), the help desk's kept replies and
    the inbox indexed."""
    pipeline = pipeline or Pipeline(settings.retrieval)
    core = ChatCore(PipelineResponder(pipeline), settings, FeedbackStore.open(settings.retrieval))
    core.index_kept()
    return core


@contextmanager
def serving(settings: BotSettings, command: str, *, on_wait: Callable[[owner.Holder], None],
            watch: Sequence[Path] = ()) -> Iterator[ChatCore]:
    """The chat core of a process that serves questions until the block ends.

    With an embedded store the process owns it: it holds the store lock (waiting, with ``on_wait``, for a
    ``citebot index`` that holds it) and indexes the paths ``citebot index`` hands it. A second serving
    process on the same data dir is refused. With a Chroma server nothing is locked. ``watch`` folders are
    re-synced as their files change. All indexing runs in threads of its own, one run at a time (the
    pipeline's).
    """
    data_dir = settings.retrieval.data_dir
    lock = None if settings.retrieval.chroma_host else owner.StoreLock(data_dir)
    if lock is not None:
        other = owner.acquire(lock, owner.SERVE, command, on_wait, until=lambda h: h.role == owner.SERVE)
        if other is not None:
            raise StoreError(STORE_SERVED_ERROR.format(command=other.command, pid=other.pid, data_dir=data_dir))
    try:
        pipeline = Pipeline(settings.retrieval)

        def index(paths: list[Path]) -> SyncReport:
            return pipeline.index(paths)

        services: list[owner.IndexService | Watcher] = []
        if lock is not None:
            services.append(owner.IndexService(owner.IndexRequests(data_dir), lambda paths: index(paths).to_dict()))
        if watch:
            services.append(Watcher(watch, lambda paths: index(paths).lines(), ignore=data_dir))
        for service in services:
            service.start()
        try:
            yield build_core(settings, pipeline=pipeline)
        finally:
            for service in services:
                service.stop()
    finally:
        if lock is not None:
            lock.release()
