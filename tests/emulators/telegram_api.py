"""A small Telegram Bot API on 127.0.0.1: serves updates to a bot, records what the bot does, checks it.

    with TelegramEmulator() as telegram:
        ...  # TELEGRAM_BASE_URL=telegram.base_url, TELEGRAM_BOT_TOKEN=telegram.token
        question = telegram.send(private_chat(ADA), ADA, "What are the targets?")
        calls = await telegram.wait_for("sendMessage")

It answers ``/bot<token>/<method>`` with Telegram's envelope (``{"ok": true, "result": ...}``) for the
methods python-telegram-bot uses: ``getMe``, ``getUpdates`` (long poll), ``setWebhook``, ``deleteWebhook``,
``setMyCommands``, ``sendMessage``, ``sendChatAction``, ``editMessageText``, ``answerCallbackQuery`` and
``getFile``, and serves the files users sent (``document``) at ``GET /file/bot<token>/<file_path>``, each
download recorded as the call ``"download"``. Bodies
may be JSON or form-encoded (object fields then arrive as JSON strings). Like Telegram it refuses messages
over 4,096 UTF-16 units, malformed HTML, callback data over 64 bytes and replies to unknown messages. Unlike
Telegram it delivers every queued update whatever ``allowed_updates`` says, so the bot must ignore the
updates it did not ask for. Scripted faults: ``fail_next`` (e.g. a 429 with ``retry_after``) and
``reject_html`` (every HTML message fails with "can't parse entities").
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.emulators import send_json

logger = logging.getLogger(__name__)

TOKEN = "123456789:AAHemulatorTokenForCitebotTests_0123"
BOT_USER = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "citebot",
    "username": "citebot_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
MESSAGE_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64

_JSON_FIELDS = {"reply_markup", "reply_parameters", "link_preview_options", "allowed_updates", "commands",
                "entities"}
_INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "message_thread_id"}
FILE_LIMIT = 20 * 1024 * 1024  # bytes: the Bot API refuses getFile for larger files
_HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code",
              "pre", "blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{5,32})?")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{4,31}")


def user(user_id: int, first_name: str = "Ada", *, is_bot: bool = False) -> dict[str, Any]:
    """A Telegram user object."""
    return {"id": user_id, "is_bot": is_bot, "first_name": first_name}


def private_chat(person: dict[str, Any]) -> dict[str, Any]:
    """The private chat between ``person`` and the bot."""
    return {"id": person["id"], "type": "private", "first_name": person["first_name"]}


def group_chat(chat_id: int, title: str = "Oncology journal club") -> dict[str, Any]:
    """A supergroup (ids of supergroups are negative, -100…)."""
    return {"id": chat_id, "type": "supergroup", "title": title}


def channel_chat(chat_id: int, title: str = "Lab news") -> dict[str, Any]:
    return {"id": chat_id, "type": "channel", "title": title}


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, Telegram's measure for limits and entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram's server finds in a message: a leading /command and @mentions."""
    found = []
    command = _COMMAND.match(text)
    if command:
        found.append({"type": "bot_command", "offset": 0, "length": utf16_len(command.group())})
    for m in _MENTION.finditer(text):
        if not (command and m.start() < command.end()):
            found.append({"type": "mention", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())})
    return found


def html_error(text: str) -> str | None:
    """Why Telegram would refuse ``text`` in HTML parse mode, or None when it parses."""
    stack: list[str] = []
    pos = 0
    for m in _TAG.finditer(text):
        error = _text_error(text[pos : m.start()], pos)
        if error:
            return error
        closing, name = m.group(1), m.group(2).lower()
        if name not in _HTML_TAGS:
            return f'Unsupported start tag "{name}" at byte offset {m.start()}'
        if not closing:
            stack.append(name)
        elif not stack or stack.pop() != name:
            return f'Unexpected end tag at byte offset {m.start()}'
        pos = m.end()
    error = _text_error(text[pos:], pos)
    if error:
        return error
    return f'Can\'t find end tag corresponding to start tag "{stack[-1]}"' if stack else None


