"""`citebot eval`: metrics that match a hand computation, and a table over a BEIR-layout folder."""

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from retrieval.answer_eval import Gold, holds
from retrieval.evaluate import load_beir, score


def test_evaluate_score_matches_hand_computation() -> None:
    qrels = {"q1": {"d1": 1, "d2": 1}, "q2": {"d9": 1}}
    # q1 finds both relevant documents at ranks 2 and 3; q2 finds nothing relevant.
    run = {"q1": {"d3": 3.0, "d1": 2.0, "d2": 1.0}, "q2": {"d3": 1.0}}
    ideal = 1 + 1 / math.log2(3)
    ndcg_q1 = (1 / math.log2(3) + 1 / math.log2(4)) / ideal
    metrics = score(qrels, run)
    assert metrics["nDCG@10"] == pytest.approx(ndcg_q1 / 2)
    assert metrics["Recall@10"] == pytest.approx(0.5)
    assert metrics["MRR@10"] == pytest.approx(0.25)


def test_evaluate_mrr_is_cut_at_ten() -> None:
    run = {"q": {f"d{i}": float(100 - i) for i in range(20)}}  # the relevant one is 12th
    assert score({"q": {"d11": 1}}, run)["MRR@10"] == 0.0


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    folder = tmp_path / "mini"
    folder.mkdir()
    docs = {
        "d1": ("Dogs", "Puppies need patient house training and short walks."),
        "d2": ("Cars", "Change the engine oil every ten thousand kilometres."),
        "d3": ("Cooking", "Simmer tomato sauce slowly and add basil at the end."),
    }
    (folder / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "title": t, "text": x}) for k, (t, x) in docs.items())
    )
    queries = {"q1": "how to train a puppy", "q2": "How often should I change the engine oil?", "q3": "not judged"}
    (folder / "queries.jsonl").write_text("\n".join(json.dumps({"id": k, "text": v}) for k, v in queries.items()))
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    return folder


def test_evaluate_test_split_is_the_judged_queries(beir: Path) -> None:
    data = load_beir(beir)
    assert set(data.queries) == {"q1", "q2"}
    assert len(data.corpus) == 3


def test_cli_eval_prints_table_and_reuses_index(beir: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["eval", str(beir)])
    assert first.exit_code == 0, first.output
    for column in ("nDCG@10", "Recall@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms"):
        assert column in first.output
    second = runner.invoke(cli, ["eval", "--json", "--mode", "hybrid", str(beir)])
    assert "3 unchanged" in second.stderr
    result = json.loads(second.stdout)["results"][0]
    assert result["mode"] == "hybrid" and result["nDCG@10"] == 1.0


def test_cli_eval_rejects_a_folder_that_is_not_beir(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["eval", str(tmp_path)])
    assert result.exit_code == 1
    assert "not a BEIR-layout folder" in result.output


def test_answer_eval_holds_needs_most_of_the_gold_content_words() -> None:
    gold = Gold("q", "d", ("Mother-to-child transmission is the main cause of HIV-1 infection in children.",))
    assert holds("Most children are infected by mother-to-child transmission of HIV-1, the main cause.", gold)
    assert not holds("HIV-1 infects children.", gold)


def test_cli_eval_scores_answers_and_declines_without_the_document(beir: Path) -> None:
    answers = [
        {"id": "q1", "doc_id": "d1", "answers": [{"text": "Puppies need patient house training", "answer_start": 0}]},
        {"id": "q2", "doc_id": "d2", "answers": [{"text": "every ten thousand kilometres", "answer_start": 0}]},
    ]
    (beir / "answers.jsonl").write_text("\n".join(json.dumps(a) for a in answers))
    result = CliRunner().invoke(cli, ["eval", "--json", "--mode", "hybrid", str(beir)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)["answers"]["all"]
    assert figures["questions"] == 2 and figures["unanswerable_questions"] == 2
    assert figures["holds_gold"] == 1.0 and figures["first_sentence_holds_gold"] == 1.0
    assert figures["declined_unanswerable"] == 1.0  # asked of the index without its document, nothing else fits
    table = CliRunner().invoke(cli, ["eval", "--mode", "hybrid", str(beir)]).output
    assert all(f"│ {fold}" in table for fold in ("all", "tune", "held"))  # a row of answer figures per fold
