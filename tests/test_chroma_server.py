"""The scale path: the same pipeline against a real `chroma run` server through HttpClient."""

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.citations import verify
from retrieval.errors import StoreError
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from tests.chroma_server import ChromaServer, free_port

SEEDS = Path(__file__).parent.parent / "seeds"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ChromaServer]:
    srv = ChromaServer(tmp_path / "chroma-server").start()
    yield srv
    srv.stop()


def test_chroma_server_index_and_answer(server: ChromaServer, tmp_path: Path) -> None:
    settings = RetrievalSettings(data_dir=tmp_path / "data", chroma_host="127.0.0.1", chroma_port=server.port)
    pipeline = Pipeline(settings)
    report = pipeline.index([SEEDS])
    assert len(report.added) == 2
    assert not (tmp_path / "data" / "chroma").exists(), "the embedded store must not be used"
    answer = pipeline.ask("What are the therapeutic targets in the TME?")
    assert answer.found and verify(answer) == []
    # A second client (another process, in real life) sees the same chunks and re-indexes nothing.
    assert Pipeline(settings).index([SEEDS]).chunks_embedded == 0


def test_chroma_server_frozen_fails_in_time_instead_of_hanging(server: ChromaServer, tmp_path: Path) -> None:
    settings = RetrievalSettings(
        data_dir=tmp_path / "data", chroma_host="127.0.0.1", chroma_port=server.port, chroma_timeout=1.5
    )
    pipeline = Pipeline(settings)
    pipeline.index([SEEDS])
    assert server.process is not None
    server.process.send_signal(signal.SIGSTOP)  # alive but not answering, as a stuck server is
    try:
        started = time.monotonic()
        with pytest.raises(StoreError):
            pipeline.ask("What are the therapeutic targets in the TME?")
        with pytest.raises(StoreError):
            Pipeline(settings)
        assert time.monotonic() - started < 10
    finally:
        server.process.send_signal(signal.SIGCONT)
    assert pipeline.ask("What are the therapeutic targets in the TME?").found


def test_chroma_server_unreachable_is_a_clear_error(tmp_path: Path) -> None:
    settings = RetrievalSettings(data_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=free_port())
    with pytest.raises(StoreError, match="127.0.0.1"):
        Pipeline(settings)
