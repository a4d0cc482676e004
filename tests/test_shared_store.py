"""Replicas on one Chroma server: each bot, with a data dir of its own, cites what was indexed through the other.

A real `chroma run`, two `citebot telegram` processes (each polling its own Bot API emulator, as two
machines would) and `citebot index` run with either replica's settings.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bot.core import ERROR_TEXT
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from tests.chroma_server import ChromaServer
from tests.emulators.telegram_api import TelegramEmulator
from tests.test_live_index import CITEBOT, NEW_NOTE, NOTES, _ask

pytestmark = pytest.mark.slow


def test_shared_store_two_replicas_both_cite_a_document_indexed_through_either(tmp_path: Path) -> None:
    server = ChromaServer(tmp_path / "chroma-server").start()
    docs = {name: tmp_path / name for name in ("docs-a", "docs-b")}
    for folder in docs.values():
        folder.mkdir()
    (docs["docs-a"] / "gasket.txt").write_text(NOTES["gasket.txt"])
    (docs["docs-b"] / NEW_NOTE[0]).write_text(NEW_NOTE[1])
    try:
        with TelegramEmulator() as tg_a, TelegramEmulator() as tg_b:
            envs = [{**os.environ, "CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(server.port),
                     "CITEBOT_DATA_DIR": str(tmp_path / f"replica-{n}"), "TELEGRAM_BOT_TOKEN": tg.token,
                     "TELEGRAM_BASE_URL": tg.base_url, "CITEBOT_RATE_LIMIT_QUESTIONS": "0"}
                    for n, tg in (("a", tg_a), ("b", tg_b))]
            bots = [subprocess.Popen([CITEBOT, "telegram"], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE) for env in envs]
            try:
                replies = asyncio.run(_scenario((tg_a, tg_b), envs, docs))
            finally:
                errors = []
                for bot in bots:
                    bot.send_signal(signal.SIGINT)
                    try:
                        bot.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        bot.kill()
                        bot.wait()
                    errors.append(bot.stderr.read().decode() if bot.stderr else "")
    finally:
        server.stop()
    assert all(ERROR_TEXT not in text for text in replies), "\n".join(e[-2000:] for e in errors)


async def _scenario(telegrams: tuple[TelegramEmulator, TelegramEmulator], envs: list[dict[str, str]],
                    docs: dict[str, Path]) -> list[str]:
    """Index one folder through each replica's settings; each replica must cite both within seconds."""
    replies = [await _ask(tg, "What does error E4021 mean?") for tg in telegrams]  # both are up
    for env, folder in zip(envs, docs.values(), strict=True):
        index = await asyncio.create_subprocess_exec(CITEBOT, "index", str(folder), env=env,
                                                     stdout=asyncio.subprocess.PIPE)
        out = (await index.communicate())[0].decode()
        assert index.returncode == 0 and "1 added" in out, out
    for tg in telegrams:
        for question, code in (("What does error E4021 mean?", "E4021"), ("What does error V3310 mean?", "V3310")):
            for _ in range(50):  # a replica looks at the store's generation once a second
                replies.append(await _ask(tg, question))
                if code in replies[-1] and "[1]" in replies[-1]:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"{code} not cited by a replica: {replies[-1]}")
    return replies


def test_shared_store_replica_follows_a_rename_that_keeps_the_chunk_count(tmp_path: Path) -> None:
    server = ChromaServer(tmp_path / "chroma-server").start()
    try:
        folder = tmp_path / "docs"
        folder.mkdir()
        (folder / "gasket.txt").write_text(NOTES["gasket.txt"])
        writer, reader = (Pipeline(RetrievalSettings(data_dir=tmp_path / name, chroma_host="127.0.0.1",
                                                     chroma_port=server.port, _env_file=None))
                          for name in ("replica-a", "replica-b"))
        writer.index([folder])
        assert reader.search("E4021").passages[0].source == "gasket.txt"
        (folder / "gasket.txt").rename(folder / "seal.txt")
        report = writer.index([folder])
        assert (report.added, report.removed) == (["seal.txt"], ["gasket.txt"])
        time.sleep(1.1)  # a replica looks at the store's generation once a second
        hits = reader.search("E4021").passages
        assert [p.source for p in hits] == ["seal.txt"] and hits[0].keyword_rank == 1
        assert reader.store.catalog.chunk_count() == reader.store.count() == 1
    finally:
        server.stop()
