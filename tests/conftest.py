"""Shared fixtures: an isolated environment, settings on a tmp data dir, and realistic answers."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.settings import BotSettings
from retrieval import SentenceCallback
from retrieval.embeddings import MODELS, OnnxEmbedder
from retrieval.pipeline import Pipeline
from retrieval.prompts import NOT_FOUND_PROMPT
from retrieval.settings import RetrievalSettings
from retrieval.types import Answer, Citation, Passage, Scope, Turn
from tests.chroma_server import STARTED
from tests.emulators.openai_server import OpenAIEmulator
from tests.fixtures_docs import make_team_folders

# Variables a developer's shell may carry that would change what the tests see.
_LEAKY_PREFIXES = ("CITEBOT_", "OPENAI_", "TELEGRAM_", "SLACK_", "CHROMA_")

# Two sources as the retrieval library describes them: (metadata, quoted sentence).
DEFAULT_SOURCES: list[tuple[dict[str, Any], str]] = [
    (
        {
            "source": "papers/tme-review.pdf",
            "title": "Targeting the tumour microenvironment",
            "page": 3,
            "doi": "10.1038/s41571-020-0403-1",
        },
        "Cancer-associated fibroblasts and tumour-associated macrophages are the main therapeutic targets.",
    ),
    (
        {
            "source": "papers/checkpoints.html",
            "title": "Immune checkpoints in solid tumours",
            "section": "Clinical trials",
            "pmid": "31562232",
        },
        "PD-1 and CTLA-4 blockade is in phase III trials for several solid tumours.",
    ),
]


SEEDS = Path(__file__).resolve().parent.parent / "seeds"


@pytest.fixture(scope="session", autouse=True)
def _no_chroma_server_left() -> Iterator[None]:
    """Fail the run if a test left a `chroma run` server running; stop it (by its PID) either way."""
    yield
    left = [p for p in STARTED if p.poll() is None]
    for process in left:
        process.kill()
        process.wait(10)
    assert not left, f"{len(left)} `chroma run` server(s) left running (PIDs {[p.pid for p in left]})"


@pytest.fixture(scope="session")
def int8_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the default embedder's int8 model, built once per test session (seconds)."""
    models = tmp_path_factory.mktemp("models")
    OnnxEmbedder(MODELS["minilm-l6-qint8"], cache_dir=models).load()
    return models


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, int8_models: Path) -> None:
    """Point the data dirs at tmp and drop tokens and servers configured in the developer's shell; the data dir
    starts with the session's int8 model linked in, as a data dir that has been used once holds it."""
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CITEBOT_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data" / "models").mkdir(parents=True)
    for built in int8_models.iterdir():
        os.link(built, tmp_path / "data" / "models" / built.name)


@pytest.fixture
def settings(tmp_path: Path) -> RetrievalSettings:
    """Retrieval settings with the data dir in tmp and no ``.env`` read."""
    return RetrievalSettings(data_dir=tmp_path / "data", _env_file=None)


@pytest.fixture(scope="session")
def seeded_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The real pipeline over the demo seeds, indexed once per run; tests only read from it."""
    settings = RetrievalSettings(data_dir=tmp_path_factory.mktemp("seeded") / "data", _env_file=None)
    pipeline = Pipeline(settings)
    pipeline.index([SEEDS])
    return pipeline


@pytest.fixture(scope="session")
def team_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The real pipeline over a team's folders (``fixtures_docs.TEAM_FOLDERS``), indexed once per run; tests
    only read from it."""
    base = tmp_path_factory.mktemp("team")
    pipeline = Pipeline(RetrievalSettings(data_dir=base / "data", _env_file=None))
    pipeline.index([make_team_folders(base / "docs")])
    return pipeline


@pytest.fixture
def bot_settings(settings: RetrievalSettings) -> BotSettings:
    """Bot settings around ``settings``: no tokens, no allowlists, default limits, no ``.env`` read."""
    return BotSettings(retrieval=settings, _env_file=None)


