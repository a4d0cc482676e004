"""Incremental indexing as a user sees it: add, modify, delete, skip, and recover from a broken run."""

from pathlib import Path

import pytest

from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from retrieval.store import root_key
from tests.fixtures_docs import make_docx

SEEDS = Path(__file__).parent.parent / "seeds"


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "fibroblasts.md").write_text(
        "# Fibroblasts\n\nCancer-associated fibroblasts remodel the extracellular matrix and suppress T cells.\n"
    )
    (folder / "vessels.txt").write_text(
        "Anti-angiogenic therapy normalises tumour blood vessels and improves drug delivery to the tumour.\n"
    )
    return folder


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline(RetrievalSettings(data_dir=tmp_path / "data"))


def test_sync_second_run_embeds_nothing(pipeline: Pipeline, docs: Path) -> None:
    first = pipeline.index([docs])
    again = pipeline.index([docs])
    assert sorted(first.added) == ["fibroblasts.md", "vessels.txt"]
    assert again.chunks_embedded == 0
    assert sorted(again.unchanged) == ["fibroblasts.md", "vessels.txt"]


def test_sync_modified_document_is_replaced(pipeline: Pipeline, docs: Path) -> None:
    pipeline.index([docs])
    count = pipeline.store.count()
    (docs / "vessels.txt").write_text("Hypoxia drives VEGF expression, which recruits new blood vessels.\n")
    report = pipeline.index([docs])
    assert report.updated == ["vessels.txt"]
    assert pipeline.store.count() == count
    texts = [c.text for c in pipeline.store.scan()]
    assert any("VEGF" in t for t in texts)
    assert not any("Anti-angiogenic" in t for t in texts)
    assert pipeline.search("VEGF hypoxia").passages[0].source == "vessels.txt"


def test_sync_deleted_document_chunks_removed(pipeline: Pipeline, docs: Path) -> None:
    pipeline.index([docs])
    (docs / "vessels.txt").unlink()
    report = pipeline.index([docs])
    assert report.removed == ["vessels.txt"]
    assert {c.metadata["source"] for c in pipeline.store.scan()} == {"fibroblasts.md"}
    assert all(p.source != "vessels.txt" for p in pipeline.search("blood vessels drug delivery").passages)


def test_sync_single_file_leaves_siblings_alone(pipeline: Pipeline, docs: Path) -> None:
    pipeline.index([docs])
    report = pipeline.index([docs / "vessels.txt"])
    assert report.removed == []
    assert {c.metadata["source"] for c in pipeline.store.scan()} == {"fibroblasts.md", "vessels.txt"}


