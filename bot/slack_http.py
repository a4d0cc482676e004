"""Slack's HTTP mode: Bolt's ASGI adapter under uvicorn, each request checked before Bolt reads it.

    server = http_server(app, settings)   # /slack/events on CITEBOT_SLACK_HTTP_HOST:PORT
    server.run()                          # until Ctrl+C (or server.should_exit = True)

Before anything is parsed or logged, a request must be a POST to ``/slack/events`` of at most
``MAX_BODY_BYTES`` (a larger ``Content-Length`` is refused unread, a longer body as soon as it passes the
limit), signed with the signing secret within the last five minutes, and not a replay of a request already
served. Only then is the body parsed; one that is not UTF-8 in Slack's JSON or form encoding gets 400. Bolt verifies
the signature again and answers through the app's listeners on a worker thread, so a slow listener never
holds up the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import uvicorn
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.asgi import SlackRequestHandler
from slack_bolt.adapter.asgi.http_request import AsgiHttpRequest
from slack_sdk.signature import SignatureVerifier

from bot.settings import BotSettings, reveal

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1 << 20  # Slack's own requests are a few kB; one of a MiB is not Slack's
SIGNATURE_AGE = 5 * 60  # seconds a signed request stays valid (Slack's own rule), so replays are remembered as long
MAX_REMEMBERED = 100_000  # signatures remembered against replays at most; the oldest go first


class GuardedRequestHandler(SlackRequestHandler):
    """Bolt's ASGI request handler, refusing oversized, unsigned, replayed and malformed requests first.

    Args:
        app: the Bolt app that answers.
        signing_secret: the app's signing secret.
        path: where Slack posts.
    """

    def __init__(self, app: App, signing_secret: str, path: str = EVENTS_PATH) -> None:
        super().__init__(app, path)
        self._verifier = SignatureVerifier(signing_secret)
        self._served: OrderedDict[str, float] = OrderedDict()  # signature -> when it was served
        self._lock = threading.Lock()

    async def dispatch(self, request: AsgiHttpRequest) -> BoltResponse:
        headers = request.get_headers()
        length = str(headers.get("content-length", "0"))
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            return _refuse(413, "request body too large")
        body = await _read(request, MAX_BODY_BYTES)
        if body is None:
            return _refuse(413, "request body too large")
        try:
            text = body.decode()
        except UnicodeDecodeError:  # Slack signs UTF-8 text
            return _refuse(400, "malformed request")
        timestamp, signature = headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
        if not _signed(self._verifier, text, timestamp, signature):
            return _refuse(401, "invalid request signature")
        if not self._first_time(str(signature)):
            logger.info("ignored a replayed Slack request (timestamp %s)", timestamp)
            return BoltResponse(status=200, body="")
        try:
            bolt_request = BoltRequest(body=text, query=request.query_string, headers=headers)
        except Exception as exc:  # signed, but not Slack's JSON or form encoding
            logger.warning("Slack sent a request citebot cannot parse (%s)", type(exc).__name__)
            return BoltResponse(status=400, body="malformed request")
        if not isinstance(bolt_request.body, dict):
            return BoltResponse(status=400, body="malformed request")
        return await asyncio.to_thread(self.app.dispatch, bolt_request)

    def _first_time(self, signature: str) -> bool:
        """Remember ``signature``; False when a request with it was served within the last five minutes."""
        now = time.monotonic()
        with self._lock:
            while self._served and next(iter(self._served.values())) < now - SIGNATURE_AGE:
                self._served.popitem(last=False)
            if signature in self._served:
                return False
            self._served[signature] = now
            if len(self._served) > MAX_REMEMBERED:
                self._served.popitem(last=False)
        return True


def http_server(app: App, settings: BotSettings) -> uvicorn.Server:
    """``app`` at ``/slack/events`` on the configured host and port, served by uvicorn; ``run()`` it."""
    handler = GuardedRequestHandler(app, reveal(settings.slack_signing_secret))
    config = uvicorn.Config(
        handler, host=settings.slack_http_host, port=settings.slack_http_port, lifespan="off", log_config=None,
        access_log=False, server_header=False, timeout_keep_alive=5,
    )
    logger.info("Slack HTTP mode on http://%s:%d%s", settings.slack_http_host, settings.slack_http_port,
                EVENTS_PATH)
    return uvicorn.Server(config)


async def _read(request: AsgiHttpRequest, limit: int) -> bytes | None:
    """The request body, or None as soon as it grows past ``limit`` bytes (the rest is never read)."""
    chunks, size = [], 0
    while True:
        message: dict[str, Any] = await request.receive()
        if message["type"] != "http.request":  # the client went away
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _signed(verifier: SignatureVerifier, body: str, timestamp: Any, signature: Any) -> bool:
    if not isinstance(timestamp, str) or not isinstance(signature, str) or not timestamp.isdigit():
        return False
    return verifier.is_valid(body, timestamp, signature)


def _refuse(status: int, reason: str) -> BoltResponse:
    # The body of an unsigned request is never logged: it is anyone's text.
    logger.info("refused a Slack HTTP request: %s", reason)
    # Closing the connection spares reading (and discarding) the rest of an oversized body.
    return BoltResponse(status=status, body=reason, headers={"connection": "close"})
