"""Logs never carry secrets: configured tokens and token-shaped strings are masked, whoever logs them."""

import logging
from collections.abc import Iterator

import pytest

from bot.logs import REDACTED, RedactingFilter, configure

TELEGRAM_TOKEN = "123456789:AAHk3x-Zq9Tq7rV1Hq2cS0bOe8r2y5JmP0w"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure() replaces the root handlers; later tests must not log into this test's captured stderr."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def test_logs_mask_configured_secrets_and_token_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    configure(2, ["my-signing-secret"])
    log = logging.getLogger("telegram.ext.ExtBot")
    log.debug("POST https://api.telegram.org/bot%s/getMe", TELEGRAM_TOKEN)
    log.warning("slack said %s for xoxb-1234567890-abcdefghij and my-signing-secret", "ok")
    try:
        raise RuntimeError(f"failed with key sk-abcdefghijklmnopqrstuvwx at {TELEGRAM_TOKEN}")
    except RuntimeError:
        log.exception("request failed")
    err = capsys.readouterr().err
    assert TELEGRAM_TOKEN not in err
    assert "xoxb-1234567890" not in err and "my-signing-secret" not in err
    assert "sk-abcdefghijklmnop" not in err
    assert err.count(REDACTED) >= 5
    assert "/getMe" in err and "request failed" in err


def test_logs_leave_ordinary_text_alone() -> None:
    text = "indexed 2 documents; chunk 3:12 of paper 10.1016/j.pharmthera.2020.107753"
    assert RedactingFilter(["unrelated-secret"]).redact(text) == text


def test_logs_mask_short_secrets_where_they_stand_alone() -> None:
    redact = RedactingFilter(["k3y-5", "none"]).redact
    logged = ('setWebhook {"url": "https://bot.example.org/tg", "secret_token": "k3y-5"} '
              "X-Telegram-Bot-Api-Secret-Token: k3y-5; GET /v1/models?api-key=none")
    assert "k3y-5" not in redact(logged) and "=none" not in redact(logged)
    assert redact(logged).count(REDACTED) == 3
    assert redact("nonetheless, none of k3y-50 changed") == f"nonetheless, {REDACTED} of k3y-50 changed"
