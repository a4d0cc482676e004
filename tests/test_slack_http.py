"""Slack's HTTP mode (``bot.slack_http``): what reaches the Bolt app, signed requests through the real server.

Oversized, unsigned, malformed and replayed requests are turned away before Bolt parses them, and an unsigned
body never reaches the logs; a signed, fresh request is answered once."""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.parse
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests import test_slack
from tests.conftest import RecordingResponder
from tests.test_slack import ASKER, HELPDESK, TEAM, TME, mention

# The Slack emulator and the HTTP-served bot, as test_slack.py provides them.
slack = test_slack.slack
start_bot = test_slack.start_bot


def test_slack_invalid_signature_is_rejected_and_nothing_posted(start_bot, slack, responder) -> None:
    bot = start_bot(responder)
    assert bot.event(mention(TME), secret="not-the-signing-secret")[0] == 401
    assert slack.calls() == [] and responder.calls == []


def test_slack_request_older_than_five_minutes_is_rejected(start_bot, slack, responder) -> None:
    bot = start_bot(responder)
    assert bot.event(mention(TME), timestamp=int(time.time()) - 6 * 60)[0] == 401
    assert slack.calls() == [] and responder.calls == []


def _post_raw(url: str, headers: dict[str, str], chunks: Iterator[bytes]) -> int:
    """POST headers, then ``chunks`` as they are taken, then read the status; 0 when the server hung up first."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("POST", parts.path)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        for chunk in chunks:
            connection.send(chunk)
        return connection.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        connection.close()


def test_slack_oversized_requests_are_refused_before_they_are_read(start_bot, slack, responder) -> None:
    bot = start_bot(responder)
    declared = {"Content-Type": "application/json", "Content-Length": str(300 * 2**20)}
    assert _post_raw(bot.url, declared, iter([b"{" * 65536])) == 413  # answered on the header alone
    sent = 0

    def chunked() -> Iterator[bytes]:  # unsigned, no Content-Length, 64 MiB at most
        nonlocal sent
        for _ in range(1024):
            sent += 1
            yield b"fff4\r\n" + b" " * 0xFFF4 + b"\r\n"

    status = _post_raw(bot.url, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, chunked())
    assert status in (413, 0) and sent < 1024  # refused long before the sender ran out
    assert responder.calls == [] and slack.calls() == []


def test_slack_unsigned_body_never_reaches_the_logs(start_bot, slack, responder, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    bot = start_bot(responder)
    secret_words = "UNSIGNED-PAYLOAD-7f3a"
    assert bot.event(mention(secret_words), secret="not-the-signing-secret")[0] == 401
    assert bot.event(mention(secret_words), headers={"X-Slack-Request-Timestamp": "soon"})[0] == 401
    assert secret_words not in caplog.text and responder.calls == []


@pytest.mark.parametrize(("body", "content_type"), [
    (b"this is not json", "application/json"),
    (b'["a", "list"]', "application/json"),
    (b"payload=%7Bnot-json", "application/x-www-form-urlencoded"),
    (b"\xff\xfe not utf-8", "application/x-www-form-urlencoded"),
], ids=["not json", "json list", "form payload not json", "not utf-8"])
def test_slack_signed_body_slack_never_sends_gets_400(start_bot, slack, responder, body, content_type) -> None:
    bot = start_bot(responder)
    status, text = bot.send(body, content_type)
    assert status == 400 and "Traceback" not in text
    assert responder.calls == [] and slack.calls() == []


def test_slack_replayed_signed_command_is_answered_once(start_bot, slack, responder) -> None:
    bot = start_bot(responder)
    form = urlencode({"team_id": TEAM, "channel_id": HELPDESK, "user_id": ASKER, "command": "/ask", "text": TME,
                      "response_url": slack.response_url("ask"), "trigger_id": "1.2.3"}).encode()
    signed_at = int(time.time())
    for _ in range(3):  # what an eavesdropper could send within the five minutes
        assert bot.send(form, "application/x-www-form-urlencoded", timestamp=signed_at)[0] == 200
    assert bot.send(form, "application/x-www-form-urlencoded", timestamp=signed_at + 1)[0] == 200  # new request
    slack.wait_for("response_url", 2)
    time.sleep(0.3)
    assert len(slack.calls("response_url")) == 2 and len(responder.calls) == 2


def test_slack_url_verification_challenge_is_answered(start_bot) -> None:
    bot = start_bot(RecordingResponder())
    body = {"token": "legacy-verification-token", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification"}
    status, text = bot.send(json.dumps(body).encode(), "application/json")
    assert status == 200 and json.loads(text)["challenge"] == body["challenge"]
