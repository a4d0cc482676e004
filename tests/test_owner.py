"""The embedded store's single writer: who holds the lock, what `citebot index` and a second bot do about it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.app import serving
from bot.cli import cli
from bot.settings import BotSettings
from retrieval import owner
from retrieval.errors import StoreError
from retrieval.settings import RetrievalSettings


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "gasket.txt").write_text("Error E4021 means the frobnicator gasket is misaligned; reseat it.")
    return folder


def test_owner_lock_names_its_holder_and_frees_on_release(tmp_path: Path) -> None:
    first, second = owner.StoreLock(tmp_path), owner.StoreLock(tmp_path)
    assert first.try_acquire(owner.SERVE, "citebot telegram")
    assert not second.try_acquire(owner.INDEX, "citebot index")
    holder = second.holder()
    assert holder is not None and (holder.role, holder.command) == (owner.SERVE, "citebot telegram")
    first.release()
    assert second.holder() is None and second.try_acquire(owner.INDEX, "citebot index")
    second.release()


def test_owner_second_serving_process_on_one_data_dir_is_refused(bot_settings: BotSettings) -> None:
    lock = owner.StoreLock(bot_settings.retrieval.data_dir)
    assert lock.try_acquire(owner.SERVE, "citebot slack")
    try:
        with pytest.raises(StoreError, match="citebot slack .* already serves"), \
                serving(bot_settings, "citebot telegram", on_wait=lambda holder: None):
            pass
    finally:
        lock.release()


def test_owner_index_beside_a_serving_bot_hands_the_paths_over_and_prints_its_report(
    bot_settings: BotSettings, docs: Path
) -> None:
    with serving(bot_settings, "citebot telegram", on_wait=lambda holder: None) as core:
        result = CliRunner().invoke(cli, ["index", str(docs)])
        assert result.exit_code == 0, result.output
        assert "citebot telegram (pid" in result.output and "serves the store" in result.output
        assert "Indexed: 1 added" in result.output
        assert core.responder.pipeline.search("E4021").passages[0].source == "gasket.txt"
    assert owner.StoreLock(bot_settings.retrieval.data_dir).holder() is None


def test_owner_index_waits_for_another_index_with_one_line(settings: RetrievalSettings, docs: Path) -> None:
    other = owner.StoreLock(settings.data_dir)
    assert other.try_acquire(owner.INDEX, "citebot index")
    timer = threading.Timer(1.0, other.release)
    timer.start()
    try:
        result = CliRunner().invoke(cli, ["index", str(docs)])
    finally:
        timer.join()
    assert result.exit_code == 0, result.output
    assert result.output.count("Waiting for citebot index (pid") == 1
    assert "Indexed: 1 added" in result.output