def test_sync_bad_files_skipped_with_reason_rest_indexed(pipeline: Pipeline, docs: Path) -> None:
    (docs / "empty.txt").write_bytes(b"")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 this is not really a pdf")
    (docs / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    report = pipeline.index([docs])
    reasons = {s.source: s.reason for s in report.skipped}
    assert set(reasons) == {"empty.txt", "broken.pdf", "sheet.xlsx"}
    assert all(reason and "\n" not in reason for reason in reasons.values())
    assert sorted(report.added) == ["fibroblasts.md", "vessels.txt"]


def test_sync_interrupted_rewrite_is_completed_without_duplicates(pipeline: Pipeline, tmp_path: Path) -> None:
    folder = tmp_path / "long"
    folder.mkdir()
    (folder / "review.txt").write_text((SEEDS / "001_d4a9bad2bca880d2.txt").read_text() * 3)
    pipeline.index([folder])
    full = sorted(c.id for c in pipeline.store.scan())
    assert len(full) > 2
    # A run killed half-way through rewriting the document: it was marked pending, half its chunks are gone.
    pipeline.store.catalog.mark_pending(root_key(str(folder.resolve())), ["review.txt"])
    pipeline.store._collection.delete(ids=full[: len(full) // 2])
    report = pipeline.index([folder])
    assert report.updated == ["review.txt"]
    assert sorted(c.id for c in pipeline.store.scan()) == full


def test_sync_paths_are_relative_never_absolute(pipeline: Pipeline, docs: Path) -> None:
    pipeline.index([docs])
    for chunk in pipeline.store.scan():
        assert not chunk.metadata["source"].startswith("/")
        assert str(docs) not in str(chunk.metadata)


def test_sync_never_indexes_its_own_data_dir(tmp_path: Path) -> None:
    home = tmp_path / "home"  # not tmp_path itself, which holds the tests' own data dir
    home.mkdir()
    (home / "notes.txt").write_text("Macrophages in tumours can be reprogrammed to attack cancer cells.\n")
    pipeline = Pipeline(RetrievalSettings(data_dir=home / "citebot-data"))
    pipeline.index([home])
    report = pipeline.index([home])
    assert report.unchanged == ["notes.txt"]
    assert report.skipped == []


def test_sync_file_over_the_size_limit_is_skipped_with_reason(tmp_path: Path, docs: Path) -> None:
    (docs / "huge.txt").write_text("Tumour stroma. " * 200)  # 3,000 bytes
    pipeline = Pipeline(RetrievalSettings(data_dir=tmp_path / "data", max_file_mb=0.002))  # about 2 KB
    report = pipeline.index([docs])
    assert [s.source for s in report.skipped] == ["huge.txt"]
    assert "CITEBOT_MAX_FILE_MB" in report.skipped[0].reason
    assert sorted(report.added) == ["fibroblasts.md", "vessels.txt"]


def _expanding(docs: Path, parts: int) -> Path:
    """A small DOCX that expands to about 3,500 characters of text per part."""
    paragraph = "The stromal compartment of the tumour shapes how the immune cells respond to therapy. " * 4
    return make_docx(docs / "expanding.docx", [(f"Part {n}", [paragraph] * 10) for n in range(parts)])


def test_sync_file_expanding_past_the_text_limit_is_skipped_with_reason(tmp_path: Path, docs: Path) -> None:
    assert _expanding(docs, 30).stat().st_size < 50_000  # 105,000 characters of text
    pipeline = Pipeline(RetrievalSettings(data_dir=tmp_path / "data", max_extracted_chars=50_000))
    report = pipeline.index([docs])
    assert [s.source for s in report.skipped] == ["expanding.docx"]
    assert "CITEBOT_MAX_EXTRACTED_CHARS" in report.skipped[0].reason
    assert sorted(report.added) == ["fibroblasts.md", "vessels.txt"]


def test_sync_file_reading_past_the_time_limit_is_skipped_and_the_next_one_read(tmp_path: Path, docs: Path) -> None:
    _expanding(docs, 170)  # parses for about 7 s on a busy machine; the short one in 20 ms
    make_docx(docs / "short.docx", [("Vessels", ["Pericytes wrap the capillaries of the tumour."])])
    pipeline = Pipeline(RetrievalSettings(data_dir=tmp_path / "data", max_extract_seconds=1.0))
    report = pipeline.index([docs])
    assert [s.source for s in report.skipped] == ["expanding.docx"]
    assert "CITEBOT_MAX_EXTRACT_SECONDS" in report.skipped[0].reason
    assert sorted(report.added) == ["fibroblasts.md", "short.docx", "vessels.txt"]


def test_sync_store_of_an_older_citebot_is_taken_over_without_reembedding(pipeline: Pipeline, docs: Path) -> None:
    pipeline.index([docs])
    # What an older citebot left: the chunks only, no document records and no catalog.
    pipeline.store.client.delete_collection(f"{pipeline.store.name}-documents")
    for path in pipeline.store.catalog.path.parent.glob("*"):
        path.unlink()
    again = Pipeline(pipeline.settings)
    assert again.search("VEGF anti-angiogenic blood vessels").passages[0].source == "vessels.txt"
    report = again.index([docs])
    assert sorted(report.unchanged) == ["fibroblasts.md", "vessels.txt"] and report.chunks_embedded == 0
    (docs / "vessels.txt").unlink()
    assert again.index([docs]).removed == ["vessels.txt"]
    assert Pipeline(pipeline.settings).store.catalog.chunk_count() == again.store.count()