def _citation(number: int, metadata: dict[str, Any], quote: str) -> Citation:
    text = f"As the authors explain, {quote} This is discussed further below."
    start = text.index(quote)
    passage = Passage(id=f"p{number}", text=text, metadata={"start": 0, **metadata}, score=0.9 - number / 10)
    return Citation(number=number, passage=passage, quote=quote, start=start, end=start + len(quote))


def build_answer(
    text: str = "The main targets are fibroblasts and macrophages [1]. Checkpoint blockade is in trials [2].",
    *,
    question: str = "What are the therapeutic targets in the TME?",
    sources: Sequence[tuple[dict[str, Any], str]] = DEFAULT_SOURCES,
    found: bool = True,
    notice: str = "",
    mode: str = "extractive",
) -> Answer:
    """An ``Answer`` as the retrieval library returns it; ``found=False`` makes a declined one.

    A declined answer says the not-found sentence, cites nothing and lists ``sources`` as closest passages.
    """
    citations = [_citation(n, meta, quote) for n, (meta, quote) in enumerate(sources, 1)]
    passages = [c.passage for c in citations]
    if not found:
        return Answer(question, NOT_FOUND_PROMPT, [], passages, False, mode, notice)
    return Answer(question, text, citations, passages, True, mode, notice)


@pytest.fixture(scope="session")
def make_answer() -> Callable[..., Answer]:
    """``build_answer`` as a fixture (session-scoped, so hypothesis tests may use it)."""
    return build_answer


class RecordingResponder:
    """A real ``Responder`` that answers every question with ``build_answer`` and records what it saw; its
    index holds the passages of the answers it gave.

    It streams nothing: ``on_sentence`` is never called, as with extractive answers.
    """

    def __init__(self, answer: Callable[[str], Answer] | None = None) -> None:
        self.calls: list[tuple[str, list[Turn]]] = []
        self.scopes: list[Scope | None] = []  # the scope of each call
        self.indexed: dict[str, Passage] = {}  # every passage it has answered from; remove one to "unindex" it
        self._answer = answer or (lambda question: build_answer(question=question))

    def answer(self, question: str, history: Sequence[Turn], on_sentence: SentenceCallback | None = None, *,
               scope: Scope | None = None) -> Answer:
        self.calls.append((question, list(history)))
        self.scopes.append(scope)
        answer = self._answer(question)
        if answer is not None:
            self.indexed.update((p.id, p) for p in answer.passages)
        return answer

    def passages(self, ids: Sequence[str], *, scope: Scope | None = None) -> list[Passage]:
        return [self.indexed[i] for i in ids if i in self.indexed]


class StreamingResponder(RecordingResponder):
    """A ``RecordingResponder`` that first writes each answer's text to ``on_sentence`` word by word, ``pace``
    seconds apart, as a language model does; ``threads`` names the threads it answered on."""

    def __init__(self, answer: Callable[[str], Answer] | None = None, *, pace: float = 0.0) -> None:
        super().__init__(answer)
        self.pace = pace
        self.threads: set[str] = set()

    def answer(self, question: str, history: Sequence[Turn], on_sentence: SentenceCallback | None = None, *,
               scope: Scope | None = None) -> Answer:
        answer = super().answer(question, history, on_sentence, scope=scope)
        self.threads.add(threading.current_thread().name)
        for word in re.findall(r"\s*\S+", answer.text):
            if on_sentence is not None:
                on_sentence(word)
                time.sleep(self.pace)
        return answer


@pytest.fixture
def responder() -> RecordingResponder:
    return RecordingResponder()


@pytest.fixture
def openai() -> Iterator[OpenAIEmulator]:
    """An OpenAI-compatible server on 127.0.0.1, scripted by the test."""
    with OpenAIEmulator() as server:
        yield server
