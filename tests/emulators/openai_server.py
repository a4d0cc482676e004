"""A small OpenAI-compatible chat-completions server on 127.0.0.1, scripted per test.

    with OpenAIEmulator() as server:
        server.script(Reply("Immune checkpoints are targets [1]."))
        ...  # point OPENAI_BASE_URL at server.url
        server.requests[0].body["messages"]

Each request to ``POST /v1/chat/completions`` takes the next scripted behaviour; the last one repeats, so a
single ``Status(500)`` answers every retry. A request asking ``"stream": true`` gets server-sent events
(``data: {...}`` chunks, then ``data: [DONE]``), otherwise one JSON body.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.emulators import send_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """A normal answer; streamed word by word when the client asks for a stream, ``pace`` seconds apart."""

    text: str
    usage: tuple[int, int] | None = (120, 30)  # prompt and completion tokens, sent when not None
    pace: float = 0.0


@dataclass(frozen=True)
class Status:
    """An HTTP error status with an OpenAI-style error body."""

    code: int
    message: str = "internal server error"


@dataclass(frozen=True)
class Malformed:
    """A stream that starts with ``prefix`` as good chunks, then sends an event that is not JSON."""

    prefix: str = ""
    garbage: str = "{this is not json"


@dataclass(frozen=True)
class Hang:
    """Stay silent for ``seconds`` (or until the server stops) before answering at all."""

    seconds: float = 60.0


Behaviour = Reply | Status | Malformed | Hang


@dataclass(frozen=True)
class RecordedRequest:
    """What the client sent: path, headers (lower-case names) and the JSON body."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


class OpenAIEmulator:
    """The server; a context manager that binds a free port on 127.0.0.1 and serves in a thread."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._script: list[Behaviour] = [Reply("Scripted reply.")]
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL a client takes, ending in ``/v1``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """Answer the next requests with these behaviours in order; the last one repeats."""
        with self._lock:
            self._script = list(behaviours)

    def next_behaviour(self, request: RecordedRequest) -> Behaviour:
        with self._lock:
            self.requests.append(request)
            return self._script.pop(0) if len(self._script) > 1 else self._script[0]

    def __enter__(self) -> OpenAIEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()  # releases handlers stuck in a Hang
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(emulator: OpenAIEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = RecordedRequest(self.path, headers, body)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                send_json(self, 404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                _respond(self, emulator, emulator.next_behaviour(request), body)
            except (BrokenPipeError, ConnectionResetError):
                logger.debug("client went away (it timed out or gave up)")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
            logger.debug(format, *args)

    return Handler


def _respond(handler: BaseHTTPRequestHandler, emulator: OpenAIEmulator, act: Behaviour, body: dict) -> None:
    model = str(body.get("model", "emulated"))
    if isinstance(act, Hang):
        if emulator.stopping.wait(act.seconds):
            return
        act = Reply("Late reply.")
    if isinstance(act, Status):
        send_json(handler, act.code, {"error": {"message": act.message, "type": "server_error"}})
    elif isinstance(act, Malformed):
        events = [_chunk(model, {"content": piece}) for piece in _pieces(act.prefix)]
        _send_events(handler, [*map(json.dumps, events), act.garbage])
    elif body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = [json.dumps(e) for e in _stream_events(model, act, include_usage)] + ["[DONE]"]
        _send_events(handler, events, pause=lambda: emulator.stopping.wait(act.pace))
    else:
        send_json(handler, 200, _completion(model, act))


def _pieces(text: str) -> list[str]:
    """Split text into word-sized tokens that join back to exactly ``text``."""
    return re.findall(r"\s*\S+|\s+$", text)


def _usage(act: Reply) -> dict[str, int] | None:
    if act.usage is None:
        return None
    prompt, completion = act.usage
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chunk(model: str, delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "chatcmpl-emu",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [choice],
    }


def _stream_events(model: str, act: Reply, include_usage: bool) -> list[dict[str, Any]]:
    events = [_chunk(model, {"role": "assistant", "content": ""})]
    events += [_chunk(model, {"content": piece}) for piece in _pieces(act.text)]
    events.append(_chunk(model, {}, finish="stop"))
    if include_usage and act.usage is not None:
        events.append({**_chunk(model, {}), "choices": [], "usage": _usage(act)})
    return events


def _completion(model: str, act: Reply) -> dict[str, Any]:
    message = {"role": "assistant", "content": act.text}
    return {
        "id": "chatcmpl-emu",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": _usage(act),
    }


def _send_events(
    handler: BaseHTTPRequestHandler, datas: list[str], pause: Callable[[], object] = lambda: None
) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.end_headers()
    for i, data in enumerate(datas):
        if i:
            pause()
        handler.wfile.write(f"data: {data}\n\n".encode())
        handler.wfile.flush()
