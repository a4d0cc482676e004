"""What a user sees of an answer while it is written: the draft text and how often it is shown."""

from __future__ import annotations

import asyncio
import threading
import time

from bot.streaming import Draft, LivePreview


def feed(tokens: list[str]) -> tuple[Draft, list[str]]:
    draft = Draft()
    return draft, [draft.add(t) for t in tokens]


def test_draft_prints_each_verified_sentence_once_as_it_arrives() -> None:
    draft, added = feed(["Fibroblasts are targets. ", "Checkpoints are in trials. ", "   "])
    assert draft.text == "Fibroblasts are targets. Checkpoints are in trials."
    assert added == ["Fibroblasts are targets.", " Checkpoints are in trials.", ""]


def test_draft_keeps_paragraphs_and_drops_terminal_escapes() -> None:
    draft, added = feed(["First point.", "\n\n", "Second\x1b]0;owned\x07 point", "."])
    assert draft.text == "First point.\n\nSecond]0;owned point."  # inert without the ESC and BEL
    assert "".join(added) == draft.text


def test_draft_is_empty_until_visible_text_arrives() -> None:
    draft, added = feed(["", "  ", "\x00"])
    assert draft.text == "" and added == ["", "", ""]


def test_live_preview_shows_at_once_then_about_once_a_second_from_another_thread() -> None:
    shown: list[tuple[float, str]] = []

    async def show(text: str) -> None:
        shown.append((time.monotonic(), text))

    async def main() -> tuple[float, float]:
        async with LivePreview(show, every=0.2) as preview:
            start = time.monotonic()
            worker = threading.Thread(target=lambda: [(preview.on_sentence(f" w{i}"), time.sleep(0.01))
                                                      for i in range(60)])
            await asyncio.to_thread(lambda: (worker.start(), worker.join()))
            return start, time.monotonic()

    start, end = asyncio.run(main())
    times = [t for t, _ in shown]
    assert times[0] - start < 0.1  # the first words appear at once
    assert all(b - a >= 0.19 for a, b in zip(times, times[1:], strict=False))
    assert 2 <= len(shown) <= (end - start) / 0.2 + 1  # every 0.2 s, not once per token
    texts = [text for _, text in shown]
    assert texts == sorted(texts, key=len) and texts[0].startswith("w0")


def test_live_preview_failing_show_is_skipped_and_unchanged_text_not_shown_again() -> None:
    calls: list[str] = []

    async def show(text: str) -> None:
        calls.append(text)
        if len(calls) == 1:
            raise ConnectionError("platform unreachable")

    async def main() -> None:
        async with LivePreview(show, every=0.05) as preview:
            preview.on_sentence("Fibroblasts")
            await asyncio.sleep(0.1)
            preview.on_sentence("\x07")  # changes nothing a user sees
            await asyncio.sleep(0.1)
            preview.on_sentence(" matter.")
            await asyncio.sleep(0.1)
        preview.on_sentence(" Late.")  # after the block: shown nowhere

    asyncio.run(main())
    assert calls == ["Fibroblasts", "Fibroblasts matter."]
