"""Cleaning text that comes from outside (questions, document titles, file names) before anyone sees it."""

from __future__ import annotations

import unicodedata


def sanitize(text: str) -> str:
    """Drop control characters (terminal escapes, NUL; newlines and tabs stay) and lone surrogates."""
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs"))


def one_line(text: str) -> str:
    """``text`` sanitized onto one line, as a terminal should print a file name or a title."""
    return " ".join(sanitize(text).split())
