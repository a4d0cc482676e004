"""Bad files in an indexed folder: the whole pipeline run over all of them at once.

tests/test_loaders.py checks each loader on its own; here one ``Pipeline.index`` meets corrupt, truncated
and encrypted PDFs, empty files, binary data with a text extension, undecodable text, symlinks leaving the
folder, a named pipe, deeply nested HTML and unsupported types side by side with good documents. Each bad
file is skipped with a one-line reason (or read when it can be), the good ones are indexed and answerable,
and nothing from outside the folder reaches the store. The 50 MB file is measured separately in a child
process: load and chunk its whole text, which is the part of indexing that holds the whole document.
"""

from __future__ import annotations

import codecs
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retrieval.citations import verify
from retrieval.embeddings import get_embedder
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from retrieval.sync import SyncReport, file_hash
from tests.fixtures_docs import make_docx, make_html, make_markdown, make_pdf

ROOT = Path(__file__).parent.parent
SECRET = "The staging database password is hunter2-do-not-index."
GOOD = {
    "notes/fibroblasts.md": "Cancer-associated fibroblasts remodel the extracellular matrix and exclude T cells.",
    "vessels.txt": "Anti-angiogenic therapy normalises tumour blood vessels and improves drug delivery.",
    "checkpoints.pdf": "PD-1 and CTLA-4 checkpoint blockade restores the activity of exhausted T cells.",
    "open-but-encrypted.pdf": "Hypoxia in the tumour core drives VEGF expression and new vessel growth.",
    "macrophages.docx": "Tumour-associated macrophages can be repolarised to attack cancer cells.",
    "latin1.txt": "Les fibroblastes associés au cancer remodèlent la matrice extracellulaire café.",
    "deep.html": "Regulatory T cells accumulate in the stroma and dampen antitumour immunity.",
}
BAD = {
    "corrupt.pdf": "corrupt PDF",
    "truncated.pdf": "PDF",
    "locked.pdf": "encrypted PDF",
    "empty.txt": "empty file",
    "blank.md": "empty file",
    "image.txt": "binary content",
    "nul.md": "binary content",
    "broken-utf16.txt": "not valid UTF-16 text",
    "undecodable.txt": "not valid UTF-8 text",
    "corrupt.docx": "corrupt DOCX",
    "leak.txt": "symlink points outside the indexed folder",
    "leaked-folder": "symlink points outside the indexed folder",
    "loop.txt": "broken symlink",
    "pipe.txt": "not a regular file",
    "sheet.xlsx": "unsupported type .xlsx",
    "Makefile": "unsupported type (no extension)",
}


