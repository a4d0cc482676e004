"""Read documents into text, page or section segments, and citation metadata.

``discover`` turns the paths a user names into ``(file, root)`` pairs, reporting what it will not read as
``Skipped``; ``load`` reads one file with the parser for its suffix (``parse_text``, ``parse_markdown``,
``parse_html``, ``parse_pdf``, ``parse_docx``) and returns a ``LoadedDocument`` whose segments know where
they start inside the whole text, so chunks and citations can point at exact words.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docx
from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, NavigableString, Tag, XMLParsedAsHTMLWarning
from bs4.element import PreformattedString, Script, Stylesheet, TemplateString
from bs4.exceptions import ParserRejectedMarkup
from docx.table import Table
from docx.text.paragraph import Paragraph
from langchain_core.documents import Document
from pypdf import PasswordType, PdfReader

from retrieval.cleaning import attach_terms, clean, normalize, reflow, strip_inline, strip_markdown
from retrieval.errors import LoadError

logger = logging.getLogger(__name__)

Metadata = dict[str, str | int]

_SEPARATOR = "\n\n"  # between pages, sections and paragraphs: where the chunker prefers to cut
_MAX_TITLE = 150
_GENERIC_TITLES = frozenset(
    {
        "abstract", "summary", "introduction", "background", "overview", "contents", "table of contents",
        "keywords", "preface", "foreword", "title", "untitled", "document", "draft", "confidential",
        "article", "review", "review article", "research article", "original article", "original research",
    }
)  # fmt: skip
_FILENAME_TITLE = re.compile(r"(?i)^microsoft \w+ - |\.(docx?|pdf|tex|dvi|txt|rtf)$")
_SECTION_LEVELS = 3  # h1-h3 and Heading 1-3 start sections; deeper headings stay inside them


@dataclass(frozen=True)
class LoadedDocument:
    """One source file's extracted text, its page/section segments and its metadata."""

    source: str
    text: str
    segments: list[Document]
    metadata: Metadata
    content_hash: str


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed and the one-line reason shown to the user."""

    source: str
    reason: str


@dataclass
class Parsed:
    """What a format parser found: the text, its segments, an explicit title, extra metadata."""

    text: str
    segments: list[Document]
    title: str | None = None
    metadata: Metadata = field(default_factory=dict)


# --- discovery ---------------------------------------------------------------------------------------


def discover(paths: Iterable[Path]) -> Iterator[tuple[Path, Path] | Skipped]:
    """Yield ``(file, root)`` for every loadable file under ``paths`` and ``Skipped`` for the rest.

    A file's root is its folder; a folder is walked recursively in sorted order, hidden names ignored.
    """
    for path in paths:
        if path.is_dir():
            yield from _walk(path)
        elif path.exists() or path.is_symlink():
            yield _check(path, path.parent)
        else:
            yield Skipped(path.as_posix(), "not found")


def _walk(root: Path) -> Iterator[tuple[Path, Path] | Skipped]:
    found: list[tuple[str, tuple[Path, Path] | Skipped]] = []
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            found.append((_relative(folder, root), Skipped(_relative(folder, root), _os_reason(exc))))
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                folders.append(path)
            else:
                found.append((_relative(path, root), _check(path, root)))
    for _, item in sorted(found, key=lambda pair: pair[0]):
        yield item


def _check(path: Path, root: Path) -> tuple[Path, Path] | Skipped:
    """Accept a file under ``root``, or say why it is skipped (without reading it)."""
    source = _relative(path, root)
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop
            return Skipped(source, "broken symlink")
        if not target.is_relative_to(root.resolve()):
            return Skipped(source, "symlink points outside the indexed folder")
        if target.is_dir():
            return Skipped(source, "symlinked folder (not followed)")
    if not path.is_file():
        return Skipped(source, "not a regular file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        return Skipped(source, unsupported_reason(suffix))
    return path, root


def unsupported_reason(suffix: str) -> str:
    """Why a file with this (lower-case) suffix is not indexed."""
    return f"unsupported type {suffix or '(no extension)'}"


def _relative(path: Path, root: Path) -> str:
    """The posix path of ``path`` below ``root``; never absolute."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _os_reason(exc: OSError) -> str:
    return f"unreadable: {exc.strerror or type(exc).__name__}"


