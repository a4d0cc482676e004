"""Logging for the command line: one format, quiet libraries, and secrets never written out.

Libraries log what they see: python-telegram-bot logs request URLs, which carry the bot token, at DEBUG.
A filter on the handler masks the configured secrets and anything shaped like a Telegram, Slack or OpenAI
token before a record is written, whoever logged it. A configured secret is masked whatever its length: a
short one (a 5-character webhook secret, a local server's API key "none") wherever it stands on its own
(in a URL, a header, quotes), so that ordinary words containing it are left readable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"
_TOKEN_SHAPES = re.compile(
    r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}"  # Telegram bot token, also inside URLs (/bot123:...)
    r"|\bx(?:ox[abposr]|app)-[A-Za-z0-9-]{10,}"  # Slack bot, user and app tokens
    r"|\bsk-[A-Za-z0-9_-]{16,}"  # OpenAI-style API keys
)
_SHORT = 8  # characters; a secret shorter than this is masked only where it is not part of a longer word
_NOISY = ("httpx", "httpcore", "bm25s", "chromadb", "urllib3", "openai", "watchfiles")


class RedactingFilter(logging.Filter):
    """Masks secret values and token-shaped strings in every record it passes."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        unique = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.secrets = [s for s in unique if len(s) >= _SHORT]
        short = [re.escape(s) for s in unique if len(s) < _SHORT]
        self._short = re.compile(rf"(?<![\w-])(?:{'|'.join(short)})(?![\w-])") if short else None

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        if self._short is not None:
            text = self._short.sub(REDACTED, text)
        return _TOKEN_SHAPES.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def configure(verbosity: int, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at WARNING, INFO (-v) or DEBUG (-vv), with secrets masked."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbosity, 2)]
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(level, logging.WARNING) if verbosity < 2 else level)
