"""The offline answer over the demo seeds: cited, quoted exactly, and honest when the documents are silent."""

import re
from pathlib import Path

from retrieval.citations import parse_markers, verify
from retrieval.pipeline import Pipeline
from retrieval.prompts import NOT_FOUND_PHRASE

SEEDS = Path(__file__).parent.parent / "seeds"
QUESTION = "What are the therapeutic targets in the TME?"


def test_answer_seed_question_names_targets_with_citations(seeded_pipeline: Pipeline) -> None:
    answer = seeded_pipeline.ask(QUESTION)
    assert answer.found
    text = answer.text.lower()
    assert "immune checkpoints" in text
    assert "stromal components" in text
    assert "signaling pathways" in text
    assert parse_markers(answer.text)
    assert {c.passage.source for c in answer.citations} <= {p.name for p in SEEDS.iterdir()}


def test_answer_every_marker_resolves_to_a_retrieved_quote(seeded_pipeline: Pipeline) -> None:
    for question in (QUESTION, "What is the tumor microenvironment made of?", "How do fibroblasts help tumors?"):
        answer = seeded_pipeline.ask(question)
        assert verify(answer) == []
        retrieved = {p.id for p in answer.passages}
        for c in answer.citations:
            assert c.passage.id in retrieved
            assert c.quote in c.passage.text
            assert f"[{c.number}]" in answer.text


def test_answer_quote_is_the_source_documents_own_words(seeded_pipeline: Pipeline) -> None:
    answer = seeded_pipeline.ask(QUESTION)
    for c in answer.citations:
        source_text = (SEEDS / c.passage.source).read_text()
        # Offsets index the document's extracted text, which for plain text is the file itself.
        assert source_text[c.source_start : c.source_end] == c.quote


def test_answer_out_of_corpus_question_declined(seeded_pipeline: Pipeline) -> None:
    answer = seeded_pipeline.ask("What is the capital of France?")
    assert not answer.found
    assert answer.text.startswith(NOT_FOUND_PHRASE)
    assert answer.citations == []
    assert not re.search(r"\[\d+\]", answer.text)


def test_answer_identifiers_of_seed_000_reach_the_citation(seeded_pipeline: Pipeline) -> None:
    answer = seeded_pipeline.ask("targeting the tumor microenvironment in drug development and clinical trials")
    ids = [c.identifiers for c in answer.citations if c.passage.source.startswith("000_")]
    assert ids and ids[0]["doi"] == "10.1016/j.pharmthera.2020.107753"
    assert ids[0]["pmid"] == "33259885"
