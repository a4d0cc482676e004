"""An emulator of the Slack Web API and of Socket Mode on 127.0.0.1, recording everything the bot sends.

    with SlackEmulator() as slack:
        settings = BotSettings(slack_api_url=slack.api_url, slack_bot_token=slack.bot_token, ...)
        ...
        slack.wait_for("chat.postMessage")[0]["thread_ts"]

- ``POST /api/<method>``: the Web API. Form or JSON bodies; the ``Authorization: Bearer`` token must be the
  bot token (the app token for ``apps.connections.open``). ``auth.test``, ``chat.postMessage``,
  ``chat.postEphemeral``, ``chat.update``, ``chat.getPermalink``, ``reactions.add``, ``users.info`` (of the
  people a test puts in ``users``: id -> display name) and ``views.open`` answer as Slack does; every
  call is recorded. ``fail_next(method)`` makes the next call answer ``429`` with ``Retry-After``
  (``ratelimited``) or another Slack error such as ``not_in_channel``.
- ``GET /files-pri/<team>-<file id>/[download/]<name>``: a shared file's ``url_private(_download)``. As on Slack, only a
  request with the bot token (``Authorization: Bearer``) gets the bytes; without it Slack redirects to its
  sign-in page. ``share_file(name, content)`` makes the file object a ``file_share`` event carries; every
  download is recorded as the method ``"files.download"`` (ok only with the token).
- ``POST /respond/<name>``: stands in for the ``response_url`` of slash commands and button clicks; recorded as
  the method ``"response_url"``.
- ``GET /socket``: a Socket Mode WebSocket (``apps.connections.open`` hands out its ``ws://`` URL). It says
  ``hello``, sends the envelopes a test ``push``es and records the client's acknowledgements.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Call:
    """One request the bot made: the Web API method (or ``"response_url"``), its arguments, whether it
    succeeded and what the emulator answered."""

    method: str
    args: dict[str, Any]
    ok: bool
    response: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Failure:
    error: str
    status: int
    retry_after: int | None


class SlackEmulator:
    """The Slack Web API, ``response_url`` and Socket Mode, served from a background thread.

    Args:
        bot_token: the only token Web API methods accept.
        app_token: the only token ``apps.connections.open`` accepts.
        team_id, bot_user_id, bot_id: who ``auth.test`` says the bot is.
    """

    def __init__(self, *, bot_token: str = "xoxb-emulated-bot-token", app_token: str = "xapp-emulated-app-token",
                 team_id: str = "T0EMULATED", bot_user_id: str = "U0CITEBOT", bot_id: str = "B0CITEBOT") -> None:
        self.bot_token, self.app_token = bot_token, app_token
        self.team_id, self.bot_user_id, self.bot_id = team_id, bot_user_id, bot_id
        self.url = ""
        self.users: dict[str, str] = {}  # user id -> display name, for users.info
        self._files: dict[str, bytes] = {}  # file id -> content
        self.acks: list[dict[str, Any]] = []
        self._calls: list[Call] = []
        self._failures: defaultdict[str, deque[_Failure]] = defaultdict(deque)
        self._sockets: list[web.WebSocketResponse] = []
        self._changed = threading.Condition()
        self._ts = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="slack-emulator", daemon=True)
        self._runner: web.AppRunner | None = None

    # --- lifecycle --------------------------------------------------------------------------------------

    def __enter__(self) -> SlackEmulator:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._web_api)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_get("/files-pri/{team}-{file}/{name}", self._download)
        app.router.add_get("/files-pri/{team}-{file}/download/{name}", self._download)
        app.router.add_get("/signin", self._signin)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def _stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        assert self._runner is not None
        await self._runner.cleanup()

    # --- what tests use ---------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The Web API base URL, for ``SLACK_API_URL``."""
        return f"{self.url}/api/"

    def response_url(self, name: str = "r1") -> str:
        """A ``response_url`` to put in a slash command or block action payload."""
        return f"{self.url}/respond/{name}"

    def fail_next(self, method: str, error: str = "ratelimited", *, retry_after: int = 1) -> None:
        """Make the next call to ``method`` fail: ``ratelimited`` as HTTP 429 with ``Retry-After``, any other
        error as Slack's ``{"ok": false, "error": ...}``."""
        if error == "ratelimited":
            self._failures[method].append(_Failure(error, 429, retry_after))
        else:
            self._failures[method].append(_Failure(error, 200, None))

    def share_file(self, name: str, content: bytes, *, filetype: str = "binary",
                   mimetype: str = "application/octet-stream") -> dict[str, Any]:
        """A file uploaded to Slack, as the ``files`` of a ``file_share`` message event describe it."""
        file_id = f"F0{len(self._files) + 1:08d}"
        self._files[file_id] = content
        url = f"{self.url}/files-pri/{self.team_id}-{file_id}/{name}"
        return {"id": file_id, "name": name, "title": name, "mimetype": mimetype, "filetype": filetype,
                "size": len(content), "mode": "hosted", "is_external": False, "url_private": url,
                "url_private_download": url.replace(f"/{name}", f"/download/{name}")}

    def calls(self, method: str | None = None) -> list[Call]:
        """Every recorded call (to ``method``), oldest first, failed ones included."""
        with self._changed:
            return [c for c in self._calls if method is None or c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0, *,
                 where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """The arguments of the successful calls to ``method`` (that ``where`` accepts), once there are at least
        ``count`` of them."""
        def ready() -> list[dict[str, Any]] | None:
            found = [c.args for c in self._calls if c.method == method and c.ok and (where is None or where(c.args))]
            return found if len(found) >= count else None
        return self._wait(ready, timeout, f"{count} successful {method} call(s)")

    def push(self, payload: dict[str, Any], *, kind: str = "events_api", timeout: float = 10.0) -> str:
        """Send ``payload`` in a Socket Mode envelope to the connected client; returns the envelope id."""
        sockets = self._wait(lambda: list(self._sockets) or None, timeout, "a Socket Mode connection")
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "type": kind, "accepts_response_payload": False,
                    "retry_attempt": 0, "retry_reason": "", "payload": payload}
        asyncio.run_coroutine_threadsafe(sockets[0].send_str(json.dumps(envelope)), self._loop).result(timeout)
        return envelope_id

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The client's acknowledgement of an envelope."""
        def ready() -> dict[str, Any] | None:
            return next((a for a in self.acks if a.get("envelope_id") == envelope_id), None)
        return self._wait(ready, timeout, f"the ack of envelope {envelope_id}")

    def _wait(self, ready: Callable[[], Any], timeout: float, what: str) -> Any:
        with self._changed:
            if not self._changed.wait_for(ready, timeout):
                raise TimeoutError(f"waited {timeout} s for {what}; calls: {[c.method for c in self._calls]}")
            return ready()

    def _record(self, call: Call) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    # --- handlers ---------------------------------------------------------------------------------------

    async def _web_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _arguments(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or args.pop("token", "")
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            self._record(Call(method, args, False))
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if self._failures[method]:
            failure = self._failures[method].popleft()
            self._record(Call(method, args, False))
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return web.json_response({"ok": False, "error": failure.error}, status=failure.status,
                                     headers=headers)
        body = self._answer(method, args)
        self._record(Call(method, args, body["ok"], body))
        return web.json_response(body)

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Slack's answer to a successful call."""
        ts = f"1700000000.{next(self._ts):06d}"
        if method == "auth.test":
            return {"ok": True, "url": "https://emulated.slack.com/", "team": "Emulated", "user": "citebot",
                    "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id}
        if method in ("chat.postMessage", "chat.update"):
            message = {"text": args.get("text", ""), "user": self.bot_user_id, "bot_id": self.bot_id, "ts": ts}
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts", ts), "message": message}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "chat.getPermalink":
            channel, ts = args.get("channel", ""), str(args.get("message_ts", ""))
            return {"ok": True, "channel": channel,
                    "permalink": f"https://emulated.slack.com/archives/{channel}/p{ts.replace('.', '')}"}
        if method == "users.info":
            user = args.get("user", "")
            if user not in self.users:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": {"id": user, "name": self.users[user].lower(),
                                         "profile": {"display_name": self.users[user]}}}
        if method == "reactions.add":
            return {"ok": True}
        if method == "views.open":
            return {"ok": True, "view": {"id": f"V{next(self._ts)}", **(args.get("view") or {})}}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws{self.url.removeprefix('http')}/socket"}
        return {"ok": False, "error": "unknown_method"}

    async def _download(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file"]
        authorized = request.headers.get("Authorization") == f"Bearer {self.bot_token}"
        content = self._files.get(file_id)
        self._record(Call("files.download", {"file": file_id}, authorized and content is not None))
        if not authorized:  # Slack sends a browser without the token to its sign-in page
            raise web.HTTPFound(f"{self.url}/signin?redir={request.path}")
        if content is None:
            raise web.HTTPNotFound()
        return web.Response(body=content, content_type="application/octet-stream")

    async def _signin(self, request: web.Request) -> web.Response:
        return web.Response(text="<!DOCTYPE html><html><body>Sign in to Emulated</body></html>",
                            content_type="text/html")

    async def _respond(self, request: web.Request) -> web.Response:
        self._record(Call("response_url", {**await request.json(), "_name": request.match_info["name"]}, True))
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "debug_info": {"host": "emulator"}, "connection_info": {"app_id": "A0"}}))
        with self._changed:
            self._sockets.append(ws)
            self._changed.notify_all()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    with self._changed:
                        self.acks.append(json.loads(msg.data))
                        self._changed.notify_all()
        finally:
            with self._changed:
                self._sockets.remove(ws)
        return ws


async def _arguments(request: web.Request) -> dict[str, Any]:
    """A Web API call's arguments from a JSON or form body, JSON-in-form fields (blocks, view) decoded."""
    if request.content_type == "application/json":
        body = await request.read()  # apps.connections.open sends none
        return dict(json.loads(body)) if body else {}
    args: dict[str, Any] = {**request.query, **(await request.post())}
    for key in ("blocks", "view", "attachments"):
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    return args
