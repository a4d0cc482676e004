"""Faults in the middle of indexing: the store dies, or citebot itself is killed; nothing is lost.

Two cases index 300 generated documents (about 1,200 chunks, a few seconds of embedding with the small
packaged model and 300-character chunks, which keep it cheap) and kill something once chunks are stored:

- a real ``chroma run`` server is SIGKILLed under ``Pipeline.index``: that run fails with a StoreError at
  once (no hang), the server restarts on the same path and port, and the next run completes;
- ``citebot index`` with the embedded store is SIGKILLed, and run again.

Afterwards the store must hold exactly the chunks the documents cut into: no duplicate, none missing,
every chunk carrying its file's current hash and chunk count, its exact text and its vector.

Then the answer path: the LLM endpoint down or hanging while many people ask (extractive answers with a
notice, in bounded time), and Telegram's servers failing a send with 5xx (retried, delivered once; 429 is
tests/test_telegram.py's, Slack's rate limits tests/test_slack.py's).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.app import build_core
from bot.core import ChatCore, IncomingMessage
from bot.feedback import FeedbackStore
from bot.settings import BotSettings
from retrieval.chunking import split
from retrieval.embeddings import get_embedder
from retrieval.errors import StoreError
from retrieval.loaders import load
from retrieval.pipeline import Pipeline
from retrieval.prompts import LLM_UNAVAILABLE_NOTICE
from retrieval.settings import RetrievalSettings
from retrieval.store import ChunkStore
from retrieval.sync import file_hash
from tests.chroma_server import ChromaServer, free_port
from tests.conftest import RecordingResponder
from tests.emulators.openai_server import Hang, OpenAIEmulator
from tests.emulators.telegram_api import TelegramEmulator
from tests.test_telegram import ADA, BOB, private_chat, serve

pytestmark = pytest.mark.slow

N_DOCS = 300
CHEAP = {"embedder": "paraphrase-minilm-l3", "chunk_size": 300, "chunk_overlap": 0}
CITEBOT = str(Path(sys.executable).with_name("citebot"))
TOPICS = ["fibroblasts", "macrophages", "T cells", "blood vessels", "hypoxia", "the extracellular matrix",
          "checkpoint blockade", "cytokines", "dendritic cells", "metastasis", "angiogenesis", "exosomes"]


def write_corpus(folder: Path, n: int = N_DOCS) -> Path:
    """``n`` small reports of three paragraphs each, in ten sub-folders."""
    rng = random.Random(n)
    for i in range(n):
        topic, other = rng.sample(TOPICS, 2)
        paragraphs = [
            f"Report {i} studies how {topic} interact with {other} in tumour sample {rng.randint(1, 10**6)}. "
            f"The authors measured {rng.randint(2, 90)} patients over {rng.randint(2, 30)} months.",
            f"In cohort {i}, {topic} were found near {other} in {rng.randint(5, 95)} percent of the slides, "
            f"and the effect grew with the dose of the study drug.",
            f"The report concludes that targeting {topic} could change how {other} respond to therapy.",
        ]
        path = folder / f"group-{i % 10}" / f"report-{i:03d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n".join(paragraphs) + "\n")
    return folder


def wait_until(condition: Callable[[], Any], timeout: float = 180.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise AssertionError(f"still waiting after {timeout} s")


def assert_index_complete(store: ChunkStore, docs: Path, settings: RetrievalSettings) -> int:
    """Exactly the chunks ``docs`` cut into: no duplicate, none missing, hashes, texts and vectors right."""
    stored = list(store.scan())
    ids = [c.id for c in stored]
    assert len(ids) == len(set(ids))
    by_source: dict[str, dict[int, Any]] = defaultdict(dict)
    for chunk in stored:
        index = int(chunk.metadata["chunk_index"])
        assert index not in by_source[chunk.metadata["source"]], "two chunks at one position"
        by_source[chunk.metadata["source"]][index] = chunk
    files = sorted(docs.rglob("*.txt"))
    assert set(by_source) == {p.relative_to(docs).as_posix() for p in files}
    for path in files:
        expected = split(load(path, docs), chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
        chunks = by_source[path.relative_to(docs).as_posix()]
        assert sorted(chunks) == list(range(len(expected)))
        for index, chunk in chunks.items():
            assert chunk.metadata["doc_hash"] == file_hash(path)
            assert chunk.metadata["n_chunks"] == len(expected)
            assert chunk.text == expected[index].page_content
    vectors = [c.embedding for c in store.get(ids, embeddings=True)]
    assert len(vectors) == len(ids) and all(np.linalg.norm(v) > 0.99 for v in vectors)
    return len(ids)


def assert_answerable(pipeline: Pipeline, docs: Path) -> None:
    """The dense index finds documents written early and late in the run."""
    for n in (0, N_DOCS // 2, N_DOCS - 1):
        text = (docs / f"group-{n % 10}" / f"report-{n:03d}.txt").read_text().split("\n\n")[0]
        best = pipeline.searcher.search(text, k=1, mode="dense").passages[0]
        assert best.source == f"group-{n % 10}/report-{n:03d}.txt"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "docs")


# --- the Chroma server killed --------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ChromaServer]:
    srv = ChromaServer(tmp_path / "chroma-server").start()
    yield srv
    srv.stop()


def index_in_thread(pipeline: Pipeline, docs: Path) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["report"] = pipeline.index([docs])
        except Exception as exc:  # the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_fault_chroma_server_killed_mid_index_then_restarted_loses_nothing(
    server: ChromaServer, corpus: Path, tmp_path: Path
) -> None:
    settings = RetrievalSettings(data_dir=tmp_path / "data", chroma_host="127.0.0.1", chroma_port=server.port,
                                 _env_file=None, **CHEAP)
    pipeline = Pipeline(settings)
    observer = ChunkStore(settings, pipeline.store.embedder)
    thread, outcome = index_in_thread(pipeline, corpus)
    at_kill = wait_until(observer.count)
    server.kill()
    killed = time.monotonic()
    thread.join(timeout=30)
    failed_after = time.monotonic() - killed
    assert not thread.is_alive(), "indexing hung after the store died"
    assert isinstance(outcome.get("error"), StoreError), outcome
    assert "Chroma" in str(outcome["error"]) and "\n" not in str(outcome["error"]).strip()

    server.start()  # the same path and port; the fixture stops it
    survived = observer.count()
    rerun = Pipeline(settings)
    report = rerun.index([corpus])
    total = assert_index_complete(rerun.store, corpus, settings)
    print(f"chroma server: {at_kill} chunks seen before SIGKILL, failed {failed_after:.2f} s later "
          f"({outcome['error']}), {survived} after restart, "
          f"re-run embedded {report.chunks_embedded}, final {total}, lost 0")
    assert len(report.added) + len(report.updated) + len(report.unchanged) == N_DOCS
    assert report.skipped == [] and report.removed == []
    assert_answerable(rerun, corpus)
    assert Pipeline(settings).index([corpus]).chunks_embedded == 0


# --- citebot index killed (embedded store) -------------------------------------------------------------


def stored_rows(data_dir: Path) -> int:
    """Chunks the embedded store has committed so far (read-only, without opening Chroma)."""
    try:
        db = sqlite3.connect(f"file:{data_dir / 'chroma' / 'chroma.sqlite3'}?mode=ro", uri=True, timeout=0.1)
        try:
            return db.execute("SELECT count(*) FROM embeddings_queue").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:  # not created yet, or locked by the writer for a moment
        return 0


def test_fault_citebot_killed_mid_index_with_embedded_store_loses_nothing(corpus: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "CITEBOT_DATA_DIR": str(data), **{f"CITEBOT_{k.upper()}": str(v) for k, v in CHEAP.items()}}
    first = subprocess.Popen([CITEBOT, "index", str(corpus)], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        at_kill = wait_until(lambda: stored_rows(data) or first.poll() is not None)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL, first.stderr.read().decode()[-2000:]
    first.stderr.close()

    rerun = subprocess.run([CITEBOT, "index", str(corpus)], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    settings = RetrievalSettings(data_dir=data, _env_file=None, **CHEAP)
    pipeline = Pipeline(settings, embedder=get_embedder(CHEAP["embedder"]))
    total = assert_index_complete(pipeline.store, corpus, settings)
    print(f"embedded store: {at_kill} queued chunks seen before SIGKILL; re-run: {rerun.stdout.strip()}; "
          f"final {total}, lost 0")
    assert "0 skipped" in rerun.stdout
    assert_answerable(pipeline, corpus)


# --- the LLM endpoint down or hanging, many people asking -----------------------------------------------

SEEDS = Path(__file__).parent.parent / "seeds"
QUESTION = "What are the therapeutic targets in the TME?"


@pytest.fixture(scope="module")
def seeds_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("llm-faults") / "data"
    Pipeline(RetrievalSettings(data_dir=data, _env_file=None)).index([SEEDS])
    return data


def ask_many(settings: BotSettings, n: int) -> tuple[list[Any], float]:
    """``n`` people asking at once through a fresh core; the replies and the seconds it took."""
    core = build_core(settings)

    async def burst() -> list[Any]:
        return await asyncio.gather(*(core.handle(IncomingMessage("telegram", f"c{i}", f"u{i}", QUESTION, f"c{i}"))
                                      for i in range(n)))

    start = time.monotonic()
    replies = asyncio.run(burst())
    elapsed = time.monotonic() - start
    core.feedback.close()
    return replies, elapsed


@pytest.mark.parametrize("fault", ["down", "hanging"])
def test_fault_llm_endpoint_down_or_hanging_everyone_gets_the_extractive_answer(seeds_data: Path, fault: str) -> None:
    with OpenAIEmulator() as llm:
        llm.script(Hang(60))
        url = llm.url if fault == "hanging" else f"http://127.0.0.1:{free_port()}/v1"
        retrieval = RetrievalSettings(data_dir=seeds_data, openai_api_key="sk-test", openai_base_url=url,
                                      llm_timeout=1.0, llm_max_retries=1, _env_file=None)
        replies, elapsed = ask_many(BotSettings(retrieval=retrieval, _env_file=None), 20)
        calls = len(llm.requests)
    reason = "no reply within 1 s" if fault == "hanging" else f"cannot connect to {url}"
    assert [r.kind for r in replies] == ["answer"] * 20
    assert {r.answer.notice for r in replies} == {LLM_UNAVAILABLE_NOTICE.format(reason=reason)}
    assert all(r.answer.mode == "extractive" and r.answer.citations for r in replies)
    print(f"LLM {fault}: 20 concurrent questions answered extractively in {elapsed:.1f} s, "
          f"{calls} requests reached the endpoint")
    # The failed endpoint rests: the questions did not each wait out timeout x retries one after another.
    assert elapsed < 60


# --- Telegram's servers failing a send ----------------------------------------------------------------


@pytest.mark.parametrize("failures", [[502], [500, 503]])
def test_fault_telegram_server_errors_are_retried_and_the_answer_delivered_once(
    failures: list[int], bot_settings: BotSettings
) -> None:
    with TelegramEmulator() as telegram:
        settings = BotSettings(retrieval=bot_settings.retrieval, telegram_bot_token=telegram.token,
                               telegram_base_url=telegram.base_url, _env_file=None)
        responder = RecordingResponder()
        core = ChatCore(responder, settings, FeedbackStore.open(settings.retrieval))
        for status in failures:
            telegram.fail_next("sendMessage", status, "Bad Gateway" if status == 502 else "Internal Server Error")

        async def scenario() -> None:
            telegram.send(private_chat(ADA), ADA, "What are the targets?")
            telegram.send(private_chat(BOB), BOB, "And the checkpoints?")
            await telegram.wait_for("sendMessage", count=2, timeout=20)
            await asyncio.sleep(0.3)

        serve(core, settings, scenario)
        core.feedback.close()
        attempts = telegram.calls("sendMessage")
    assert [c.ok for c in attempts].count(False) == len(failures)
    delivered = [c for c in attempts if c.ok]
    assert sorted(c.params["chat_id"] for c in delivered) == sorted([ADA["id"], BOB["id"]])  # once each
    assert len(responder.calls) == 2
