"""Text cleaning before chunking: sentences a reader can check, not line fragments or markup."""

from __future__ import annotations

from retrieval.cleaning import attach_terms, normalize, reflow, strip_markdown

PDF_PAGE = (
    "1 Introduction\n"
    "The bzip2 program compresses files using the Burrows-Wheeler block sorting text compression algorithm,\n"
    "and Huffman coding. Compression is generally considerably better than that achieved by more conven-\n"
    "tional LZ77/LZ78-based compressors, and approaches the performance of the PPM family of statistical\n"
    "compressors. It is a long-term project: the number of\n"
    "ﬁles stays small.\n"
    "Short closing line.\n"
)


def test_reflow_joins_a_pdf_pages_wrapped_lines_into_sentences() -> None:
    text = reflow(normalize(PDF_PAGE, nfkc=True))
    lines = text.splitlines()
    assert lines[0] == "1 Introduction"  # a heading stays a line of its own
    assert "algorithm, and Huffman coding." in lines[1]
    assert "more conventional LZ77/LZ78-based compressors" in lines[1]  # hyphenation undone
    assert "long-term project: the number of files stays small." in lines[1]  # ligature unfolded, line joined
    assert lines[2] == "Short closing line."


def test_reflow_keeps_a_compounds_hyphen_at_a_line_end() -> None:
    text = "We measured the effect over a long period in a self-\nassessment study of the patients."
    assert "self-assessment study" in reflow(text)


def test_reflow_leaves_lists_and_one_line_paragraphs_alone() -> None:
    text = "Steps:\n- install the package\n- run the command\n\nA paragraph that ends here.\nAnother starts."
    assert reflow(text) == text


def test_attach_terms_keeps_an_option_with_its_explanation() -> None:
    text = "Options\n\n-a, --all\n    do not ignore entries starting with .\nPIP_CERT\n    Path to a PEM bundle."
    out = attach_terms(reflow(text))
    assert "-a, --all: do not ignore entries starting with ." in out
    assert "PIP_CERT: Path to a PEM bundle." in out


def test_strip_markdown_leaves_the_words_of_badges_links_and_code() -> None:
    md = (
        "[![Build](https://ci.example/badge.svg)](https://ci.example) ![cov](cov.png)\n"
        "# The `fetch` tool ¶\n"
        "Run **`fetch --all`** to get [every file](https://example.org/docs) at once.\n"
        "```\nkeep `this` as code\n```\n"
    )
    out = strip_markdown(md).splitlines()
    assert out[0].strip() == ""
    assert out[1] == "# The fetch tool"
    assert out[2] == "Run fetch --all to get every file at once."
    assert out[4] == "keep `this` as code"


def test_normalize_drops_soft_hyphens_and_unifies_line_ends() -> None:
    assert normalize("micro\u00adenvironment\r\nnext") == "microenvironment\nnext"


def test_reflow_keeps_numbered_and_capitalised_headings_on_their_own_line() -> None:
    page = "\n".join(
        ["3 for an internal consistency error (eg, bug) which caused the compressor to stop at once and panic."] * 5
        + ["2.4. OPTIONS", "-k --keep", "    keep input files.", "2.3. DESCRIPTION", "bzip2 compresses files."]
    )
    lines = attach_terms(reflow(page)).splitlines()
    assert "2.4. OPTIONS" in lines and "2.3. DESCRIPTION" in lines
    assert "-k --keep: keep input files." in lines


def test_strip_markdown_writes_setext_headings_as_headings() -> None:
    out = strip_markdown("PyYAML\n======\n\nA YAML framework.\n\nInstall\n-------\nRun it.").splitlines()
    assert out[0] == "# PyYAML" and "======" not in out
    assert "## Install" in out and "-------" not in out