def _text_error(chunk: str, offset: int) -> str | None:
    if "<" in chunk or ">" in chunk:
        return f"Unsupported start tag at byte offset {offset + chunk.find('<')}"
    bare = [i for i in (m.start() for m in re.finditer("&", chunk)) if not _ENTITY.match(chunk, i)]
    return f"Character entity expected at byte offset {offset + bare[0]}" if bare else None


@dataclass(frozen=True)
class ApiCall:
    """One Bot API request: the method, its decoded parameters, and what the emulator answered."""

    method: str
    params: dict[str, Any]
    ok: bool
    result: Any = None
    description: str = ""

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The inline keyboard buttons sent with the message, row by row, flattened."""
        markup = self.params.get("reply_markup") or {}
        return [b for row in markup.get("inline_keyboard", []) for b in row]


class _ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


class TelegramEmulator:
    """The server: binds a free port on 127.0.0.1 and serves in threads; a context manager.

    Args:
        token: the bot token it accepts; other tokens get 401.
        poll_wait: longest a ``getUpdates`` long poll waits for an update, in seconds.
    """

    def __init__(self, token: str = TOKEN, *, poll_wait: float = 0.5) -> None:
        self.token = token
        self.poll_wait = poll_wait
        self.reject_html = False
        self._calls: list[ApiCall] = []
        self._updates: list[dict[str, Any]] = []
        self._failures: dict[str, list[_ApiError]] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, content)
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(1)
        self._changed = threading.Condition()
        self._stopping = False
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="telegram-emulator", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What ``TELEGRAM_BASE_URL`` should be set to."""
        return f"{self.url}/bot"

    def __enter__(self) -> TelegramEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- the users' side ---------------------------------------------------------------------------------

    def message(self, chat: dict[str, Any], sender: dict[str, Any] | None, text: str | None = None, *,
                reply_to: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """A message from ``sender`` in ``chat`` with the entities Telegram would find, not yet delivered."""
        msg: dict[str, Any] = {"message_id": next(self._ids), "date": int(time.time()), "chat": chat, **fields}
        if sender is not None:
            msg["from"] = sender
        if text is not None:
            msg["text"] = text
            if entities(text):
                msg["entities"] = entities(text)
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        with self._changed:
            self._chats[chat["id"]] = chat
            self._messages[(chat["id"], msg["message_id"])] = msg
        return msg

    def send(self, chat: dict[str, Any], sender: dict[str, Any] | None, text: str | None = None,
             **fields: Any) -> dict[str, Any]:
        """Deliver a new message to the bot, as when a user sends it; returns the message."""
        msg = self.message(chat, sender, text, **fields)
        self.push({"message": msg})
        return msg

    def document(self, chat: dict[str, Any], sender: dict[str, Any], name: str, content: bytes, *,
                 caption: str | None = None, mime_type: str = "application/octet-stream") -> dict[str, Any]:
        """Deliver a document ``name`` holding ``content`` sent by ``sender`` in ``chat``; returns the message."""
        file_id = f"BQACAgI{next(self._ids):06d}"
        with self._changed:
            self._files[file_id] = (f"documents/file_{len(self._files)}{Path(name).suffix}", content)
        fields: dict[str, Any] = {"document": {"file_id": file_id, "file_unique_id": f"AgAD{file_id[-6:]}",
                                               "file_name": name, "mime_type": mime_type,
                                               "file_size": len(content)}}
        if caption is not None:
            fields["caption"] = caption
            if entities(caption):
                fields["caption_entities"] = entities(caption)
        return self.send(chat, sender, **fields)

    def press(self, message: dict[str, Any], presser: dict[str, Any], data: str) -> None:
        """Deliver a click on the inline button carrying ``data`` under the bot's ``message``."""
        with self._changed:
            current = self._messages[(message["chat"]["id"], message["message_id"])]
        rows = (current.get("reply_markup") or {}).get("inline_keyboard", [])
        if data not in [b.get("callback_data") for row in rows for b in row]:
            raise AssertionError(f"no button with callback data {data!r} under message {message['message_id']}")
        query = {"id": str(next(self._ids)), "from": presser, "chat_instance": "-4242", "message": current,
                 "data": data}
        self.push({"callback_query": query})

    def push(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update (its ``update_id`` is assigned here) for the next ``getUpdates``."""
        update = {"update_id": next(self._update_ids), **update}
        with self._changed:
            self._updates.append(update)
            self._changed.notify_all()
        return update

    def bot_message(self, call: ApiCall) -> dict[str, Any]:
        """The bot's message as it is now (after any edits), from the call that sent it."""
        with self._changed:
            return self._messages[(call.result["chat"]["id"], call.result["message_id"])]

    def delete(self, call: ApiCall) -> None:
        """Delete the bot's message sent by ``call``, as a user may in a private chat."""
        with self._changed:
            del self._messages[(call.result["chat"]["id"], call.result["message_id"])]

    # --- scripting ---------------------------------------------------------------------------------------

    def fail_next(self, method: str, status: int, description: str, *, retry_after: int | None = None) -> None:
        """Answer the next call of ``method`` with an error (429 with ``retry_after`` for flood control)."""
        parameters = {"retry_after": retry_after} if retry_after is not None else None
        with self._changed:
            self._failures.setdefault(method, []).append(_ApiError(status, description, parameters))

    # --- what the bot did --------------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """Every request so far (failed ones too), oldest first."""
        with self._changed:
            return [c for c in self._calls if method is None or c.method == method]

    def delivered(self, method: str, where: Callable[[ApiCall], bool] | None = None) -> list[ApiCall]:
        """The successful calls of ``method`` (that ``where`` accepts)."""
        return [c for c in self.calls(method) if c.ok and (where is None or where(c))]

    async def wait_for(self, method: str, count: int = 1, *, where: Callable[[ApiCall], bool] | None = None,
                       timeout: float = 10.0) -> list[ApiCall]:
        """Wait (without blocking the event loop) until ``count`` successful calls of ``method`` arrived."""
        deadline = time.monotonic() + timeout
        while len(found := self.delivered(method, where)) < count:
            if time.monotonic() > deadline:
                seen = [(c.method, c.ok, c.text[:80]) for c in self.calls() if c.method != "getUpdates"]
                raise AssertionError(f"{len(found)} of {count} {method} calls after {timeout}s; calls: {seen}")
            await asyncio.sleep(0.01)
        return found

    # --- the API -----------------------------------------------------------------------------------------

    def call(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one request: (HTTP status, Telegram's JSON envelope)."""
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        try:
            with self._changed:
                failures = self._failures.get(method)
                if failures:
                    raise failures.pop(0)
            result = self._run(method, params)
        except _ApiError as exc:
            with self._changed:
                self._calls.append(ApiCall(method, params, False, description=exc.description))
            body = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            return exc.status, body
        with self._changed:
            self._calls.append(ApiCall(method, params, True, result))
        return 200, {"ok": True, "result": result}

    def _run(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method == "getUpdates":
            return self._get_updates(params)
        if method in ("setWebhook", "deleteWebhook", "setMyCommands", "sendChatAction"):
            return True
        if method == "answerCallbackQuery":
            if len(str(params.get("text", ""))) > 200:
                raise _ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
            return True
        if method == "sendMessage":
            return self._send_message(params)
        if method == "editMessageText":
            return self._edit_message(params)
        if method == "getFile":
            return self._get_file(str(params.get("file_id", "")))
        raise _ApiError(404, "Not Found: method not found")

    def _get_file(self, file_id: str) -> dict[str, Any]:
        with self._changed:
            if file_id not in self._files:
                raise _ApiError(400, "Bad Request: invalid file_id")
            path, content = self._files[file_id]
        if len(content) > FILE_LIMIT:
            raise _ApiError(400, "Bad Request: file is too big")
        return {"file_id": file_id, "file_unique_id": f"AgAD{file_id[-6:]}", "file_size": len(content),
                "file_path": path}

    def download(self, token: str, path: str) -> tuple[int, bytes]:
        """Serve a file ``getFile`` named: (HTTP status, content); recorded as the call ``"download"``."""
        with self._changed:
            content = next((c for p, c in self._files.values() if p == path), None)
            ok = token == self.token and content is not None
            self._calls.append(ApiCall("download", {"file_path": path}, ok))
            self._changed.notify_all()
        if token != self.token:
            return 401, b"Unauthorized"
        return (200, content) if content is not None else (404, b"Not Found")

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        wait = min(float(params.get("timeout") or 0), self.poll_wait)
        deadline = time.monotonic() + wait
        with self._changed:
            # A confirmed offset drops the updates before it, as Telegram forgets them.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and not self._stopping and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            return self._updates[:limit]

    def _check_text(self, params: dict[str, Any]) -> None:
        text = str(params.get("text", ""))
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if params.get("parse_mode") == "HTML":
            error = "Unsupported start tag \"b\" at byte offset 0" if self.reject_html else html_error(text)
            if error:
                raise _ApiError(400, f"Bad Request: can't parse entities: {error}")
            text = html.unescape(_TAG.sub("", text))
        if utf16_len(text) > MESSAGE_LIMIT:
            raise _ApiError(400, "Bad Request: message is too long")
        markup = params.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if len(str(button.get("callback_data", "")).encode()) > CALLBACK_DATA_LIMIT:
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_text(params)
        chat_id = int(params["chat_id"])
        reply = params.get("reply_parameters") or {}
        with self._changed:
            chat = self._chats.get(chat_id) or {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
            if reply and (chat_id, reply["message_id"]) not in self._messages and \
                    not reply.get("allow_sending_without_reply"):
                raise _ApiError(400, "Bad Request: message to be replied not found")
            msg = {"message_id": next(self._ids), "from": BOT_USER, "chat": chat, "date": int(time.time()),
                   "text": params["text"]}
            if params.get("reply_markup"):
                msg["reply_markup"] = params["reply_markup"]
            self._messages[(chat_id, msg["message_id"])] = msg
        return msg

    def _edit_message(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_text(params)
        key = (int(params["chat_id"]), int(params["message_id"]))
        with self._changed:
            old = self._messages.get(key)
            if old is None:
                raise _ApiError(400, "Bad Request: message to edit not found")
            new = {**old, "text": params["text"], "edit_date": int(time.time())}
            new.pop("reply_markup", None)
            if params.get("reply_markup"):
                new["reply_markup"] = params["reply_markup"]
            if (new["text"], new.get("reply_markup")) == (old["text"], old.get("reply_markup")):
                raise _ApiError(400, "Bad Request: message is not modified: specified new message content and "
                                     "reply markup are exactly the same as a current content and reply markup")
            self._messages[key] = new
        return new


def decode_params(content_type: str, body: bytes) -> dict[str, Any]:
    """A request's parameters, from JSON or a form; object fields arrive as JSON strings in forms."""
    if content_type.startswith("application/json"):
        params: dict[str, Any] = json.loads(body or b"{}")
    elif content_type.startswith("application/x-www-form-urlencoded") or not body:
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    else:
        raise ValueError(f"unsupported content type {content_type!r}")
    for key, value in params.items():
        if key in _JSON_FIELDS and isinstance(value, str):
            params[key] = json.loads(value)
        elif key in _INT_FIELDS and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            params[key] = int(value)
    return params


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-poll (the bot stopping) is normal, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(emulator: TelegramEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            m = re.fullmatch(r"/bot([^/]+)/(\w+)", self.path)
            if m is None:
                return self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            try:
                params = decode_params(self.headers.get("Content-Type", ""), body)
            except ValueError as exc:
                return self._reply(400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"})
            self._reply(*emulator.call(m.group(1), m.group(2), params))

        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            m = re.fullmatch(r"/file/bot([^/]+)/(.+)", unquote(self.path))  # PTB quotes the token's ':'
            status, content = emulator.download(m.group(1), m.group(2)) if m else (404, b"Not Found")
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            send_json(self, status, payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the http.server API)
            logger.debug("telegram emulator: " + format, *args)

    return Handler
