"""Slack's help-desk extras: files a listed admin shares with the bot, indexed; and the weekly digest thread.

The core decides (``ChatCore.ingest``, ``ChatCore.digest``); this module only downloads a shared file from
its ``url_private_download`` with the bot token (the app needs the ``files:read`` scope) and posts replies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import render
from bot.core import ChatCore, IncomingMessage
from bot.gaps import next_digest
from bot.settings import BotSettings
from retrieval import Background

logger = logging.getLogger(__name__)

PLATFORM = "slack"
MAX_FILES = 5  # of one message: each is downloaded and indexed in turn
DOWNLOAD_SECONDS = 120.0  # a download still running after this long is given up


def ingest_files(core: ChatCore, event: dict[str, Any], context: BoltContext, client: WebClient) -> bool:
    """Index the files shared in a direct message or a mention, replying in its thread; whether it had any."""
    files = [f for f in event.get("files") or [] if isinstance(f, dict)]
    if not files:
        return False
    channel, user = event["channel"], event.get("user", "")
    thread_ts = event.get("thread_ts") or event["ts"]
    msg = IncomingMessage(PLATFORM, f"{channel}:{thread_ts}", user, "", channel, context.team_id or "")
    token = client.token or ""
    for file in files[:MAX_FILES]:
        url = str(file.get("url_private_download") or file.get("url_private") or "")
        reply = asyncio.run(core.ingest(msg, name=str(file.get("name") or file.get("title") or file.get("id")),
                                        size=file.get("size"), fetch=partial(_fetch, url, token)))
        if reply.kind == "refused":  # one line for somebody who may not add documents, however many files
            client.chat_postEphemeral(channel=channel, user=user, text=reply.text, thread_ts=thread_ts)
            break
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=render.slack_plain(reply.text))
    return True


async def _fetch(url: str, token: str, limit: int) -> bytes:
    return await asyncio.to_thread(download, url, token, limit)


def download(url: str, token: str, limit: int, *, seconds: float = DOWNLOAD_SECONDS) -> bytes:
    """A shared file's bytes from its private URL, with the bot token; at most ``limit`` + 1 of them."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("Slack gave no download URL for the file")
    deadline = time.monotonic() + seconds
    data = bytearray()
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0) as response:
        # Without files:read Slack answers with a redirect to its sign-in page, not with an error.
        if response.status_code != 200 or response.headers.get("content-type", "").startswith("text/html"):
            raise ValueError(f"Slack did not serve the file (HTTP {response.status_code}): does the app have the "
                             "files:read scope?")
        for part in response.iter_bytes():
            data += part
            if len(data) > limit or time.monotonic() > deadline:
                break
    if len(data) <= limit and time.monotonic() > deadline:
        raise TimeoutError(f"the download took over {seconds:g} s")
    return bytes(data[: limit + 1])


class DigestPoster(Background):
    """Posts the weekly digest to the help-desk channel from a thread of its own, until stopped.

    Args:
        core: makes the digest.
        client: posts it.
        settings: the day and hour (UTC) it is posted.
        clock: the time now, in UTC.
    """

    def __init__(self, core: ChatCore, client: WebClient, settings: BotSettings, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__("citebot-slack-digest")
        self.core, self.client, self.settings, self._clock = core, client, settings, clock

    @classmethod
    def configured(cls, core: ChatCore, client: WebClient, settings: BotSettings) -> DigestPoster | None:
        """A poster when the digest is turned on and Slack has a help desk; None otherwise."""
        on = settings.helpdesk_digest and settings.helpdesk_chat(PLATFORM) is not None
        return cls(core, client, settings) if on else None

    def post_once(self) -> bool:
        """Post the digest now; whether there was one to post and it was posted."""
        digest = asyncio.run(self.core.digest(PLATFORM))
        if digest is None:
            return False
        channel, text = digest
        try:
            self.client.chat_postMessage(channel=channel, text=render.slack_plain(text), unfurl_links=False,
                                         unfurl_media=False)
        except SlackApiError as exc:
            logger.warning("could not post the digest to %s: %s", channel, exc.response.get("error"))
            return False
        return True

    def _run(self) -> None:
        while True:
            now = self._clock()
            due = next_digest(now, self.settings.helpdesk_digest_weekday, self.settings.helpdesk_digest_hour)
            if self._stop.wait((due - now).total_seconds()):
                return
            try:
                self.post_once()
            except Exception:  # the next week's digest is still wanted
                logger.exception("the Slack digest failed")
