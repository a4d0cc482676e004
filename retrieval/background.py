"""A loop on a daemon thread of its own, stopped on request: what the serving process's indexers share."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Self


class Background(ABC):
    """Runs ``self._run()`` on a daemon thread between ``start()`` and ``stop()``; ``_stop`` is set on stop."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @abstractmethod
    def _run(self) -> None:
        """The loop; it returns once ``self._stop`` is set."""