# --- loading -----------------------------------------------------------------------------------------


def load(path: Path, root: Path) -> LoadedDocument:
    """Read one file into a ``LoadedDocument``; raises ``LoadError`` with a one-line reason."""
    suffix = path.suffix.lower()
    if suffix not in _PARSERS:
        raise LoadError(unsupported_reason(suffix))
    file_format, parser = _PARSERS[suffix]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(_os_reason(exc)) from exc
    if not data or data.isspace():
        raise LoadError("empty file")
    parsed = parser(data)
    title = parsed.title or _title_from_text(parsed.text) or path.stem
    metadata: Metadata = {
        "title": title,
        "format": file_format,
        **parsed.metadata,
        **parse_identifiers(parsed.text),
    }
    content_hash = hashlib.sha256(data).hexdigest()
    logger.debug("loaded %s: %d segments, %d chars", path, len(parsed.segments), len(parsed.text))
    return LoadedDocument(_relative(path, root), parsed.text, parsed.segments, metadata, content_hash)


def _assemble(parts: Iterable[tuple[str, Metadata]]) -> tuple[str, list[Document]]:
    """Join the non-blank parts with blank lines; each part becomes a segment knowing its offset."""
    pieces: list[str] = []
    segments: list[Document] = []
    offset = 0
    for content, metadata in parts:
        stripped = content.strip()
        if not stripped:
            continue
        if pieces:
            offset += len(_SEPARATOR)
        segments.append(Document(page_content=stripped, metadata={**metadata, "offset": offset}))
        pieces.append(stripped)
        offset += len(stripped)
    return _SEPARATOR.join(pieces), segments


def _title_from_text(text: str) -> str | None:
    """The first non-empty line, when it is short and not a generic heading such as "Abstract"."""
    for line in text[: _MAX_TITLE * 4].splitlines():
        line = strip_inline(line.strip().lstrip("#").strip()).strip()
        if line:
            return line if _good_title(line) else None
    return None


def _good_title(title: str) -> bool:
    return (
        len(title) < _MAX_TITLE
        and title.lower().rstrip(":.") not in _GENERIC_TITLES
        and not _FILENAME_TITLE.search(title)
    )


def _short(exc: BaseException) -> str:
    """A one-line cause for a third-party exception."""
    lines = str(exc).strip().splitlines()
    return lines[0][:120] if lines else type(exc).__name__


# --- identifiers -------------------------------------------------------------------------------------

_IDENTIFIER_WINDOW = 100_000  # characters read at each end of a long text
_FIRST_PAGE = 3_000  # characters: about a page, where a paper prints its own DOI and PMID
_DOI = r"10\.\d{4,9}/[^\s\"'<>]+"
_LABELED_DOI = re.compile(rf"(?i)(?:\bdoi\b[\s:\-]{{0,10}}|doi\.org/)({_DOI})")
_BARE_DOI = re.compile(rf"\b({_DOI})")
_PMID = re.compile(
    r"(?i)\b(?:PMID|PubMed ID)\b[\s:\-]{0,10}(\d{1,9})\b|pubmed\.ncbi\.nlm\.nih\.gov/(\d{1,9})"
)
_BRACKETS = {")": "(", "]": "[", "}": "{"}
_PMCID = re.compile(r"\b(PMC\d{3,9})\b")
# A metadata block's line: the label starts the line, the value ends it or the next line ("DOI: 10.1/x",
# "- DOI" over "- 10.1/x"). A reference list names DOIs inside its entries, never so.
_ITEM = r"^[ \t\-*\u2022]*"
_NEXT = r"[ \t]*:?[ \t]*(?:\n[ \t\-*\u2022]*)?"
_BLOCK = {
    "doi": re.compile(rf"(?im){_ITEM}(?:doi{_NEXT}(?:https?://(?:dx\.)?doi\.org/)?|https?://(?:dx\.)?doi\.org/)"
                      rf"({_DOI})[ \t]*$"),
    "pmid": re.compile(rf"(?im){_ITEM}(?:PMID|PubMed ID){_NEXT}(\d{{1,9}})[ \t]*$"),
    "pmcid": re.compile(rf"(?im){_ITEM}PMCID{_NEXT}(PMC\d{{3,9}})[ \t]*$"),
}
# "Year: 2020", "Published: 12 March 2020", and the "- Year" / "- 2020" lines of a metadata block.
_YEAR = re.compile(
    r"(?i)\b(?:year|published|publication date)\b[ \t]*(?::[ \t]*|\n[ \t]*-?[ \t]*)"
    r"(?:[^\n\d]{0,15}\d{1,2}[^\n\d]{1,15})?\b((?:18|19|20)\d{2})\b"
)


