"""The per-user rate limit of the chat core: a sliding window of questions per key."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# Conversations whose history (and users whose rate-limit window) are remembered at most; the oldest go first.
MAX_TRACKED = 10_000


class RateLimiter:
    """Sliding-window limit of ``limit`` events per ``window`` seconds per key; thread-safe."""

    def __init__(self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: OrderedDict[object, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: object) -> float:
        """Count an event for ``key`` and return 0, or return the seconds to wait when over the limit."""
        if self.limit == 0:
            return 0.0
        now = self._clock()
        with self._lock:
            events = self._events.pop(key, None) or deque()
            while events and events[0] <= now - self.window:
                events.popleft()
            wait = events[0] + self.window - now if len(events) >= self.limit else 0.0
            if not wait:
                events.append(now)
            self._events[key] = events
            if len(self._events) > MAX_TRACKED:
                self._events.popitem(last=False)
        return wait
