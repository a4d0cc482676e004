"""Extracted text made readable before it is chunked, so quotes are whole sentences a reader can check.

The loaders call these on what a parser found; everything downstream (chunks, quotes, offsets) indexes the
cleaned text, which is the document's extracted text from then on.

- ``normalize``: Unicode NFKC for PDF text (pypdf returns ligatures such as "ﬁ"), soft hyphens and
  zero-width characters dropped everywhere, line ends unified.
- ``reflow``: lines that were only wrapped (PDF lines, hard-wrapped text and Markdown paragraphs) are joined
  into their paragraph, with end-of-line hyphenation undone, so that a sentence no longer ends at every line
  break; headings, list items, table rows and code stay lines of their own.
- ``attach_terms``: a line holding only an option or a term (``-a, --all``, ``PIP_CERT``) is joined to the
  line that explains it, so the sentence naming the option is one sentence.
- ``strip_markdown``: inline markup (badges, images, links, code ticks, emphasis, heading anchors) reduced to
  its words.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from functools import cache

from wordfreq import zipf_frequency

_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_TERMINAL = re.compile(r"[.!?:;]['\")\]]*$")
# Lines that start a block of their own: list items, headings, table rows, quotes, fences, figure labels.
_BLOCK_START = re.compile(r"^\s*(?:[-*+•▪◦‣]\s|\d{1,3}[.)]\s|#{1,6}\s|\||>|```|~~~|(?:Table|Figure|Fig\.)\s+\d)")
# "2.4. OPTIONS", "3 Results", "MEMORY MANAGEMENT": a heading, whatever the line widths say.
_HEADING = re.compile(r"^\s*(?:\d{1,2}(?:\.\d{1,2})*\.?\s+[A-Z][^.!?]{0,60}|[A-Z][A-Z0-9 ,&/()-]{2,60})\s*$")
_HYPHENATED = re.compile(r"([A-Za-z]{2,})-$")
_TERM = re.compile(
    r"^\s*(?:--?[A-Za-z0-9][\w-]*(?:[= ]<?[\w.-]+>?)?|[A-Z][A-Z0-9]*_[A-Z0-9_]+)"
    r"(?:,\s*(?:--?[A-Za-z0-9][\w-]*(?:[= ]<?[\w.-]+>?)?|[A-Z][A-Z0-9]*_[A-Z0-9_]+))*\s*$"
)
_WRAPPED = 0.75  # a line at least this share of the text's usual line width was wrapped, not ended
_MIN_LINES = 5  # long lines needed to tell the width text was wrapped at
_MAX_WRAP = 120  # usual line widths beyond this are paragraphs written on one line each, not wrapped text

_MD_BADGE = re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)|!\[[^\]]*\]\([^)]*\)|<img\b[^>]*>", re.I)
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((?:[^()\s]|\([^)]*\))+(?:\s+\"[^\"]*\")?\)|\[([^\]\n]+)\]\[[^\]\n]*\]")
_MD_CODE = re.compile(r"`+([^`\n]+?)`+")
_MD_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1|(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![\w*])")
_MD_ANCHOR = re.compile(r"\s*\{#[\w-]+\}\s*$|[¶]")
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_MD_SETEXT = re.compile(r"^ {0,3}(=+|-{2,})\s*$")


def clean(text: str) -> str:
    """Plain text as citebot indexes it: normalized, wrapped lines re-joined, term lines attached."""
    return attach_terms(reflow(normalize(text)))


def normalize(text: str, *, nfkc: bool = False) -> str:
    """Unified line ends, invisible characters dropped; NFKC as well with ``nfkc`` (PDF text)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    return unicodedata.normalize("NFKC", text) if nfkc else text