def parse_identifiers(text: str) -> dict[str, str | int]:
    """The document's own DOI, PMID, PMCID (strings) and year (int); absent ones are left out.

    An identifier is the document's when a metadata block states it (its label starting a line, at the
    start or the end of a long text) or its first page does. One named anywhere else is a work it cites:
    a FAQ citing Ihaka & Gentleman (1996) does not carry their DOI.
    """
    if len(text) > 2 * _IDENTIFIER_WINDOW:
        text = text[:_IDENTIFIER_WINDOW] + "\n" + text[-_IDENTIFIER_WINDOW:]
    page = text[:_FIRST_PAGE]
    first_page = {"doi": _LABELED_DOI.search(page) or _BARE_DOI.search(page), "pmid": _PMID.search(page),
                  "pmcid": _PMCID.search(page)}
    found: dict[str, str | int] = {}
    for key, block in _BLOCK.items():
        if match := block.search(text) or first_page[key]:
            found[key] = next(group for group in match.groups() if group)
    if "doi" in found:
        found["doi"] = _trim_doi(str(found["doi"]))
    if year := _YEAR.search(text):
        found["year"] = int(year.group(1))
    return found


def _trim_doi(doi: str) -> str:
    """Drop sentence punctuation after a DOI, keeping brackets that belong to it (``(20)30183-5``)."""
    while doi and (doi[-1] in ".,;:" or _unbalanced(doi)):
        doi = doi[:-1]
    return doi


def _unbalanced(doi: str) -> bool:
    closing = doi[-1]
    opening = _BRACKETS.get(closing)
    return opening is not None and doi.count(closing) > doi.count(opening)


# --- text and markdown -------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_NOT_CONTROL = bytes(b for b in range(256) if b >= 32 or b in b"\t\n\r\f\v\x1b")
_ASCII = bytes(range(128))
_SAMPLE = 65536  # bytes inspected to tell text from binary


