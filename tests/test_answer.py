"""The offline answer over the demo seeds: the answering sentence first, one number per document, quotes
exactly as extracted, and honest declines for questions the documents do not answer."""

import re
from pathlib import Path

import pytest

from retrieval.answer_eval import first_sentence, plain
from retrieval.citations import parse_markers, verify
from retrieval.loaders import load
from retrieval.pipeline import Pipeline
from retrieval.prompts import NOT_FOUND_PHRASE
from tests.fixtures_docs import make_docx, make_html, make_markdown, make_pdf

SEEDS = Path(__file__).parent.parent / "seeds"
QUESTION = "What are the therapeutic targets in the TME?"


def test_answer_seed_question_leads_with_the_targets_themselves(seeded_pipeline: Pipeline) -> None:
    answer = seeded_pipeline.ask(QUESTION)
    assert answer.found
    lead = first_sentence(answer.text).lower()
    assert all(target in lead for target in ("signaling pathways", "immune checkpoints", "stromal components"))
    assert len(plain(answer.text).split()) <= 100
    assert {c.passage.source for c in answer.citations} <= {p.name for p in SEEDS.iterdir()}


def test_answer_numbers_each_document_once(seeded_pipeline: Pipeline) -> None:
    answer = seeded_pipeline.ask(QUESTION)
    numbers = {c.document: c.number for c in answer.citations}
    assert sorted(numbers.values()) == list(range(1, len(numbers) + 1)) == parse_markers(answer.text)
    assert len(numbers) <= 2  # the two seed documents: [1] and [2], never five numbers for two papers
    assert all(len({c.number for c in answer.citations if c.document == d}) == 1 for d in numbers)


def test_answer_quotes_a_second_document_that_says_it_too(seeded_pipeline: Pipeline) -> None:
    # The review's web summary holds the best sentences; the paper's abstract agrees, and a reader should see
    # both sources rather than a third sentence of the first.
    answer = seeded_pipeline.ask("What are the therapeutic targets in the tumor microenvironment?")
    assert sorted({c.number for c in answer.citations}) == [1, 2]
    assert {c.passage.source for c in answer.citations} == {p.name for p in SEEDS.iterdir()}


def test_answer_every_marker_resolves_to_a_retrieved_quote(seeded_pipeline: Pipeline) -> None:
    for question in (QUESTION, "What is the tumor microenvironment made of?", "How do fibroblasts help tumors?"):
        answer = seeded_pipeline.ask(question)
        assert verify(answer) == []
        retrieved = {p.id for p in answer.passages}
        for c in answer.citations:
            assert c.passage.id in retrieved
            assert c.quote in c.passage.text
            assert f"[{c.number}]" in answer.text


def test_answer_quote_is_the_documents_extracted_text(seeded_pipeline: Pipeline) -> None:
    answer = seeded_pipeline.ask(QUESTION)
    for c in answer.citations:
        extracted = load(SEEDS / c.passage.source, SEEDS).text
        assert extracted[c.source_start : c.source_end] == c.quote


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",
        "What is the capital of Australia?",
        "What are the therapeutic targets in Alzheimer's disease?",
        "How do I reset my VPN password?",
    ],
)
def test_answer_question_the_seeds_do_not_answer_is_declined(seeded_pipeline: Pipeline, question: str) -> None:
    answer = seeded_pipeline.ask(question)
    assert not answer.found
    assert answer.text.startswith(NOT_FOUND_PHRASE)
    assert answer.citations == []
    assert not re.search(r"\[\d+\]", answer.text)


def test_answer_identifiers_of_seed_000_reach_the_citation(seeded_pipeline: Pipeline) -> None:
    answer = seeded_pipeline.ask("targeting the tumor microenvironment in drug development and clinical trials")
    ids = [c.identifiers for c in answer.citations if c.passage.source.startswith("000_")]
    assert ids and ids[0]["doi"] == "10.1016/j.pharmthera.2020.107753"
    assert ids[0]["pmid"] == "33259885"


MANUAL = (
    "The archiver compresses files with the Burrows-Wheeler block sorting algorithm and Huffman coding, "
    "which is generally considerably better than the compression achieved by more conventional LZ77 "
    "compressors. The default block size is 900k, which needs about 7600k of memory to compress a file."
)
OPTIONS = ["Use the -k option to keep the input files after compressing them.",
           "Use the -s option to reduce memory usage at the expense of your compression ratio."]


def test_answer_quotes_every_format_exactly_as_extracted(tmp_path: Path, settings) -> None:
    folder = tmp_path / "manuals"
    make_pdf(folder / "manual.pdf", [MANUAL, "Options\n\n" + " ".join(OPTIONS)], title="Archiver manual")
    make_docx(folder / "guide.docx", [("Options", OPTIONS)], title="Archiver guide")
    make_html(folder / "faq.html", [("Memory", [MANUAL])], title="Archiver FAQ")
    make_markdown(folder / "README.md", [("Install", ["Run `make install` to install the **archiver** tool."])],
                  title="[![CI](https://ci.example/b.svg)](https://ci.example) archiver")
    pipeline = Pipeline(settings)
    pipeline.index([folder])
    for question in ("What is the default block size?", "How do I keep the input files?",
                     "Which algorithm does the archiver use?", "How do I install the archiver?"):
        answer = pipeline.ask(question)
        assert answer.found, question
        assert verify(answer) == []
        retrieved = {p.id for p in answer.passages}
        for c in answer.citations:
            assert c.passage.id in retrieved
            extracted = load(folder / c.passage.source, folder).text
            assert extracted[c.source_start : c.source_end] == c.quote
            assert "`" not in c.quote and "**" not in c.quote and "![" not in c.quote
    assert pipeline.ask("What is the default block size?").text.count("900k") >= 1
