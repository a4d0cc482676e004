"""Loaders on real files of every format, the seeds, and the files a user's folder really holds."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from retrieval.errors import LoadError
from retrieval.loaders import LoadedDocument, Skipped, discover, load, parse_identifiers
from tests.fixtures_docs import make_docx, make_html, make_markdown, make_pdf

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SEED_ABSTRACT = SEEDS / "000_0a4a0b21476d07a5.txt"
SEED_NEWS = SEEDS / "001_d4a9bad2bca880d2.txt"


def assert_segments_located(doc: LoadedDocument) -> None:
    """Every segment's ``offset`` points at its exact words inside the document text."""
    assert doc.segments
    for segment in doc.segments:
        offset = segment.metadata["offset"]
        assert doc.text[offset : offset + len(segment.page_content)] == segment.page_content


def load_error(path: Path) -> str:
    with pytest.raises(LoadError) as caught:
        load(path, path.parent)
    return str(caught.value)


# --- seeds -------------------------------------------------------------------------------------------


def test_load_seed_abstract_reads_identifier_blocks() -> None:
    doc = load(SEED_ABSTRACT, SEEDS)
    assert doc.metadata["doi"] == "10.1016/j.pharmthera.2020.107753"
    assert doc.metadata["pmid"] == "33259885"
    assert doc.metadata["pmcid"] == "PMC8084948"
    assert doc.metadata["year"] == 2020
    assert doc.source == "000_0a4a0b21476d07a5.txt"
    assert doc.content_hash == hashlib.sha256(SEED_ABSTRACT.read_bytes()).hexdigest()
    assert_segments_located(doc)


def test_load_seed_abstract_title_is_not_the_word_abstract() -> None:
    assert load(SEED_ABSTRACT, SEEDS).metadata["title"] == "000_0a4a0b21476d07a5"


def test_load_seed_news_title_is_its_heading_line() -> None:
    doc = load(SEED_NEWS, SEEDS)
    assert doc.metadata == {
        "title": "What are the therapeutic targets in tumor microenvironment",
        "format": "text",
    }
    assert "immune checkpoints" in doc.text
    assert_segments_located(doc)


# --- PDF ---------------------------------------------------------------------------------------------


def test_load_pdf_keeps_page_numbers_and_title(tmp_path: Path) -> None:
    pages = ["Cancer-associated fibroblasts shape the stroma.", "", "Immune checkpoints block T cells."]
    path = make_pdf(tmp_path / "papers" / "tme.pdf", pages, title="Targeting the TME")
    doc = load(path, tmp_path)
    assert doc.source == "papers/tme.pdf"
    assert doc.metadata["title"] == "Targeting the TME"
    assert doc.metadata["format"] == "pdf"
    assert [(s.metadata["page"], s.page_content) for s in doc.segments] == [(1, pages[0]), (3, pages[2])]
    assert_segments_located(doc)


def test_load_pdf_with_empty_user_password_opens(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "restricted.pdf", ["Printing is restricted, reading is not."], encrypt_password=""
    )
    assert load(path, tmp_path).segments[0].page_content == "Printing is restricted, reading is not."


def test_load_pdf_encrypted_is_refused(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "locked.pdf", ["Secret."], encrypt_password="hunter2")
    assert load_error(path) == "encrypted PDF"


