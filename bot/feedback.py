"""SQLite store of the questions asked, the answers given, the votes on them and the help desk's escalations
and replies, shared by every front end.

The database is ``feedback.db`` in the data directory. Its schema grows through append-only migrations:
each ``mNNN_what_changed(db)`` function runs once, and the ``_migrations`` table records which have.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.types import Escalation, StoredAnswer, StoredCitation
from retrieval import Answer, RetrievalSettings

logger = logging.getLogger(__name__)

# SQLite's names for a file that is not a database or whose pages are broken.
_DAMAGED = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next schema migration."""
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_answers_and_votes(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE answers (
            id INTEGER PRIMARY KEY,
            platform TEXT NOT NULL,
            conversation_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            question TEXT NOT NULL,
            answer TEXT NOT NULL,
            found INTEGER NOT NULL,
            mode TEXT NOT NULL,
            citations TEXT NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE votes (
            answer_id INTEGER NOT NULL REFERENCES answers(id),
            platform TEXT NOT NULL,
            user_id TEXT NOT NULL,
            vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
            created_at TEXT NOT NULL,
            PRIMARY KEY (answer_id, platform, user_id)
        )"""
    )
    db.execute("CREATE INDEX answers_platform ON answers(platform)")


@migration
def m002_answers_chat_and_team(db: sqlite3.Connection) -> None:
    # Where an answer was given decides who may open it again; older rows take the chat from the conversation.
    db.execute("ALTER TABLE answers ADD COLUMN chat_id TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE answers ADD COLUMN team_id TEXT NOT NULL DEFAULT ''")
    db.execute(
        "UPDATE answers SET chat_id = CASE WHEN instr(conversation_id, ':') > 0"
        " THEN substr(conversation_id, 1, instr(conversation_id, ':') - 1) ELSE conversation_id END"
    )


@migration
def m003_escalations_and_replies(db: sqlite3.Connection) -> None:
    # One escalation per answer; its help-desk message is filled in once posted ("" while it is on its way).
    db.execute(
        """CREATE TABLE escalations (
            id INTEGER PRIMARY KEY,
            answer_id INTEGER NOT NULL UNIQUE REFERENCES answers(id),
            platform TEXT NOT NULL,
            asker_id TEXT NOT NULL,
            asker_name TEXT NOT NULL,
            reply_chat TEXT NOT NULL,
            reply_to TEXT NOT NULL,
            helpdesk_chat TEXT NOT NULL,
            helpdesk_message TEXT NOT NULL,
            link TEXT NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX escalations_message ON escalations(platform, helpdesk_chat, helpdesk_message)")
    db.execute(
        """CREATE TABLE helpdesk_replies (
            id INTEGER PRIMARY KEY,
            escalation_id INTEGER NOT NULL REFERENCES escalations(id),
            responder_id TEXT NOT NULL,
            responder_name TEXT NOT NULL,
            text TEXT NOT NULL,
            document TEXT NOT NULL,
            created_at TEXT NOT NULL,
            withdrawn_at TEXT
        )"""
    )


@migration
def m004_answers_space(db: sqlite3.Connection) -> None:
    # The document space an answer was given in (bot.spaces): its buttons open only there. "" = no spaces file.
    db.execute("ALTER TABLE answers ADD COLUMN space TEXT NOT NULL DEFAULT ''")


def migrate(db: sqlite3.Connection) -> None:
    """Apply the migrations ``db`` has not seen yet, in one transaction (safe with several processes)."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    db.execute("BEGIN IMMEDIATE")
    try:
        applied = {row[0] for row in db.execute("SELECT name FROM _migrations")}
        for fn in MIGRATIONS:
            if fn.__name__ not in applied:
                fn(db)
                db.execute("INSERT INTO _migrations VALUES (?, ?)", (fn.__name__, _now()))
                logger.info("feedback database: applied %s", fn.__name__)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


@dataclass(frozen=True)
class PlatformStats:
    """Counts for one platform."""

    platform: str
    questions: int
    answered: int
    declined: int
    up: int
    down: int


@dataclass(frozen=True)
class DownVoted:
    """An answer users disliked, for ``citebot stats``."""

    answer_id: int
    platform: str
    question: str
    down: int
    up: int


@dataclass(frozen=True)
class GapQuestion:
    """A question the documents did not serve: declined, voted 👎 or escalated, for ``citebot gaps``."""

    answer_id: int
    platform: str
    question: str
    created_at: str
    declined: bool
    down_voted: bool
    escalated: bool
    answered: bool  # a responder's reply to it is kept as a source
    space: str = ""  # the spaces it was asked in, as answers record them (``bot.spaces.key``)


@dataclass(frozen=True)
class Stats:
    """What ``citebot stats`` reports."""

    platforms: list[PlatformStats]
    most_down_voted: list[DownVoted]


class FeedbackStore:
    """Questions, answers and votes in SQLite; safe to share between threads.

    Args:
        path: the database file; its folder is created when missing.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = _connect(path)
        except sqlite3.DatabaseError as exc:
            if exc.sqlite_errorname not in _DAMAGED:  # a locked or read-only database is not damaged
                raise
            aside = _move_aside(path)
            logger.warning("the feedback database %s is damaged (%s): moved it to %s and started a fresh one",
                           path, exc, aside.name)
            self._db = _connect(path)

    @classmethod
    def open(cls, settings: RetrievalSettings) -> FeedbackStore:
        """The store in the data directory of ``settings``."""
        return cls(settings.data_dir / "feedback.db")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def record_answer(self, *, platform: str, conversation_id: str, user_id: str, question: str,
                      answer: Answer, chat_id: str = "", team_id: str = "", space: str = "") -> int:
        """Store a question and the answer given in ``chat_id`` (of ``team_id``) from the document ``space``;
        returns the answer's id."""
        citations = [asdict(StoredCitation.from_citation(c)) for c in answer.citations]
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO answers (platform, conversation_id, user_id, question, answer, found, mode,"
                " citations, created_at, chat_id, team_id, space) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (platform, conversation_id, user_id, question, answer.text, int(answer.found), answer.mode,
                 json.dumps(citations, ensure_ascii=False), _now(), chat_id, team_id, space),
            )
        return int(cursor.lastrowid or 0)

    def record_vote(self, answer_id: int, platform: str, user_id: str, vote: int) -> bool:
        """Store a 👍 (+1) or 👎 (-1); a user's new vote on an answer replaces the old one.

        Returns False when the answer does not exist.
        """
        if vote not in (1, -1):
            raise ValueError(f"vote must be +1 or -1, not {vote!r}")
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM answers WHERE id = ?", (answer_id,)).fetchone() is None:
                return False
            db.execute(
                "INSERT INTO votes VALUES (?, ?, ?, ?, ?) ON CONFLICT (answer_id, platform, user_id)"
                " DO UPDATE SET vote = excluded.vote, created_at = excluded.created_at",
                (answer_id, platform, user_id, vote, _now()),
            )
        return True

    def get_answer(self, answer_id: int) -> StoredAnswer | None:
        """The stored answer with this id, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, platform, conversation_id, user_id, question, answer, found, mode, citations,"
                " created_at, chat_id, team_id, space FROM answers WHERE id = ?",
                (answer_id,),
            ).fetchone()
        return None if row is None else _stored_answer(row)

    def open_escalation(self, answer_id: int, *, asker_id: str, asker_name: str, reply_chat: str, reply_to: str,
                        helpdesk_chat: str) -> int | None:
        """Reserve the escalation of an answer before it is posted; None when the answer was escalated already."""
        with self._transaction() as db:
            row = db.execute("SELECT platform FROM answers WHERE id = ?", (answer_id,)).fetchone()
            if row is None:
                return None
            cursor = db.execute(
                "INSERT INTO escalations (answer_id, platform, asker_id, asker_name, reply_chat, reply_to,"
                " helpdesk_chat, helpdesk_message, link, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, '', '', ?)"
                " ON CONFLICT (answer_id) DO NOTHING",
                (answer_id, row[0], asker_id, asker_name, reply_chat, reply_to, helpdesk_chat, _now()),
            )
        return int(cursor.lastrowid) if cursor.rowcount else None

    def posted_escalation(self, escalation_id: int, helpdesk_message: str, link: str) -> None:
        """Record the help-desk message an escalation was posted as, and the link to the asker's conversation."""
        with self._transaction() as db:
            db.execute("UPDATE escalations SET helpdesk_message = ?, link = ? WHERE id = ?",
                       (helpdesk_message, link, escalation_id))

    def drop_escalation(self, escalation_id: int) -> None:
        """Forget an escalation that could not be posted, so the button can be pressed again."""
        with self._transaction() as db:
            db.execute("DELETE FROM escalations WHERE id = ? AND helpdesk_message = ''", (escalation_id,))

    def escalation_at(self, platform: str, helpdesk_chat: str, helpdesk_message: str) -> Escalation | None:
        """The escalation posted as this help-desk message, or None."""
        if not helpdesk_message:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT e.id, e.answer_id, e.platform, a.question, e.asker_id, e.asker_name, e.reply_chat,"
                " e.reply_to, e.helpdesk_chat, e.helpdesk_message, e.link, e.created_at"
                " FROM escalations e JOIN answers a ON a.id = e.answer_id"
                " WHERE e.platform = ? AND e.helpdesk_chat = ? AND e.helpdesk_message = ?",
                (platform, helpdesk_chat, helpdesk_message),
            ).fetchone()
        return None if row is None else Escalation(*row)

    def record_reply(self, escalation_id: int, *, responder_id: str, responder_name: str, text: str,
                     document: str) -> int:
        """Store a responder's relayed reply and the document it was saved as; returns the reply's id."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO helpdesk_replies (escalation_id, responder_id, responder_name, text, document,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (escalation_id, responder_id, responder_name, text, document, _now()),
            )
        return int(cursor.lastrowid or 0)

    def kept_document(self, reply_id: int, platform: str) -> str | None:
        """The document a reply of ``platform`` was saved as, while it is kept (not withdrawn); else None."""
        with self._lock:
            row = self._db.execute(
                "SELECT r.document FROM helpdesk_replies r JOIN escalations e ON e.id = r.escalation_id"
                " WHERE r.id = ? AND e.platform = ? AND r.withdrawn_at IS NULL",
                (reply_id, platform),
            ).fetchone()
        return None if row is None else str(row[0])

    def withdraw_reply(self, reply_id: int) -> None:
        """Mark a kept reply withdrawn: its document was deleted and unindexed."""
        with self._transaction() as db:
            db.execute("UPDATE helpdesk_replies SET withdrawn_at = ? WHERE id = ?", (_now(), reply_id))

    def gap_questions(self, since: str = "") -> list[GapQuestion]:
        """The questions asked at or after ``since`` (ISO time, UTC) that were declined, voted 👎 or escalated,
        oldest first, each saying whether a responder's reply to it is kept as a source."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM (SELECT a.id, a.platform, a.question, a.created_at, a.found = 0 AS declined,"
                " EXISTS (SELECT 1 FROM votes v WHERE v.answer_id = a.id AND v.vote = -1) AS down,"
                " EXISTS (SELECT 1 FROM escalations e WHERE e.answer_id = a.id AND e.helpdesk_message != '')"
                "  AS escalated,"
                " EXISTS (SELECT 1 FROM escalations e JOIN helpdesk_replies r ON r.escalation_id = e.id"
                "  WHERE e.answer_id = a.id AND r.withdrawn_at IS NULL) AS answered"
                "  , a.space"
                " FROM answers a WHERE a.created_at >= ?) WHERE declined OR down OR escalated ORDER BY id",
                (since,),
            ).fetchall()
        return [GapQuestion(*row[:4], *(bool(v) for v in row[4:8]), space=row[8]) for row in rows]

    def stats(self, *, worst: int = 5) -> Stats:
        """Counts per platform and the ``worst`` answers with the most 👎."""
        with self._lock:
            platforms = self._db.execute(
                "SELECT platform, COUNT(*), SUM(found), SUM(1 - found),"
                " (SELECT COUNT(*) FROM votes v JOIN answers b ON b.id = v.answer_id"
                "  WHERE b.platform = a.platform AND v.vote = 1),"
                " (SELECT COUNT(*) FROM votes v JOIN answers b ON b.id = v.answer_id"
                "  WHERE b.platform = a.platform AND v.vote = -1)"
                " FROM answers a GROUP BY platform ORDER BY platform"
            ).fetchall()
            down_voted = self._db.execute(
                "SELECT a.id, a.platform, a.question, SUM(v.vote = -1) AS down, SUM(v.vote = 1)"
                " FROM answers a JOIN votes v ON v.answer_id = a.id GROUP BY a.id"
                " HAVING down > 0 ORDER BY down DESC, a.id DESC LIMIT ?",
                (worst,),
            ).fetchall()
        return Stats(
            platforms=[PlatformStats(*row) for row in platforms],
            most_down_voted=[DownVoted(*row) for row in down_voted],
        )


def _connect(path: Path) -> sqlite3.Connection:
    """The database at ``path``, checked and migrated; raises ``sqlite3.DatabaseError`` when it is damaged."""
    # Autocommit mode: every write opens its own explicit transaction.
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
    try:
        # A damaged page may lie anywhere: find it now rather than when a vote or `citebot stats` reads it.
        problems = [row[0] for row in db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            error = sqlite3.DatabaseError("; ".join(problems[:3]))
            error.sqlite_errorname = "SQLITE_CORRUPT"
            raise error
        # WAL lets `citebot stats` read while the bots write; NORMAL sync in WAL survives a process crash.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def _move_aside(path: Path) -> Path:
    """Rename a damaged database (and its WAL files) to ``feedback.db.damaged-<time>``; nothing is deleted."""
    aside = path.with_name(f"{path.name}.damaged-{datetime.now(UTC):%Y%m%dT%H%M%S%f}")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            part.rename(aside.with_name(aside.name + suffix))
    return aside


def _stored_answer(row: tuple[Any, ...]) -> StoredAnswer:
    citations = [StoredCitation(**c) for c in json.loads(row[8])]
    return StoredAnswer(*row[:6], bool(row[6]), row[7], citations, row[9], row[10], row[11], space=row[12])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
