"""A live index: a serving bot keeps answering while the documents change under it.

Real processes on one embedded store: `citebot telegram` polling the Bot API emulator with `citebot index`
handing its paths to it, and `citebot serve --watch` (Telegram and Slack) following a folder. Questions go
in without pause before, during and after the change.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.core import ERROR_TEXT
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from tests.emulators.slack_api import SlackEmulator
from tests.emulators.telegram_api import TelegramEmulator, private_chat, user
from tests.test_reliability_faults import assert_index_complete
from tests.test_slack import event_callback, mention, texts
from tests.test_telegram import replies_to

pytestmark = pytest.mark.slow

CITEBOT = str(Path(sys.executable).with_name("citebot"))
ADA = user(1001, "Ada")
NOTES = {
    "gasket.txt": "Error E4021 means the frobnicator gasket is misaligned; reseat the gasket before restarting.",
    "pump.txt": "Error P7781 means the pump impeller is clogged; flush the impeller with clean water.",
}
NEW_NOTE = ("valve.txt", "Error V3310 means the valve spring is broken; replace the valve spring at once.")


def _env(data: Path, telegram: TelegramEmulator) -> dict[str, str]:
    return {**os.environ, "CITEBOT_DATA_DIR": str(data), "TELEGRAM_BOT_TOKEN": telegram.token,
            "TELEGRAM_BASE_URL": telegram.base_url, "CITEBOT_RATE_LIMIT_QUESTIONS": "0"}


async def _ask(telegram: TelegramEmulator, question: str) -> str:
    sent = telegram.send(private_chat(ADA), ADA, question)
    [reply] = await telegram.wait_for("sendMessage", where=replies_to(sent), timeout=60)
    return reply.text


def test_live_index_bot_answers_through_a_reindex_and_cites_the_change_within_seconds(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    docs.mkdir()
    for name, text in NOTES.items():
        (docs / name).write_text(text)
    with TelegramEmulator() as telegram:
        env = _env(data, telegram)
        subprocess.run([CITEBOT, "index", str(docs)], env=env, check=True, capture_output=True, timeout=300)
        bot = subprocess.Popen([CITEBOT, "telegram"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            replies, index_out, delays = asyncio.run(_scenario(telegram, docs, env))
        finally:
            bot.send_signal(signal.SIGINT)
            try:
                bot.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bot.kill()
                bot.wait()
            bot_err = bot.stderr.read().decode() if bot.stderr else ""
    print(f"live index: {len(replies)} questions answered; changes cited {delays['new']:.1f} s and the deletion "
          f"seen {delays['gone']:.1f} s after `citebot index` finished")
    assert all(ERROR_TEXT not in text for text in replies), bot_err[-3000:]
    assert "serves the store" in index_out and "1 added, 0 updated, 1 unchanged, 1 removed" in index_out
    assert delays["new"] <= 5.0 and delays["gone"] <= 5.0
    settings = RetrievalSettings(data_dir=data, _env_file=None)
    store = Pipeline(settings).store
    total = assert_index_complete(store, docs, settings)
    assert store.catalog.chunk_count() == total == 2
    assert {i for i, _ in store.keyword_search("error means", 10)} == {c.id for c in store.scan()}


async def _scenario(telegram: TelegramEmulator, docs: Path, env: dict[str, str]) -> tuple[list[str], str, dict]:
    """Ask until the bot answers, keep asking while `citebot index` runs, then until the change shows."""
    replies = [await _ask(telegram, "What does error E4021 mean?")]  # the bot is up once this comes back
    assert "E4021" in replies[0]
    (docs / NEW_NOTE[0]).write_text(NEW_NOTE[1])
    (docs / "pump.txt").unlink()
    index = await asyncio.create_subprocess_exec(CITEBOT, "index", str(docs), env=env,
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = asyncio.ensure_future(index.communicate())
    questions = ["What does error E4021 mean?", "What does error P7781 mean?", "What does error V3310 mean?"]
    while not output.done() and len(replies) < 500:
        replies.append(await _ask(telegram, questions[len(replies) % 3]))
    finished = time.monotonic()
    out = (await output)[0].decode()
    assert index.returncode == 0, out
    delays = {}
    for key, question, shows in (("new", "What does error V3310 mean?", lambda t: "V3310" in t and "[1]" in t),
                                 ("gone", "What does error P7781 mean?", lambda t: "P7781" not in t)):
        for _ in range(100):
            replies.append(await _ask(telegram, question))
            if shows(replies[-1]):
                delays[key] = time.monotonic() - finished
                break
        else:
            raise AssertionError(f"not seen after 100 questions: {replies[-1]}")
    return replies, out, delays


def test_live_index_serve_watch_answers_on_telegram_and_slack_and_follows_the_folder(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    docs.mkdir()
    (docs / "gasket.txt").write_text(NOTES["gasket.txt"])
    with TelegramEmulator() as telegram, SlackEmulator() as slack:
        env = {**_env(data, telegram), "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token,
               "SLACK_API_URL": slack.api_url}
        bot = subprocess.Popen([CITEBOT, "serve", "--watch", str(docs)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
        try:
            replies, delays = asyncio.run(_watched(telegram, docs))
            event = mention("What does error V3310 mean?")
            slack.wait_for_ack(slack.push(event_callback(event), timeout=60))
            [post] = slack.wait_for("chat.postMessage", timeout=60)
        finally:
            bot.send_signal(signal.SIGINT)
            try:
                bot.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bot.kill()
                bot.wait()
            bot_err = bot.stderr.read().decode() if bot.stderr else ""
    print(f"serve --watch: {len(replies)} questions; a new file cited {delays['new']:.1f} s and a deleted one "
          f"gone {delays['gone']:.1f} s after it changed on disk")
    assert all(ERROR_TEXT not in text for text in replies), bot_err[-3000:]
    assert delays["new"] <= 5.0 and delays["gone"] <= 5.0
    assert post["thread_ts"] == event["ts"] and "V3310" in texts(post["blocks"])
    settings = RetrievalSettings(data_dir=data, _env_file=None)
    assert assert_index_complete(Pipeline(settings).store, docs, settings) == 1


async def _watched(telegram: TelegramEmulator, docs: Path) -> tuple[list[str], dict]:
    """Ask until the watched folder's first sync shows, then change the folder and ask until it shows."""
    replies: list[str] = []
    delays = {}
    steps = [("start", None, "What does error E4021 mean?", lambda t: "E4021" in t and "[1]" in t),
             ("new", lambda: (docs / NEW_NOTE[0]).write_text(NEW_NOTE[1]), "What does error V3310 mean?",
              lambda t: "V3310" in t and "[1]" in t),
             ("gone", lambda: (docs / "gasket.txt").unlink(), "What does error E4021 mean?",
              lambda t: "E4021" not in t)]
    for key, change, question, shows in steps:
        if change:
            change()
        changed = time.monotonic()
        for _ in range(300):
            replies.append(await _ask(telegram, question))
            if shows(replies[-1]):
                delays[key] = time.monotonic() - changed
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{key}: not seen after 300 questions: {replies[-1]}")
    return replies, delays
