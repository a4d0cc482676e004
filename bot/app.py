"""Wiring: the retrieval pipeline behind the platform-neutral chat core, as every front end uses it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.core import ChatCore
from bot.feedback import FeedbackStore
from bot.settings import BotSettings
from retrieval import Answer, Passage, Pipeline, SentenceCallback, Turn


class PipelineResponder:
    """The ``Responder`` the chat core calls: a pipeline, with the conversation's turns as history."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._indexing = threading.Lock()  # two replies kept at once must not sync the same folder together

    def answer(self, question: str, history: Sequence[Turn], on_sentence: SentenceCallback | None = None) -> Answer:
        return self.pipeline.ask(question, history, on_sentence=on_sentence)

    def passages(self, ids: Sequence[str]) -> list[Passage]:
        """The passages of ``ids`` still indexed, so stored answers never quote a removed document."""
        return self.pipeline.passages(ids)

    def sources(self) -> list[dict[str, Any]]:
        """The indexed documents, for the bots' help texts."""
        return self.pipeline.sources()

    def index(self, paths: Sequence[Path]) -> object:
        """Index ``paths`` (the help desk's saved replies) through the normal sync."""
        with self._indexing:
            return self.pipeline.index(paths)


def build_core(settings: BotSettings, *, pipeline: Pipeline | None = None) -> ChatCore:
    """A chat core over the index ``settings`` point at (or over ``pipeline``), the help desk's kept replies
    indexed."""
    pipeline = pipeline or Pipeline(settings.retrieval)
    core = ChatCore(PipelineResponder(pipeline), settings, FeedbackStore.open(settings.retrieval))
    core.index_kept_replies()
    return core
