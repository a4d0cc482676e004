"""Showing an answer while the language model writes it.

``Draft`` is the answer so far as a user may see it: the sentences the retrieval library has verified, passed
on without their ``[n]`` markers (``retrieval.grounding.VerifiedStream``), control characters dropped.
``LivePreview`` puts the draft into a chat message through an adapter's ``show`` callback, first as soon as
text arrives, then about once a second; the adapter replaces it with the verified answer afterwards.

Sentences arrive on the worker thread the chat core runs the responder in: ``LivePreview.on_sentence`` may
be called from any thread and wakes the event loop the preview runs on, where ``show`` is awaited.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from contextlib import suppress

from bot.text import sanitize

logger = logging.getLogger(__name__)

PREVIEW_EVERY = 1.0  # seconds between updates of a preview; chat platforms throttle faster edits


class Draft:
    """The streamed text so far, as a user may see it; thread-safe."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._emitted = ""
        self._lock = threading.Lock()

    @property
    def text(self) -> str:
        """What a user may see of the text so far (trimmed; empty until a visible character arrived)."""
        with self._lock:
            raw = "".join(self._parts)
        return sanitize(raw).strip()

    def append(self, piece: str) -> None:
        """Take the next piece of text."""
        with self._lock:
            self._parts.append(piece)

    def add(self, piece: str) -> str:
        """Take the next piece of text; return what it adds to ``text``, for a terminal that prints as it goes."""
        self.append(piece)
        text = self.text
        with self._lock:
            # Trailing white space is held back until text follows it; should the text ever not continue what
            # was printed, the terminal waits for text that does.
            if not text.startswith(self._emitted):
                return ""
            added, self._emitted = text[len(self._emitted) :], text
        return added


Show = Callable[[str], Awaitable[object]]


class LivePreview:
    """Shows a ``Draft`` through ``show(text)`` while sentences arrive.

        async with LivePreview(draft_message.show) as preview:
            reply = await core.handle(msg, on_sentence=preview.on_sentence)

    ``show`` runs on the event loop the block runs on, one call at a time, never with empty or unchanged
    text, at most every ``every`` seconds. A failing ``show`` is logged and skipped: a lost preview must never
    cost the answer. Leaving the block lets a ``show`` in flight finish, then shows nothing more.
    """

    def __init__(self, show: Show, *, every: float = PREVIEW_EVERY) -> None:
        self.draft = Draft()
        self._show = show
        self._every = every
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def on_sentence(self, sentence: str) -> None:
        """Take a sentence; callable from any thread."""
        self.draft.append(sentence)
        if self._loop is not None:
            # A closed loop means the handler was cancelled: nobody waits for this preview any more.
            with suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    async def __aenter__(self) -> LivePreview:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._pump())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _pump(self) -> None:
        shown = ""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._closing.is_set():
                return
            text = self.draft.text
            if not text or text == shown:
                continue
            try:
                await self._show(text)
            except Exception:
                logger.warning("could not show the answer being written", exc_info=True)
            shown = text
            with suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._every)