def build_messy_folder(base: Path) -> Path:
    """A documents folder holding every good file of GOOD and every bad file of BAD, plus a secret outside."""
    docs, outside = base / "docs", base / "outside"
    rng = random.Random(7)
    make_markdown(docs / "notes/fibroblasts.md", [("Stroma", [GOOD["notes/fibroblasts.md"]])], title="Fibroblasts")
    (docs / "vessels.txt").write_text(GOOD["vessels.txt"] + "\n")
    pdf = make_pdf(docs / "checkpoints.pdf", ["Checkpoint inhibitors", GOOD["checkpoints.pdf"]], title="Checkpoints")
    make_pdf(docs / "open-but-encrypted.pdf", [GOOD["open-but-encrypted.pdf"]], encrypt_password="")
    make_docx(docs / "macrophages.docx", [("Macrophages", [GOOD["macrophages.docx"]])])
    (docs / "latin1.txt").write_bytes(GOOD["latin1.txt"].encode("cp1252"))
    inner = f"<p>{GOOD['deep.html']}</p>"
    make_html(docs / "deep.html", [("Deep", ["x"])], title="Deep page")
    (docs / "deep.html").write_text("<html><body>" + "<div>" * 10_000 + inner + "</div>" * 10_000 + "</body></html>")

    (docs / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + rng.randbytes(4000))
    data = pdf.read_bytes()
    (docs / "truncated.pdf").write_bytes(data[: len(data) // 2])
    make_pdf(docs / "locked.pdf", ["Locked away."], encrypt_password="secret")
    (docs / "empty.txt").write_bytes(b"")
    (docs / "blank.md").write_bytes(b"  \n\n\t \r\n")
    (docs / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.randbytes(3000))
    (docs / "nul.md").write_bytes(b"# Title\n\nText with a \0 byte in the middle.\n")
    (docs / "broken-utf16.txt").write_bytes(codecs.BOM_UTF16_LE + b"\x00\xd8a\x00")  # a lone high surrogate
    (docs / "undecodable.txt").write_bytes(bytes(rng.randrange(0x80, 0x100) for _ in range(2000)))
    (docs / "corrupt.docx").write_bytes(b"PK\x03\x04" + rng.randbytes(500))
    (docs / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    (docs / "Makefile").write_text("all:\n\techo hi\n")
    (docs / ".hidden.txt").write_text("Hidden files are not documents.\n")
    os.mkfifo(docs / "pipe.txt")  # reading it would block forever

    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n")
    (docs / "leak.txt").symlink_to(outside / "secret.txt")
    (docs / "leaked-folder").symlink_to(outside)
    (docs / "loop.txt").symlink_to(docs / "loop.txt")
    return docs


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Pipeline, SyncReport]:
    base = tmp_path_factory.mktemp("files")
    docs = build_messy_folder(base)
    pipeline = Pipeline(RetrievalSettings(data_dir=base / "data", _env_file=None))
    return docs, pipeline, pipeline.index([docs])


def test_index_messy_folder_indexes_the_good_files(indexed) -> None:
    _, pipeline, report = indexed
    assert sorted(report.added) == sorted(GOOD)
    assert {c.metadata["source"] for c in pipeline.store.scan()} == set(GOOD)


def test_index_messy_folder_skips_each_bad_file_with_a_one_line_reason(indexed) -> None:
    _, _, report = indexed
    reasons = {s.source: s.reason for s in report.skipped}
    assert set(reasons) == set(BAD)
    for source, reason in reasons.items():
        assert BAD[source] in reason, (source, reason)
        assert "\n" not in reason and len(reason) < 200


def test_index_messy_folder_keeps_outside_files_out_of_the_store(indexed) -> None:
    docs, pipeline, _ = indexed
    for chunk in pipeline.store.scan():
        assert "hunter2" not in chunk.text
        assert str(docs) not in str(chunk.metadata) and not chunk.metadata["source"].startswith("/")
    assert not pipeline.ask("What is the staging database password?").found


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("Which checkpoint blockade restores exhausted T cells?", "checkpoints.pdf"),
        ("What does hypoxia in the tumour core drive?", "open-but-encrypted.pdf"),
        ("Can tumour-associated macrophages be repolarised?", "macrophages.docx"),
        ("What accumulates in the stroma and dampens antitumour immunity?", "deep.html"),
    ],
)
def test_index_messy_folder_good_files_are_answerable(indexed, question: str, source: str) -> None:
    _, pipeline, _ = indexed
    answer = pipeline.ask(question)
    assert answer.found and verify(answer) == []
    assert answer.citations[0].passage.source == source
    assert GOOD[source][:40] in answer.text


def test_index_messy_folder_second_run_changes_nothing(indexed) -> None:
    docs, pipeline, _ = indexed
    again = pipeline.index([docs])
    assert again.chunks_embedded == 0 and not again.changed
    assert sorted(again.unchanged) == sorted(GOOD)
    assert {s.source for s in again.skipped} == set(BAD)
    hashes = {c.metadata["source"]: c.metadata["doc_hash"] for c in pipeline.store.scan()}
    assert hashes == {source: file_hash(docs / source) for source in GOOD}


def test_index_fifty_megabyte_text_file_loads_and_chunks_in_bounded_memory(tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "bench" / "big_file.py"), "--mb", "50", "--stages", "load", "--json",
           "--file", str(tmp_path / "big.txt")]
    (result,) = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=240).stdout)
    print(f"50 MB text file: {result['chunks']} chunks, load + chunk peak RSS {result['peak_rss_mb']} MB")
    assert result["file_bytes"] >= 50_000_000 and result["chunks"] > 50_000
    assert result["text_end"] >= 49_000_000  # the whole text was read, up to its last chunk
    assert result["peak_rss_mb"] < 1536


def test_embedder_many_chunks_are_tokenized_in_windows_and_keep_their_order() -> None:
    # A big file's chunks reach the embedder in one call; it tokenizes them a window at a time (bounded
    # memory), and each row must still be its own text's vector, across the windows' edges too.
    embedder = get_embedder("paraphrase-minilm-l3")
    texts = [f"note {n} on {('fibroblasts', 'vessels', 'macrophages')[n % 3]}" + " more" * (n % 5)
             for n in range(1100)]
    vectors = embedder.embed(texts)
    picks = [0, 1, 1022, 1023, 1024, 1025, 1099]
    np.testing.assert_allclose(vectors[picks], np.vstack([embedder.embed([texts[n]]) for n in picks]), atol=1e-4)