@pytest.mark.parametrize("cut", ["truncated", "garbage"])
def test_load_pdf_corrupt_is_refused(tmp_path: Path, cut: str) -> None:
    data = make_pdf(tmp_path / "good.pdf", ["Some words on a page."]).read_bytes()
    broken = data[: len(data) // 2] if cut == "truncated" else b"%PDF-1.7\n" + os.urandom(2000)
    path = tmp_path / "broken.pdf"
    path.write_bytes(broken)
    reason = load_error(path)
    assert reason.startswith("corrupt PDF: ")
    assert "\n" not in reason


def test_load_pdf_without_text_layer_is_refused(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "scan.pdf", ["", ""])
    assert load_error(path) == "no text layer (scanned PDF?)"


# --- DOCX --------------------------------------------------------------------------------------------


def test_load_docx_sections_title_and_table(tmp_path: Path) -> None:
    sections = [
        (None, ["Internal note for the support team."]),
        ("Resetting a password", ["Open Settings, then Security.", "Choose Reset."]),
        ("Refunds", ["Refunds take five days."]),
    ]
    table = [["Plan", "Price"], ["Team", "10 EUR"]]
    path = make_docx(tmp_path / "handbook.docx", sections, title="Support handbook", table=table)
    doc = load(path, tmp_path)
    assert doc.metadata["title"] == "Support handbook"
    assert doc.metadata["format"] == "docx"
    assert [s.metadata.get("section") for s in doc.segments] == [None, "Resetting a password", "Refunds"]
    assert "Open Settings, then Security.\n\nChoose Reset." in doc.segments[1].page_content
    assert doc.segments[2].page_content.endswith("Plan | Price\n\nTeam | 10 EUR")
    assert_segments_located(doc)


def test_load_docx_title_falls_back_to_first_heading(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "notes.docx", [("Onboarding", ["Day one: laptop."])])
    assert load(path, tmp_path).metadata["title"] == "Onboarding"


def test_load_docx_corrupt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    assert load_error(path).startswith("corrupt DOCX: ")


# --- HTML --------------------------------------------------------------------------------------------


def test_load_html_keeps_visible_text_by_section(tmp_path: Path) -> None:
    head = "<style>p { color: red }</style><script>var leaked = 1;</script>"
    sections = [("Install", ["Run the installer."]), ("Configure", ["Edit citebot.toml & restart."])]
    path = make_html(tmp_path / "guide.html", sections, title="Setup guide", head=head)
    page = path.read_text().replace("<body>", "<body><nav>Home | About</nav><!-- hidden note -->")
    path.write_text(page)
    doc = load(path, tmp_path)
    assert doc.metadata["title"] == "Setup guide"
    assert doc.text == "Install\n\nRun the installer.\n\nConfigure\n\nEdit citebot.toml & restart."
    assert [s.metadata["section"] for s in doc.segments] == ["Install", "Configure"]
    assert_segments_located(doc)


def test_load_html_title_from_first_h1_and_inline_text_joined(tmp_path: Path) -> None:
    path = tmp_path / "faq.htm"
    path.write_text("<h1>FAQ</h1><p>Use <b>bold</b>\n   words<br>and breaks.</p><pre>a  b\n  c</pre>")
    doc = load(path, tmp_path)
    assert doc.metadata["title"] == "FAQ"
    assert doc.text == "FAQ\n\nUse bold words\n\nand breaks.\n\na  b\n  c"


def test_load_html_deeply_nested_does_not_recurse(tmp_path: Path) -> None:
    depth = 10_000
    path = tmp_path / "deep.html"
    path.write_text("<html><body>" + "<div>" * depth + "bottom text" + "</div>" * depth + "</body></html>")
    doc = load(path, tmp_path)
    assert doc.text == "bottom text"


def test_load_xhtml_with_xml_declaration(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text('<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><p>Hello</p></html>')
    assert load(path, tmp_path).text == "Hello"


def test_load_html_without_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blank.html"
    path.write_text("<html><head><script>x()</script></head><body> </body></html>")
    assert load_error(path) == "no text found"


# --- Markdown and plain text -------------------------------------------------------------------------


def test_load_markdown_sections_and_title(tmp_path: Path) -> None:
    sections = [(None, ["Intro line."]), ("Usage", ["```sh\n# not a heading\ncitebot ask\n```"])]
    path = make_markdown(tmp_path / "README.md", sections, title="Citebot")
    doc = load(path, tmp_path)
    assert doc.metadata["title"] == "Citebot"
    assert doc.metadata["format"] == "markdown"
    assert [s.metadata["section"] for s in doc.segments] == ["Citebot", "Usage"]
    assert doc.segments[1].page_content.endswith("# not a heading\ncitebot ask\n```")
    assert_segments_located(doc)


@pytest.mark.parametrize("name", ["empty.txt", "empty.md", "empty.pdf", "empty.docx", "empty.html"])
@pytest.mark.parametrize("content", [b"", b" \n\t\n"])
def test_load_empty_file_is_refused(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert load_error(path) == "empty file"


def test_load_binary_with_txt_suffix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    assert load_error(path) == "binary content"


def test_load_mostly_undecodable_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes(range(0x80, 0x100)) * 8 + b"\n")
    assert load_error(path) == "not valid UTF-8 text"


def test_load_latin1_text_is_decoded_and_marked(tmp_path: Path) -> None:
    path = tmp_path / "menu.txt"
    path.write_bytes("Café crème, déjà vu.\n".encode("latin-1"))
    doc = load(path, tmp_path)
    assert doc.text == "Café crème, déjà vu."
    assert doc.metadata["encoding"] == "cp1252"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_load_text_with_byte_order_mark(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("Grüße aus Köln\nZweite Zeile".encode(encoding))
    doc = load(path, tmp_path)
    assert doc.text == "Grüße aus Köln\nZweite Zeile"
    assert doc.metadata["title"] == "Grüße aus Köln"
    assert "encoding" not in doc.metadata


def test_load_text_over_50_mb(tmp_path: Path) -> None:
    line = "Fibroblasts and immune cells shape the tumor microenvironment.\n"
    path = tmp_path / "big.txt"
    path.write_text("Big log\n" + line * (51_000_000 // len(line)) + "\nPMID: 12345\n")  # a closing metadata line
    doc = load(path, tmp_path)
    assert len(doc.text) > 50_000_000
    assert doc.metadata["pmid"] == "12345"
    assert doc.metadata["title"] == "Big log"


def test_load_unsupported_suffix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"PK")
    assert load_error(path) == "unsupported type .xlsx"


def test_load_metadata_values_are_str_or_int(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "a.pdf", ["Study notes\nDOI: 10.1000/abc.1 PMID: 42 Year: 1999"])
    metadata = load(path, tmp_path).metadata
    assert metadata == {
        "title": "Study notes",
        "format": "pdf",
        "doi": "10.1000/abc.1",
        "pmid": "42",
        "year": 1999,
    }
    assert all(isinstance(value, str | int) for value in metadata.values())


# --- identifiers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DOI: 10.1038/nature12373.", {"doi": "10.1038/nature12373"}),
        ("see https://doi.org/10.1016/S0140-6736(20)30183-5)", {"doi": "10.1016/S0140-6736(20)30183-5"}),
        ("PMID: 33259885; PMCID: PMC8084948", {"pmid": "33259885", "pmcid": "PMC8084948"}),
        ("Published: 12 March 2019", {"year": 2019}),
        ("In 2019 we met 10 people.", {}),
    ],
)
def test_parse_identifiers_inline_forms(text: str, expected: dict[str, str | int]) -> None:
    assert parse_identifiers(text) == expected


def test_parse_identifiers_prefers_labeled_doi_over_a_cited_one() -> None:
    text = "As shown in 10.1000/other.2 ...\nDOI: 10.1000/this.1"
    assert parse_identifiers(text)["doi"] == "10.1000/this.1"


BODY = "The reader fits its weights on the questions of a development fold. " * 60  # past the first page


def test_parse_identifiers_ignores_the_works_a_document_cites() -> None:
    text = (f"R FAQ\n\n{BODY}\n\nReferences\n\nIhaka R, Gentleman R (1996). R: A language for data analysis "
            "and graphics. J Comput Graph Stat 5:299-314. doi:10.1080/10618600.1996.10474713. PMID: 9999. PMC123456")
    assert parse_identifiers(text) == {}


def test_parse_identifiers_reads_the_first_page_and_a_closing_metadata_block() -> None:
    assert parse_identifiers(f"A paper\nhttps://doi.org/10.1000/own.1\n{BODY} cites doi:10.1000/other.2") == {
        "doi": "10.1000/own.1"}
    block = f"{BODY}\n\nIdentifiers\n- DOI\n- 10.1000/own.3\n- PMID\n- 42\n- PMCID\n- PMC8084948\n"
    assert parse_identifiers(block) == {"doi": "10.1000/own.3", "pmid": "42", "pmcid": "PMC8084948"}


# --- discover ----------------------------------------------------------------------------------------


def test_discover_walks_folders_sorted_and_reports_skips(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    for name in ["b.md", "a/z.txt", "a/y.pdf", ".hidden.txt", ".git/config.txt", "data.xlsx", "Makefile"]:
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text("x")
    outside = tmp_path / "secret.txt"
    outside.write_text("private")
    (docs / "leak.txt").symlink_to(outside)
    (docs / "alias.md").symlink_to(docs / "b.md")
    (docs / "gone.txt").symlink_to(tmp_path / "deleted.txt")
    (docs / "linked-folder").symlink_to(docs / "a")
    found = list(discover([docs]))  # sorted by relative path, as a byte string sorts
    assert found == [
        Skipped("Makefile", "unsupported type (no extension)"),
        (docs / "a" / "y.pdf", docs),
        (docs / "a" / "z.txt", docs),
        (docs / "alias.md", docs),
        (docs / "b.md", docs),
        Skipped("data.xlsx", "unsupported type .xlsx"),
        Skipped("gone.txt", "broken symlink"),
        Skipped("leak.txt", "symlink points outside the indexed folder"),
        Skipped("linked-folder", "symlinked folder (not followed)"),
    ]


def test_discover_file_gets_its_folder_as_root(tmp_path: Path) -> None:
    path = make_markdown(tmp_path / "kb" / "faq.md", [(None, ["Hi."])])
    assert list(discover([path, tmp_path / "missing.txt"])) == [
        (path, tmp_path / "kb"),
        Skipped((tmp_path / "missing.txt").as_posix(), "not found"),
    ]
