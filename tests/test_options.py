"""Questions that name a command-line option or an environment variable: "What does bzip2 -k do?" is answered
from the line about ``-k``, not lost because "-k" is no word."""

import sqlite3
from pathlib import Path

import pytest

from retrieval.catalog import FORMAT
from retrieval.citations import verify
from retrieval.loaders import load
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings

BZIP2 = """bzip2 manual

OPTIONS

-c --stdout
Compress or decompress to standard output.

-d --decompress
Force decompression, whatever name the program was called by.

-k --keep
Keep (don't delete) input files during compression or decompression.

-s --small
Reduce memory usage, for compression, decompression and testing.

-v --verbose
Verbose mode: show the compression ratio for each file processed.
"""
SIZES = """Block sizes

The block size is set in steps of 100 k, from 100 k to 900 k; the letter k in these sizes means kilobytes.
A larger block gives a better compression ratio, and 900 k is the default block size for every file.
"""
PIP = """# Installing behind a proxy

If your network uses its own certificate authority, set the PIP_CERT environment variable to the path of a
bundle of certificates. pip then verifies every download against it.

# Caching

pip keeps the wheels it downloads in its cache directory, so a second install of the same version is quick.
"""


@pytest.fixture
def manuals(tmp_path: Path) -> Path:
    folder = tmp_path / "manuals"
    folder.mkdir()
    (folder / "bzip2.txt").write_text(BZIP2, encoding="utf-8")
    (folder / "sizes.txt").write_text(SIZES, encoding="utf-8")
    (folder / "pip.md").write_text(PIP, encoding="utf-8")
    return folder


def _quotes_are_extracted_text(pipeline: Pipeline, folder: Path, question: str) -> None:
    answer = pipeline.ask(question)
    assert answer.found and verify(answer) == []
    for c in answer.citations:
        assert load(folder / c.passage.source, folder).text[c.source_start : c.source_end] == c.quote


def test_options_question_naming_a_short_option_is_answered_from_its_line(manuals: Path, settings) -> None:
    pipeline = Pipeline(settings)
    pipeline.index([manuals])
    answer = pipeline.ask("What does bzip2 -k do?")
    assert answer.found
    lead = answer.citations[0]
    assert lead.passage.source == "bzip2.txt"
    assert "Keep (don't delete) input files" in lead.quote
    assert f"[{lead.number}]" in answer.text.split("\n")[0]
    _quotes_are_extracted_text(pipeline, manuals, "What does bzip2 -k do?")


def test_options_short_option_is_not_the_letter(manuals: Path, settings) -> None:
    # "-k" is a term of its own: the page that says "k" ten times (kilobytes) does not match it at all.
    pipeline = Pipeline(settings)
    pipeline.index([manuals])
    found = pipeline.searcher.search("-k", mode="keyword").passages
    assert [p.source for p in found] == ["bzip2.txt"]


def test_options_long_option_also_matches_its_word(manuals: Path, settings) -> None:
    pipeline = Pipeline(settings)
    pipeline.index([manuals])
    assert pipeline.searcher.search("--keep", mode="keyword").passages[0].source == "bzip2.txt"
    # "keep" in words still finds the line that names --keep (and the prose that says "keeps" after it).
    assert {p.source for p in pipeline.searcher.search("keep input files", mode="keyword").passages} >= {"bzip2.txt"}


def test_options_question_naming_an_environment_variable_finds_its_passage(manuals: Path, settings) -> None:
    pipeline = Pipeline(settings)
    pipeline.index([manuals])
    top = pipeline.search("What is PIP_CERT for?").passages[0]
    assert top.source == "pip.md" and "PIP_CERT" in top.text and top.keyword_rank == 1
    answer = pipeline.ask("What is PIP_CERT for?")
    assert answer.found and "PIP_CERT" in answer.citations[0].quote
    _quotes_are_extracted_text(pipeline, manuals, "What is PIP_CERT for?")


def test_options_an_older_catalog_is_rebuilt_so_options_are_found(manuals: Path, tmp_path: Path) -> None:
    settings = RetrievalSettings(data_dir=tmp_path / "data", _env_file=None)
    Pipeline(settings).index([manuals])
    # Make the catalog what an older citebot left: its FTS5 table split "-k" at the dash, its FORMAT was 3.
    (path,) = (tmp_path / "data" / "catalog").glob("*.sqlite")
    with sqlite3.connect(path) as db:
        db.executescript(
            "DROP TABLE terms; CREATE VIRTUAL TABLE terms USING fts5(body, tokenize="
            "\"unicode61 remove_diacritics 0 tokenchars '_'\");"
            f"UPDATE meta SET value = replace(value, '{FORMAT}:', '3:') WHERE key = 'identity';")
    upgraded = Pipeline(RetrievalSettings(data_dir=tmp_path / "data", _env_file=None))
    assert [p.source for p in upgraded.searcher.search("-k", mode="keyword").passages] == ["bzip2.txt"]
    assert "Keep (don't delete)" in upgraded.ask("What does bzip2 -k do?").citations[0].quote