def _decode_text(data: bytes) -> tuple[str, Metadata]:
    """Decode text bytes; the metadata names a legacy encoding when one had to be guessed.

    UTF-8 first (a byte-order mark selects UTF-8 or UTF-16); other bytes are read as Windows-1252 or
    Latin-1, the usual legacy encodings of Western text, unless they look like no text at all.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _non_empty(data.decode(encoding)), {}
            except UnicodeDecodeError as exc:
                raise LoadError(f"not valid {encoding.upper()} text") from exc
    sample = data[:_SAMPLE]
    if b"\0" in data or len(sample.translate(None, _NOT_CONTROL)) > len(sample) // 10:
        raise LoadError("binary content")
    try:
        return _non_empty(data.decode("utf-8")), {}
    except UnicodeDecodeError:
        pass
    if len(sample.translate(None, _ASCII)) > len(sample) * 0.3:
        raise LoadError("not valid UTF-8 text")
    try:
        text, encoding = data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:  # five bytes are undefined in Windows-1252
        text, encoding = data.decode("latin-1"), "latin-1"
    logger.info("not UTF-8; read as %s", encoding)
    return _non_empty(text), {"encoding": encoding}


def _non_empty(text: str) -> str:
    if not text or text.isspace():
        raise LoadError("empty file")
    return text


def parse_text(data: bytes) -> Parsed:
    """Plain text: one segment holding the whole text, wrapped lines joined into paragraphs."""
    text, metadata = _decode_text(data)
    text, segments = _assemble([(clean(text), {})])
    return Parsed(text, segments, metadata=metadata)


_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def parse_markdown(data: bytes) -> Parsed:
    """Markdown: one segment per ``#``-``###`` section; the title is the first ``# `` heading with words.

    Inline markup (badges, links, code ticks, emphasis) is reduced to its words and paragraphs to one line.
    """
    text, metadata = _decode_text(data)
    text = attach_terms(reflow(strip_markdown(normalize(text)), markdown=True))
    parts: list[tuple[str, Metadata]] = []
    section: Metadata = {}
    lines: list[str] = []
    title = None
    in_fence = False
    for line in text.splitlines(keepends=True):
        if _MD_FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _MD_HEADING.match(line.rstrip("\r\n"))
        if heading and len(heading.group(1)) <= _SECTION_LEVELS:
            parts.append(("".join(lines), section))
            lines, section = [], {"section": heading.group(2)}
            if title is None and len(heading.group(1)) == 1 and heading.group(2).strip():
                title = heading.group(2)
        lines.append(line)
    parts.append(("".join(lines), section))
    text, segments = _assemble(parts)
    return Parsed(text, segments, title, metadata)


# --- HTML --------------------------------------------------------------------------------------------

_DROPPED_TAGS = ["script", "style", "nav", "noscript", "template", "head", "svg"]
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "details", "div", "dl",
        "dt", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
        "html", "li", "main", "ol", "p", "pre", "section", "summary", "table", "tr", "ul",
    }
)  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})
_SECTION_TAGS = frozenset(f"h{n}" for n in range(1, _SECTION_LEVELS + 1))
_NOT_TEXT = (PreformattedString, Script, Stylesheet, TemplateString)  # comments, doctype, CDATA, code


class _HtmlText:
    """Collects text blocks, grouped into sections, as the tree walk reports them."""

    def __init__(self) -> None:
        self.parts: list[tuple[list[str], Metadata]] = [([], {})]
        self.line: list[str] = []

    def add(self, text: str, *, preformatted: bool) -> None:
        if not preformatted:
            text = re.sub(r"\s+", " ", text)
            if text.startswith(" ") and (not self.line or self.line[-1].endswith(" ")):
                text = text[1:]
        self.line.append(text)

    def break_line(self) -> None:
        block = "".join(self.line).strip()
        if block:
            self.parts[-1][0].append(block)
        self.line = []

    def start_section(self, heading: str) -> None:
        self.break_line()
        self.parts.append(([], {"section": heading}))


def parse_html(data: bytes) -> Parsed:
    """HTML: visible text without scripts, styles and navigation; one segment per h1-h3 section."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
            soup = BeautifulSoup(data, "html.parser")
    except (ParserRejectedMarkup, RecursionError) as exc:
        raise LoadError(f"unreadable HTML: {_short(exc)}") from exc
    title = _html_title(soup)
    for tag in soup.find_all(_DROPPED_TAGS):
        tag.extract()
    for tag in soup.find_all("a", class_="headerlink"):  # Sphinx's "¶" after every heading
        tag.extract()
    collected = _walk_html(soup)
    text, segments = _assemble(
        (attach_terms(normalize(_SEPARATOR.join(blocks))), meta) for blocks, meta in collected.parts
    )
    if not segments:
        raise LoadError("no text found")
    return Parsed(text, segments, title)


def _html_title(soup: BeautifulSoup) -> str | None:
    for tag in (soup.find("title"), soup.find("h1")):
        if isinstance(tag, Tag) and (text := strip_inline(tag.get_text(" ", strip=True))):
            return re.sub(r"\s+", " ", text)
    return None


def _walk_html(soup: BeautifulSoup) -> _HtmlText:
    """Walk the tree in document order without recursion: pages can nest tags thousands deep."""
    collected = _HtmlText()
    open_tags: list[Tag] = []  # the ancestors of the current node
    open_pre = 0
    for node in soup.descendants:
        while open_tags and node.parent is not open_tags[-1]:
            closed = open_tags.pop()
            open_pre -= closed.name == "pre"
            if closed.name in _BLOCK_TAGS:
                collected.break_line()
        if isinstance(node, Tag):
            open_tags.append(node)
            open_pre += node.name == "pre"
            if node.name in _SECTION_TAGS and (heading := node.get_text(" ", strip=True)):
                collected.start_section(strip_inline(re.sub(r"\s+", " ", heading)))
            elif node.name in _BLOCK_TAGS:
                collected.break_line()
            elif node.name in _CELL_TAGS:
                collected.add(" ", preformatted=False)
        elif isinstance(node, NavigableString) and not isinstance(node, _NOT_TEXT):
            collected.add(str(node), preformatted=open_pre > 0)
    collected.break_line()
    return collected