def reflow(text: str, *, markdown: bool = False) -> str:
    """Join wrapped lines into paragraphs; blank lines, headings, list items, tables and code keep their breaks.

    A line is joined to the one before it when that one does not end a sentence and either this one goes on
    in lower case or that one is as long as the text's wrapped lines are (so it was cut by the width).
    In Markdown every line of a paragraph is joined, as Markdown itself renders it.
    """
    lines = text.split("\n")
    widths = [len(line.rstrip()) for line in lines if len(line.strip()) > 20]
    usual = statistics.quantiles(widths, n=10)[7] if len(widths) >= _MIN_LINES else 10**9
    if usual > _MAX_WRAP:
        usual = 10**9  # nothing was wrapped by width (or too few lines to tell): only lower-case goes on
    paragraphs: list[list[str]] = []  # each output line as the pieces joined into it
    in_fence = False
    last = ""  # the previous line as it was, before anything was joined to it
    for line in lines:
        fence = bool(_MD_FENCE.match(line))
        if fence or in_fence or not paragraphs or not line.strip() or not last.strip():
            in_fence ^= fence
            paragraphs.append([line])
        elif _continues(last.rstrip(), line, usual, markdown):
            pieces = paragraphs[-1]
            pieces[-1], joined = _join(pieces[-1].rstrip(), line.strip())
            pieces.append(joined)
        else:
            paragraphs.append([line])
        last = line
    return "\n".join("".join(pieces) for pieces in paragraphs)


def _continues(prev: str, line: str, usual: int, markdown: bool) -> bool:
    stripped = line.strip()
    if _BLOCK_START.match(line) or _TERM.match(prev) or _TERM.match(line):
        return False
    if not markdown and (_HEADING.match(prev) or _HEADING.match(line)):
        return False
    if markdown and (line.startswith("    ") or "|" in prev):  # indented code, table rows
        return False
    if markdown:
        return not prev.lstrip().startswith("#") and not prev.endswith("  ")
    if _TERMINAL.search(prev) and not (prev.endswith(",") or stripped[:1].islower()):
        return len(prev) >= _WRAPPED * usual and not prev.endswith(":") and len(prev.split()) > 3
    return stripped[:1].islower() or (len(prev) >= _WRAPPED * usual and len(prev.split()) > 3)


def _join(prev: str, line: str) -> tuple[str, str]:
    """``prev`` and ``line`` as the two pieces of one line; a word hyphenated across the break is made whole."""
    hyphen = _HYPHENATED.search(prev[-64:])
    if hyphen and line[:1].islower():
        head, tail = hyphen.group(1), re.match(r"[a-z]+", line)
        if tail and _known(head + tail.group()):
            return prev[:-1], line
        return prev, line  # a compound (long-term): keep its hyphen
    return prev, f" {line}"


@cache
def _known(word: str) -> bool:
    return zipf_frequency(word.lower(), "en") > 0


def attach_terms(text: str) -> str:
    """Join each line that is only an option or term to the explanation on the next line, as ``term: text``."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        gap = 1 if i + 1 < len(lines) and lines[i + 1].strip() else 2
        explained = lines[i + gap] if i + gap < len(lines) else ""
        if _TERM.match(line) and explained.strip() and not _TERM.match(explained) and explained.strip()[0].isalpha():
            out.append(f"{line.rstrip()}: {explained.strip()}")
            i += gap + 1
        else:
            out.append(line)
            i += 1
    return "\n".join(out)


def strip_markdown(text: str) -> str:
    """Markdown's inline markup reduced to its words, setext headings ("Title" over "=====") written as
    ``#`` headings; fenced code is left as it is."""
    out, in_fence = [], False
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if _MD_FENCE.match(line):
            in_fence = not in_fence
            out.append(line)
            continue
        underline = _MD_SETEXT.match(lines[i + 1]) if i + 1 < len(lines) and not in_fence else None
        if underline and line.strip() and not _BLOCK_START.match(line):
            line = f"{'#' if underline.group(1)[0] == '=' else '##'} {line.strip()}"
        elif _MD_SETEXT.match(line) and out and out[-1].startswith("#"):
            continue  # the underline of the heading just written
        out.append(line if in_fence else strip_inline(line))
    return "\n".join(out)


def strip_inline(line: str) -> str:
    """One line without badges, images, link targets, code ticks, emphasis marks and heading anchors."""
    line = _MD_BADGE.sub("", line)
    line = _MD_LINK.sub(lambda m: m.group(1) or m.group(2), line)
    line = _MD_CODE.sub(r"\1", line)
    line = _MD_EMPHASIS.sub(lambda m: m.group(2) or m.group(3), line)
    return _MD_ANCHOR.sub("", line).rstrip() if line.strip() else line
