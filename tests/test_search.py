"""Hybrid search: either side can find what the other misses, and fusion keeps both."""

from pathlib import Path

import pytest

from retrieval.pipeline import Pipeline
from retrieval.search import rrf
from retrieval.settings import RetrievalSettings


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
    assert (Path(pipeline.settings.data_dir) / "keyword" / pipeline.store.name / "ids.json").exists()
