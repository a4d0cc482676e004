"""Chunks quote their source exactly: offsets, page/section boundaries, sizes and recorded settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document

from retrieval.chunking import split
from retrieval.loaders import LoadedDocument, discover, load, parse_markdown
from tests.fixtures_docs import make_docx, make_pdf

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def assert_chunks_quote_source(doc: LoadedDocument, chunks: list[Document], chunk_size: int) -> None:
    """Each chunk is exactly ``doc.text[start:end]``, within the size limit, not blank."""
    assert chunks
    for chunk in chunks:
        meta = chunk.metadata
        assert doc.text[meta["start"] : meta["end"]] == chunk.page_content
        assert 0 < len(chunk.page_content) <= chunk_size
        assert chunk.page_content.strip()


def segment_spans(doc: LoadedDocument) -> list[tuple[int, int]]:
    return [(s.metadata["offset"], s.metadata["offset"] + len(s.page_content)) for s in doc.segments]


@pytest.mark.parametrize(("chunk_size", "chunk_overlap"), [(200, 40), (1000, 150)])
def test_split_seed_chunks_quote_the_source(chunk_size: int, chunk_overlap: int) -> None:
    for item in discover([SEEDS]):
        assert isinstance(item, tuple)
        doc = load(*item)
        chunks = split(doc, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
        assert_chunks_quote_source(doc, chunks, chunk_size)


def test_split_seed_metadata_carries_document_and_settings() -> None:
    doc = load(SEEDS / "000_0a4a0b21476d07a5.txt", SEEDS)
    chunks = split(doc, chunk_size=300, chunk_overlap=50)
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        meta = chunk.metadata
        assert meta["n_chunks"] == len(chunks)
        assert meta["source"] == "000_0a4a0b21476d07a5.txt"
        assert meta["doi"] == "10.1016/j.pharmthera.2020.107753"
        assert meta["doc_hash"] == doc.content_hash
        assert (meta["chunker"], meta["chunk_size"], meta["chunk_overlap"]) == ("recursive", 300, 50)
        assert "page" not in meta and "section" not in meta
        assert all(isinstance(value, str | int) for value in meta.values())


def test_split_pdf_chunks_stay_on_their_page(tmp_path: Path) -> None:
    pages = [
        " ".join(f"Page {n} sentence {i} about stromal targets." for i in range(40)) for n in range(1, 4)
    ]
    path = make_pdf(tmp_path / "long.pdf", pages)
    doc = load(path, tmp_path)
    chunks = split(doc, chunk_size=300, chunk_overlap=60)
    assert_chunks_quote_source(doc, chunks, 300)
    spans = segment_spans(doc)
    for chunk in chunks:
        page = chunk.metadata["page"]
        start, end = spans[page - 1]
        assert start <= chunk.metadata["start"] < chunk.metadata["end"] <= end
        assert f"Page {page} " in chunk.page_content
    assert {c.metadata["page"] for c in chunks} == {1, 2, 3}


def test_split_neighbouring_chunks_overlap(tmp_path: Path) -> None:
    path = tmp_path / "one-line.txt"
    path.write_text(" ".join(f"word{i}" for i in range(300)))
    doc = load(path, tmp_path)
    chunks = split(doc, chunk_size=200, chunk_overlap=50)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.metadata["start"] < before.metadata["end"]


def test_split_docx_sections_carried_over(tmp_path: Path) -> None:
    long = "Refunds are issued to the original card within five working days. " * 10
    path = make_docx(tmp_path / "kb.docx", [("Passwords", ["Reset from Settings."]), ("Refunds", [long])])
    doc = load(path, tmp_path)
    chunks = split(doc, chunk_size=150, chunk_overlap=20)
    assert_chunks_quote_source(doc, chunks, 150)
    assert chunks[0].metadata["section"] == "Passwords"
    assert chunks[0].page_content == "Passwords\n\nReset from Settings."
    assert {c.metadata["section"] for c in chunks[1:]} == {"Refunds"}


_MARKDOWN = st.lists(
    st.one_of(
        st.sampled_from(["# Title", "## Part", "### Deep", "", "   ", "\t"]),
        st.text(alphabet="ab. \n", min_size=1, max_size=200),
    ),
    min_size=1,
    max_size=30,
).map("\n".join)


@settings(max_examples=150, deadline=None)
@given(source=_MARKDOWN, chunk_size=st.integers(5, 80), overlap_share=st.floats(0, 0.9))
def test_split_offsets_exact_for_any_text(source: str, chunk_size: int, overlap_share: float) -> None:
    if not source.strip():
        return
    parsed = parse_markdown(source.encode())
    doc = LoadedDocument("random.md", parsed.text, parsed.segments, {"title": "random"}, "hash")
    chunks = split(doc, chunk_size=chunk_size, chunk_overlap=int(chunk_size * overlap_share))
    assert_chunks_quote_source(doc, chunks, chunk_size)
    spans = segment_spans(doc)
    for chunk in chunks:
        start, end = chunk.metadata["start"], chunk.metadata["end"]
        assert any(a <= start and end <= b for a, b in spans)