# --- PDF ---------------------------------------------------------------------------------------------


def parse_pdf(data: bytes) -> Parsed:
    """PDF text layer: one segment per page (``page`` is 1-based); the title from the PDF metadata."""
    try:
        reader = PdfReader(io.BytesIO(data))
        _unlock(reader)
        pages = [(_pdf_page(page.extract_text() or ""), {"page": n}) for n, page in enumerate(reader.pages, start=1)]
        title = str(reader.metadata.title or "").strip() if reader.metadata else ""
    except LoadError:
        raise
    except Exception as exc:  # pypdf raises many kinds of exceptions on malformed files
        raise LoadError(f"corrupt PDF: {_short(exc)}") from exc
    text, segments = _assemble(pages)
    if not segments:
        raise LoadError("no text layer (scanned PDF?)")
    return Parsed(text, segments, title if _good_title(title) else None)


def _pdf_page(text: str) -> str:
    """A page's text layer as paragraphs: ligatures unfolded, wrapped and hyphenated lines joined."""
    return attach_terms(reflow(normalize(text, nfkc=True)))


def _unlock(reader: PdfReader) -> None:
    """Open an encrypted PDF when its user password is empty (only printing or copying is restricted)."""
    if not reader.is_encrypted:
        return
    try:
        unlocked = reader.decrypt("") != PasswordType.NOT_DECRYPTED
    except Exception as exc:  # unsupported encryption handlers surface as assorted pypdf errors
        raise LoadError(f"encrypted PDF ({_short(exc)})") from exc
    if not unlocked:
        raise LoadError("encrypted PDF")


# --- DOCX --------------------------------------------------------------------------------------------


def parse_docx(data: bytes) -> Parsed:
    """Word document: paragraphs and tables in order, one segment per Heading 1-3 section."""
    try:
        document = docx.Document(io.BytesIO(data))
        parts, first_heading = _docx_sections(document.iter_inner_content())
        title = (document.core_properties.title or "").strip() or first_heading
    except Exception as exc:  # python-docx surfaces zip, XML and package errors alike
        raise LoadError(f"corrupt DOCX: {_short(exc)}") from exc
    text, segments = _assemble(parts)
    if not segments:
        raise LoadError("no text found")
    return Parsed(text, segments, title)


def _docx_sections(blocks: Iterable[Paragraph | Table]) -> tuple[list[tuple[str, Metadata]], str | None]:
    """Group the body into sections by heading; also return the first heading as a title candidate."""
    sections: list[tuple[list[str], Metadata]] = [([], {})]
    first_heading = None
    for block in blocks:
        if isinstance(block, Table):
            sections[-1][0].extend(_table_rows(block))
            continue
        text = block.text.strip()
        level = _heading_level(block)
        if text and level is not None and level <= _SECTION_LEVELS:
            sections.append(([], {"section": text}))
            first_heading = first_heading or text
        sections[-1][0].append(text)
    parts = [
        (attach_terms(normalize(_SEPARATOR.join(line for line in lines if line))), meta) for lines, meta in sections
    ]
    return parts, first_heading


def _heading_level(paragraph: Paragraph) -> int | None:
    """0 for the Title style, n for "Heading n", None for body text."""
    name = (paragraph.style.name if paragraph.style is not None else None) or ""
    if name == "Title":
        return 0
    match = re.fullmatch(r"Heading (\d)", name)
    return int(match.group(1)) if match else None


def _table_rows(table: Table) -> list[str]:
    """One line per row, cells separated by " | "; a merged cell is written once."""
    rows = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if previous is None or cell._tc is not previous._tc:  # a merged cell repeats along its row
                cells.append(cell.text.strip())
            previous = cell
        rows.append(" | ".join(cells))
    return rows


# suffix -> (the "format" metadata, its parser)
_PARSERS: dict[str, tuple[str, Callable[[bytes], Parsed]]] = {
    ".txt": ("text", parse_text),
    ".md": ("markdown", parse_markdown),
    ".markdown": ("markdown", parse_markdown),
    ".html": ("html", parse_html),
    ".htm": ("html", parse_html),
    ".pdf": ("pdf", parse_pdf),
    ".docx": ("docx", parse_docx),
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_PARSERS)
