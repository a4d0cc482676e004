"""The feedback database: answers kept with their citations, one vote per user, stats, migrations."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bot.feedback import MIGRATIONS, FeedbackStore, PlatformStats
from bot.types import StoredCitation


@pytest.fixture
def store(settings) -> FeedbackStore:
    store = FeedbackStore.open(settings)
    yield store
    store.close()


def record(store: FeedbackStore, answer, platform: str = "telegram", user: str = "7") -> int:
    return store.record_answer(platform=platform, conversation_id="chat-1", user_id=user,
                               question=answer.question, answer=answer)


def test_feedback_store_lives_in_the_data_dir(settings, store) -> None:
    assert store.path == settings.data_dir / "feedback.db"
    assert store.path.exists()


def test_feedback_answer_kept_with_its_citations(store, make_answer) -> None:
    answer = make_answer(mode="llm")
    stored = store.get_answer(record(store, answer, "slack", "U1"))
    assert (stored.platform, stored.conversation_id, stored.user_id) == ("slack", "chat-1", "U1")
    assert (stored.question, stored.text, stored.found, stored.mode) == (
        answer.question, answer.text, True, "llm")
    assert stored.citations == [StoredCitation.from_citation(c) for c in answer.citations]
    assert stored.citations[0].doi == "10.1038/s41571-020-0403-1"
    assert stored.citations[1].pmid == "31562232"
    assert stored.citations[1].location == "section Clinical trials"


def test_feedback_unknown_answer_is_none(store) -> None:
    assert store.get_answer(12345) is None


def test_feedback_new_vote_replaces_the_old_one(store, make_answer) -> None:
    answer_id = record(store, make_answer())
    assert store.record_vote(answer_id, "telegram", "7", 1)
    assert store.record_vote(answer_id, "telegram", "7", -1)
    assert store.record_vote(answer_id, "telegram", "8", -1)
    (telegram,) = store.stats().platforms
    assert (telegram.up, telegram.down) == (0, 2)


def test_feedback_vote_on_unknown_answer_is_refused(store) -> None:
    assert store.record_vote(999, "telegram", "7", 1) is False
    assert store.stats().platforms == []


def test_feedback_vote_must_be_up_or_down(store, make_answer) -> None:
    answer_id = record(store, make_answer())
    with pytest.raises(ValueError):
        store.record_vote(answer_id, "telegram", "7", 5)


def test_feedback_stats_per_platform_and_most_down_voted(store, make_answer) -> None:
    good = record(store, make_answer())
    bad = record(store, make_answer(question="Is coffee a checkpoint inhibitor?"))
    record(store, make_answer(found=False))
    worst = record(store, make_answer(question="What is CAR-T?"), "slack", "U1")
    store.record_vote(good, "telegram", "1", 1)
    store.record_vote(bad, "telegram", "1", -1)
    for user in ("U1", "U2"):
        store.record_vote(worst, "slack", user, -1)
    stats = store.stats()
    assert stats.platforms == [
        PlatformStats("slack", questions=1, answered=1, declined=0, up=0, down=2),
        PlatformStats("telegram", questions=3, answered=2, declined=1, up=1, down=1),
    ]
    assert [(d.answer_id, d.question, d.down) for d in stats.most_down_voted] == [
        (worst, "What is CAR-T?", 2), (bad, "Is coffee a checkpoint inhibitor?", 1)
    ]


def test_feedback_reopening_keeps_data_and_migrates_once(settings, make_answer) -> None:
    first = FeedbackStore.open(settings)
    answer_id = record(first, make_answer())
    first.close()
    again = FeedbackStore.open(settings)
    assert again.get_answer(answer_id).question == make_answer().question
    again.close()
    with sqlite3.connect(settings.data_dir / "feedback.db") as db:
        applied = [row[0] for row in db.execute("SELECT name FROM _migrations")]
    assert applied == [m.__name__ for m in MIGRATIONS]


def test_feedback_creates_missing_folders(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "a" / "b" / "feedback.db")
    assert store.stats().platforms == []
    store.close()


def test_feedback_concurrent_writers_lose_nothing(settings, make_answer) -> None:
    """Threads sharing one store, and a second store on the same file (another bot process)."""
    stores = [FeedbackStore.open(settings), FeedbackStore.open(settings)]
    answer = make_answer()
    ids: list[int] = []

    def work(n: int) -> None:
        store = stores[n % 2]
        for _ in range(25):
            answer_id = record(store, answer, user=str(n))
            store.record_vote(answer_id, "telegram", str(n), 1)
            ids.append(answer_id)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (telegram,) = stores[0].stats().platforms
    assert len(set(ids)) == 200
    assert (telegram.questions, telegram.up) == (200, 200)
    for store in stores:
        store.close()


def test_feedback_answers_stored_before_the_chat_was_recorded_keep_their_chat(tmp_path: Path, make_answer) -> None:
    path = tmp_path / "feedback.db"
    with sqlite3.connect(path) as db:  # a database as the first release left it
        db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        MIGRATIONS[0](db)
        db.execute("INSERT INTO _migrations VALUES (?, '2024-01-01')", (MIGRATIONS[0].__name__,))
        for conversation in ("C0HELP:1700000000.1", "-1001234:7", "D0ASKER"):
            db.execute("INSERT INTO answers (platform, conversation_id, user_id, question, answer, found, mode,"
                       " citations, created_at) VALUES ('slack', ?, 'U1', 'q', 'a', 1, 'extractive', '[]', '')",
                       (conversation,))
    db.close()
    store = FeedbackStore(path)
    assert [store.get_answer(n).chat_id for n in (1, 2, 3)] == ["C0HELP", "-1001234", "D0ASKER"]
    new = store.get_answer(store.record_answer(platform="slack", conversation_id="C1:2", user_id="U1", question="q",
                                               answer=make_answer(), chat_id="C1", team_id="T1"))
    assert (new.chat_id, new.team_id, new.citations[0].passage_id) == ("C1", "T1", "p1")
    store.close()


def _damage(path: Path, how: str) -> bytes:
    """Damage the database file as a failing disk or a stray write might; returns its bytes afterwards."""
    data = path.read_bytes()
    if how == "not a database":
        path.write_bytes(b"this is no SQLite file" * 100)
    else:  # a valid header, then noise where the pages were
        path.write_bytes(data[:4096] + bytes((n * 37 + 11) % 256 for n in range(len(data) - 4096)))
    return path.read_bytes()


@pytest.mark.parametrize("how", ["not a database", "broken pages"])
def test_feedback_damaged_database_is_moved_aside_and_a_fresh_one_started(settings, make_answer, caplog,
                                                                          how) -> None:
    path = settings.data_dir / "feedback.db"
    store = FeedbackStore.open(settings)
    for n in range(50):
        record(store, make_answer(question=f"question {n} " + "x" * 500))
    store.close()  # the last connection checkpoints the WAL into the file
    damaged = _damage(path, how)
    store = FeedbackStore.open(settings)
    assert store.stats().platforms == []  # a fresh database, usable at once
    record(store, make_answer())
    store.close()
    [aside] = settings.data_dir.glob("feedback.db.damaged-*[0-9]")
    assert aside.read_bytes() == damaged  # nothing deleted
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "damaged" in warning.getMessage() and aside.name in warning.getMessage()
