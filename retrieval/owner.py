"""One writer per embedded store: the lock that names it, and how ``citebot index`` hands work to it.

Chroma's embedded store (no ``CHROMA_HOST``) is not safe to write from two processes: after one writes, the
other's reads fail until it restarts. So a process that writes holds ``<data dir>/store.lock`` (an
``flock``, which the kernel drops when the process dies, however it dies). A serving bot holds it for as
long as it runs and is the store's only writer; ``citebot index`` run beside it puts its paths in
``<data dir>/requests/``, the bot indexes them between questions and writes the report (a JSON object) back,
and the command prints it. Another ``citebot index`` holding the lock is waited for. With a Chroma server there is
no lock: the server orders the writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.background import Background

logger = logging.getLogger(__name__)

SERVE, INDEX = "serve", "index"  # the roles a lock holder says it plays
_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Holder:
    """The process that holds the store lock."""

    pid: int
    role: str  # SERVE or INDEX
    command: str  # what the user ran, for the waiting message


class StoreLock:
    """The exclusive write lock of the embedded store in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "store.lock"
        self._fd: int | None = None

    def try_acquire(self, role: str, command: str) -> bool:
        """Take the lock if it is free and say who holds it; False when another process does."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "role": role, "command": command}).encode(), 0)
        self._fd = fd
        return True

    def holder(self) -> Holder | None:
        """Who holds the lock now, or None when nobody does (or the holder has not said yet)."""
        try:
            data = json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None
        if not data or self.is_free():
            return None
        return Holder(int(data["pid"]), str(data["role"]), str(data.get("command", data["role"])))

    def is_free(self) -> bool:
        """Whether no process holds the lock (this one included)."""
        if self._fd is not None:
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # closing drops the probe's shared lock

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class IndexRequests:
    """The requests folder of ``data_dir``: ``<id>.json`` holds paths, ``<id>.done.json`` the report."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = Path(data_dir) / "requests"

    def submit(self, paths: Sequence[Path]) -> str:
        """Queue ``paths`` (made absolute) for the serving process; returns the request's id."""
        self.folder.mkdir(parents=True, exist_ok=True)
        request = uuid.uuid4().hex
        tmp = self.folder / f".{request}.tmp"
        tmp.write_text(json.dumps([str(Path(p).resolve()) for p in paths]))
        tmp.rename(self.folder / f"{request}.json")  # atomic: the server never reads half a request
        return request

    def wait(self, request: str, alive: Callable[[], bool]) -> dict[str, Any] | None:
        """The report of ``request`` once answered; None (and the request withdrawn) when ``alive()``
        turns False first, e.g. the serving process stopped."""
        done = self.folder / f"{request}.done.json"
        while not done.exists():
            if not alive():
                with contextlib.suppress(FileNotFoundError):
                    (self.folder / f"{request}.json").unlink()
                if not done.exists():
                    return None
            time.sleep(_POLL_SECONDS)
        report: dict[str, Any] = json.loads(done.read_text())
        done.unlink()
        return report

    def pending(self) -> list[tuple[str, list[Path]]]:
        """The queued requests, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.glob("*.json"):
            with contextlib.suppress(FileNotFoundError):  # withdrawn meanwhile
                if "." not in path.stem:
                    found.append((path.stat().st_mtime_ns, path.stem, [Path(s) for s in json.loads(path.read_text())]))
        return [(request, paths) for _, request, paths in sorted(found)]

    def answer(self, request: str, report: dict[str, Any]) -> None:
        tmp = self.folder / f".{request}.done.tmp"
        tmp.write_text(json.dumps(report))
        tmp.rename(self.folder / f"{request}.done.json")
        with contextlib.suppress(FileNotFoundError):
            (self.folder / f"{request}.json").unlink()


class IndexService(Background):
    """The serving process's indexer: runs ``index(paths) -> report`` for each queued request, in a thread of
    its own, so questions keep being answered while it works. A failure is reported as ``{"error": reason}``."""

    def __init__(self, requests: IndexRequests, index: Callable[[list[Path]], dict[str, Any]]) -> None:
        super().__init__("citebot-indexer")
        self.requests, self._index = requests, index

    def _run(self) -> None:
        while not self._stop.wait(_POLL_SECONDS):
            for request, paths in self.requests.pending():
                try:
                    report = self._index(paths)
                except Exception as exc:  # the bot goes on serving; the waiting command shows why
                    logger.exception("indexing %s for citebot index failed", [str(p) for p in paths])
                    report = {"error": f"indexing failed in the serving process: {exc}"}
                self.requests.answer(request, report)


def acquire(lock: StoreLock, role: str, command: str, on_wait: Callable[[Holder], None],
            *, until: Callable[[Holder], bool] = lambda holder: False) -> Holder | None:
    """Take ``lock``, calling ``on_wait`` once per other holder while waiting for it.

    Returns None once the lock is held, or the holder for which ``until(holder)`` is true (the lock then
    not taken): e.g. a serving process that ``citebot index`` can hand its paths to instead.
    """
    announced = None
    while not lock.try_acquire(role, command):
        holder = lock.holder()
        if holder is not None and until(holder):
            return holder
        if holder is not None and holder != announced:
            on_wait(holder)
            announced = holder
        time.sleep(_POLL_SECONDS)
    return None
