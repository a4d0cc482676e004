"""The in-memory keyword index: FTS5's own BM25, score for score, through every kind of change, in and out of a
scope, and in step with a catalog another process writes. Each test loads the index itself (``load``), as a
serving process does from its second question on, so no question is ranked by the catalog's FTS5 instead."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrieval.bm25 import common
from retrieval.catalog import Catalog, CatalogChunk, DocumentRow
from retrieval.keyword import analyze
from retrieval.keyword_index import KeywordIndex
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from retrieval.types import folder_of

CITEBOT = str(Path(sys.executable).with_name("citebot"))
WORDS = [f"{stem}{n}" for stem in ("gasket", "valve", "pump", "seal", "rotor") for n in range(80)]
FOLDERS = ["hr", "finance", "it/servers", ""]
QUESTIONS = ["gasket3 valve17 pump42", "rotor5 rotor5 seal60", "common gasket1", "common", "nothing9 here",
             "valve79 seal0 pump1 rotor2 gasket3"]


def fts5_search(path: Path, question: str, k: int) -> list[tuple[str, float]]:
    """What SQLite's own bm25() ranks for ``question`` in the catalog at ``path``, with the same pruning of terms
    in more than the common share of the chunks."""
    db = sqlite3.connect(path)
    db.execute("CREATE VIRTUAL TABLE temp.vocabulary USING fts5vocab(main, terms, row)")
    terms = analyze(question)
    counts = dict(db.execute(f"SELECT term, doc FROM vocabulary WHERE term IN ({','.join('?' * len(terms))})",
                             terms))
    too_common = common(db.execute("SELECT count(*) FROM chunks").fetchone()[0])
    kept = [t for t in terms if counts.get(t, 0) <= too_common] or terms
    rows = db.execute("SELECT chunks.id, -bm25(terms) FROM terms JOIN chunks ON chunks.rowid = terms.rowid"
                      " WHERE terms MATCH ?", (" OR ".join(f'"{t}"' for t in kept),)).fetchall()
    db.close()
    return sorted(rows, key=lambda r: (-r[1], r[0]))[:k]


def put(catalog: Catalog, rng: random.Random, sources: list[str], generation: int) -> None:
    """(Re)write these documents with one to three chunks of random words, each chunk holding "common"."""
    docs = [DocumentRow("root", s, f"hash{generation}", rng.randint(1, 3), generation) for s in sources]
    chunks = [CatalogChunk(f"{d.source}:{n}", d.source, " ".join(["common", *rng.choices(WORDS, k=rng.randint(3, 30))]))
              for d in docs for n in range(d.n_chunks)]
    catalog.replace(docs, chunks)


def test_keyword_index_scores_are_fts5s_own_through_additions_rewrites_and_removals(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    writer, reader = Catalog(path), Catalog(path)  # two connections, as two processes would have
    index = KeywordIndex(reader)
    rng = random.Random(13)
    sources = [f"{rng.choice(FOLDERS)}/doc{n}.txt".lstrip("/") for n in range(1200)]
    put(writer, rng, sources, 1)
    index.load()
    for step in range(6):  # more chunk changes in all than a merge waits for (1,000)
        for question in QUESTIONS:
            assert index.search(question, 40) == fts5_search(path, question, 40), (step, question)
        live = [s for s in sources if writer.document("root", s)]
        put(writer, rng, rng.sample(live, 100), step + 2)  # rewritten with other words
        writer.remove("root", rng.sample(live, 60))
        put(writer, rng, [f"new{step}/doc{n}.txt" for n in range(80)], step + 2)
        sources += [f"new{step}/doc{n}.txt" for n in range(80)]
    gone = next(s for s in sources if writer.document("root", s))
    writer.remove("root", [gone])
    assert not [i for i, _ in index.search(" ".join(WORDS), 10_000) if i.startswith(f"{gone}:")]
    writer.mark_pending("root", [sources[-1]])  # being rewritten: the store deletes its chunks next
    assert not [i for i, _ in index.search(" ".join(WORDS), 10_000) if i.startswith(f"{sources[-1]}:")]


def test_keyword_index_reloads_when_the_log_no_longer_reaches_back(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    writer = Catalog(path)
    rng = random.Random(5)
    put(writer, rng, ["a.txt"], 1)
    index = KeywordIndex(Catalog(path))
    index.load()
    assert len(index.search("common", 10)) == writer.chunk_count()
    put(writer, rng, [f"doc{n}.txt" for n in range(10_001)], 2)  # one change of more documents than the log keeps
    writer.remove("root", ["a.txt"])
    for _ in range(2):  # FTS5 answers while the index loads again
        assert index.search("gasket3 rotor5", 30) == fts5_search(path, "gasket3 rotor5", 30)
        assert not [i for i, _ in index.search("common", 20_000) if i.startswith("a.txt:")]
        index.load()


@pytest.mark.parametrize("folders", [["hr"], ["finance", "it/servers"], [""]])
def test_keyword_index_scores_a_scope_as_fts5_scores_a_catalog_of_its_documents_alone(
    tmp_path: Path, folders: list[str]
) -> None:
    whole, alone = Catalog(tmp_path / "whole.sqlite"), Catalog(tmp_path / "alone.sqlite")
    rng = random.Random(7)
    sources = [f"{rng.choice(FOLDERS)}/doc{n}.txt".lstrip("/") for n in range(600)]
    put(whole, rng, sources, 1)
    inside = [s for s in sources if folder_of(s) in folders]
    alone.replace(*_documents_of(whole, inside))
    index = KeywordIndex(whole)
    index.load()
    for question in QUESTIONS:
        found = index.search(question, 50, folders)
        assert found == fts5_search(tmp_path / "alone.sqlite", question, 50)
        assert all(i.split(":")[0] in inside for i, _ in found)


def _documents_of(catalog: Catalog, sources: list[str]) -> tuple[list[DocumentRow], list[CatalogChunk]]:
    """These documents of ``catalog`` as they are, to write into another one."""
    rows = [catalog.document("root", s) for s in sources]
    texts = {i: t for i, (t, _) in catalog.chunks([f"{s}:{n}" for s in sources for n in range(3)]).items()}
    return [r for r in rows if r], [CatalogChunk(i, i.split(":")[0], t) for i, t in texts.items()]


def test_a_second_process_indexing_a_document_is_found_by_a_running_searchers_keyword_side(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "code.txt").write_text("Error E4021 means the frobnicator gasket is misaligned; reseat it.")
    settings = RetrievalSettings(data_dir=tmp_path / "data", _env_file=None)
    running = Pipeline(settings)
    running.index([folder])
    running.store.keywords.load()
    assert running.search("E4021").passages[0].source == "code.txt"
    (folder / "pump.txt").write_text("Error P7781 means the pump impeller is clogged; flush it with water.")
    env = {**os.environ, "CITEBOT_DATA_DIR": str(tmp_path / "data")}
    subprocess.run([CITEBOT, "index", "-q", str(folder)], env=env, check=True, timeout=120)
    start = time.monotonic()
    while not running.store.keyword_search("P7781", 5) and time.monotonic() - start < 1:
        time.sleep(0.05)
    hits = running.store.keyword_search("P7781", 5)
    assert len(hits) == 1 and hits[0][0] in {p.id for p in running.search("P7781", k=24).passages}
    (folder / "pump.txt").unlink()
    subprocess.run([CITEBOT, "index", "-q", str(folder)], env=env, check=True, timeout=120)
    assert not running.store.keyword_search("P7781 impeller clogged", 5)  # the catalog's log says so at once
    assert all(p.source != "pump.txt" for p in running.search("pump impeller clogged", k=24).passages)
