"""Hybrid search: either side can find what the other misses, and fusion keeps both."""

import time
from pathlib import Path

import pytest

from retrieval.pipeline import Pipeline
from retrieval.search import Searcher, minmax, rrf, score_fusion
from retrieval.settings import RetrievalSettings
from retrieval.types import Scope


def test_rrf_rewards_agreement() -> None:
    scores = rrf([["a", "b", "c"], ["b", "d"]], k=60)
    assert max(scores, key=scores.__getitem__) == "b"
    assert scores["a"] == pytest.approx(1 / 61)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    folder = tmp_path_factory.mktemp("docs")
    notes = {
        "dogs.txt": "Puppies need patient house training and plenty of short walks every day.",
        "code.txt": "Error E4021 means the frobnicator gasket is misaligned; reseat it before restarting.",
        "cars.txt": "Changing the engine oil every ten thousand kilometres keeps a car engine healthy.",
        "cook.txt": "Simmer the tomato sauce slowly and season it with basil just before serving.",
    }
    for name, text in notes.items():
        (folder / name).write_text(text)
    p = Pipeline(RetrievalSettings(data_dir=tmp_path_factory.mktemp("data"), top_k=2))
    p.index([folder])
    return p


def test_search_keyword_side_finds_rare_codes(pipeline: Pipeline) -> None:
    top = pipeline.search("E4021").passages[0]
    assert top.source == "code.txt"
    assert top.keyword_rank == 1


def test_search_dense_side_finds_paraphrases(pipeline: Pipeline) -> None:
    top = pipeline.search("how do I housebreak a young dog").passages[0]
    assert top.source == "dogs.txt"
    assert top.dense_rank == 1


def test_search_passages_carry_scores_and_metadata(pipeline: Pipeline) -> None:
    passages = pipeline.search("engine oil").passages
    assert len(passages) == 2
    assert passages[0].score >= passages[1].score
    assert all(p.dense_score is not None for p in passages)
    assert passages[0].metadata["source"] == "cars.txt"


def test_search_keyword_index_survives_restart(pipeline: Pipeline) -> None:
    again = Pipeline(pipeline.settings)
    assert again.search("E4021").passages[0].source == "code.txt"
    assert (Path(pipeline.settings.data_dir) / "catalog" / f"{pipeline.store.name}.sqlite").exists()


def test_search_keyword_side_sees_another_writers_documents_within_seconds(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "code.txt").write_text("Error E4021 means the frobnicator gasket is misaligned; reseat it.")
    settings = RetrievalSettings(data_dir=tmp_path / "data", _env_file=None)
    writer, reader = Pipeline(settings), Pipeline(settings)
    writer.index([folder])
    assert reader.search("E4021").passages[0].keyword_rank == 1
    (folder / "pump.txt").write_text("Error P7781 means the pump impeller is clogged; flush it with water.")
    writer.index([folder])
    time.sleep(1.1)  # the reader looks at the store's generation every second at most
    top = reader.search("P7781").passages[0]
    assert top.source == "pump.txt"
    assert top.keyword_rank == 1


def test_minmax_scales_best_to_one_and_worst_to_zero() -> None:
    assert minmax({"a": 2.0, "b": 4.0, "c": 3.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}
    assert minmax({"a": 0.7, "b": 0.7}) == {"a": 1.0, "b": 1.0}
    assert minmax({}) == {}


def test_score_fusion_weight_decides_between_the_sides() -> None:
    cosine = {"para": 0.9, "code": 0.2, "both": 0.8}
    bm25 = {"para": 0.0, "code": 12.0, "both": 10.0}
    assert max(score_fusion(cosine, bm25, 1.0).items(), key=lambda kv: kv[1])[0] == "para"
    assert max(score_fusion(cosine, bm25, 0.0).items(), key=lambda kv: kv[1])[0] == "code"
    balanced = score_fusion(cosine, bm25, 0.5)
    assert max(balanced, key=balanced.__getitem__) == "both"
    assert all(0.0 <= s <= 1.0 for s in balanced.values())


@pytest.mark.parametrize("fusion", ["score", "rrf"])
def test_search_both_fusions_find_codes_and_paraphrases(pipeline: Pipeline, fusion: str) -> None:
    searcher = Searcher(pipeline.store, pipeline.settings.model_copy(update={"fusion": fusion}))
    assert searcher.search("E4021").passages[0].source == "code.txt"
    assert searcher.search("how do I housebreak a young dog").passages[0].source == "dogs.txt"


@pytest.mark.parametrize("scoped", [False, True])
def test_keyword_rank_scores_the_dense_sides_ids_down_to_its_depth(pipeline: Pipeline, scoped: bool) -> None:
    """The dense side's candidates get the BM25 score they have among the keyword side's best ``depth``, else
    none; the keyword side's own proposals are its best ``k``, in and out of a scope alike."""
    store = pipeline.store
    folders = store.folders(Scope.of(["."])) if scoped else None
    question = "engine oil tomato sauce basil frobnicator"
    full = store.keyword_search(question, 10, folders)
    assert len(full) == 3
    ids = [c.id for c in store.scan()]
    top, scored = store.keyword_rank(question, 1, folders, scored=ids, depth=2)
    assert top == full[:1]
    assert scored == dict(full[:2])


def test_search_keyword_side_knows_the_title_of_every_chunk(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    paragraphs = [
        "Plug the unit into a grounded socket and wait for the green light before use.",
        "Reseat the rubber gasket whenever the pressure warning appears on the display.",
        "Clean the filter once a month with warm water and let it dry completely.",
    ]
    (folder / "manual.md").write_text("# Frobnicator manual\n\n" + "\n\n".join(paragraphs))
    p = Pipeline(RetrievalSettings(data_dir=tmp_path / "data", chunk_size=100, chunk_overlap=0))
    p.index([folder])
    hits = p.store.keyword_search("frobnicator", 10)
    assert len(hits) == p.store.count() > 1
    top = p.search("frobnicator gasket").passages[0]
    assert "gasket" in top.text and "Frobnicator" not in top.text


def test_search_catalog_deleted_or_of_an_older_format_is_rebuilt_from_the_store(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "code.txt").write_text("Error E4021 means the frobnicator gasket is misaligned; reseat it.")
    settings = RetrievalSettings(data_dir=tmp_path / "data", _env_file=None)
    assert Pipeline(settings).index([folder]).added == ["code.txt"]
    catalog = tmp_path / "data" / "catalog" / "citebot.sqlite"
    Pipeline(settings).store.catalog.set_meta(identity="0:old")
    assert Pipeline(settings).search("E4021").passages[0].keyword_rank == 1
    for path in catalog.parent.glob("citebot.sqlite*"):
        path.unlink()
    again = Pipeline(settings)
    assert again.search("E4021").passages[0].keyword_rank == 1
    assert again.index([folder]).unchanged == ["code.txt"]  # the documents' states came back too


def test_acronym_is_searched_with_the_long_form_the_documents_give(tmp_path: Path) -> None:
    """The embedder does not know "TME": the passage that spells it out leads search back to the one that
    answers in words only, which the question's acronym alone ranks last."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "review.txt").write_text(
        "Cells of the tumor microenvironment (TME) interact with cancer cells. TME biology is a young field."
    )
    (folder / "news.txt").write_text(
        "Researchers found that the tumor microenvironment feeds tumour growth through blood vessels."
    )
    (folder / "other.txt").write_text("The TME conference takes place in Lisbon every spring.")
    p = Pipeline(RetrievalSettings(data_dir=tmp_path / "data", top_k=3))
    p.index([folder])
    found = p.search("What feeds tumour growth in the TME?")
    assert found.question == "What feeds tumour growth in the TME (tumor microenvironment)?"
    assert found.passages[0].source == "news.txt"


def test_a_question_without_acronyms_is_searched_once_as_asked(pipeline: Pipeline) -> None:
    found = pipeline.search("How often should the engine oil be changed?")
    assert found.question == "How often should the engine oil be changed?"
