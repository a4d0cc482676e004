"""Citation grounding: only sentences whose [n] names a given passage that supports them survive."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval.citations import parse_markers
from retrieval.embeddings import Embedder, get_embedder
from retrieval.grounding import (
    SupportChecker,
    declines,
    ground,
    number_passages,
    strip_markers,
)
from retrieval.sentences import spans as sentence_spans
from retrieval.types import Passage

FIBROBLASTS = "Cancer-associated fibroblasts are the main stromal target of new TME therapies."
MATRIX = "The dense extracellular matrix keeps many drugs from reaching the tumour cells."
PASSAGES = [
    Passage(
        "stroma",
        f"Stroma is more than scaffolding. {FIBROBLASTS} {MATRIX}",
        {"title": "Stroma review", "section": "Targets"},
    ),
    Passage(
        "trials",
        "PD-1 and CTLA-4 blockade is in phase III trials for several solid tumours. "
        "Twelve of 31 trials report results in 2027.",
        {"source": "trials.html", "page": 4},
    ),
]


@pytest.fixture(scope="module")
def checker() -> SupportChecker:
    embedder: Embedder = get_embedder("minilm-l6-int8")
    return SupportChecker(embedder)


def spans_text(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def test_number_passages_shows_numbers_titles_and_locations() -> None:
    shown = number_passages(PASSAGES)
    assert shown.startswith("[1] Stroma review (section Targets)\nStroma is more")
    assert "\n\n[2] trials.html (page 4)\nPD-1 and CTLA-4" in shown


def test_sentence_spans_keep_markers_with_their_sentence() -> None:
    text = "Fibroblasts are targets. [1] The matrix blocks drugs [2]. Trials run!"
    assert spans_text(text) == ["Fibroblasts are targets. [1]", "The matrix blocks drugs [2].", "Trials run!"]


def test_sentence_spans_ignore_abbreviations_and_decimals() -> None:
    text = "Checkpoints, e.g. PD-1, are targets in 2.5% of trials [2]. Fibroblasts too [1]."
    assert spans_text(text) == ["Checkpoints, e.g. PD-1, are targets in 2.5% of trials [2].", "Fibroblasts too [1]."]


def test_sentence_spans_split_list_lines() -> None:
    assert spans_text("Targets:\n- fibroblasts [1]\n- PD-1 [2]\n") == ["Targets:", "- fibroblasts [1]", "- PD-1 [2]"]


def test_strip_markers_closes_the_gaps() -> None:
    assert strip_markers("Fibroblasts are targets [1][2], and so is PD-1 [3].") == (
        "Fibroblasts are targets, and so is PD-1."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Not found in the documents.", True),
        ("not found in the documents", True),
        ("Not found in documents.", True),
        ("I'm sorry. Not found in the documents.", True),
        ("Fibroblasts are targets [1]. Whether they cure it is not found in the documents.", False),
        ("Fibroblasts are the main targets [1].", False),
    ],
)
def test_declines_recognises_the_not_found_phrase(text: str, expected: bool) -> None:
    assert declines(text) is expected


def test_ground_quotes_the_best_supporting_sentence(checker: SupportChecker) -> None:
    grounded = ground("Fibroblasts are the main stromal targets of new therapies [1].", PASSAGES, checker)
    (citation,) = grounded.citations
    assert citation.quote == FIBROBLASTS
    assert PASSAGES[0].text[citation.start : citation.end] == FIBROBLASTS
    assert grounded.removed == 0


def test_ground_checks_each_clause_against_its_own_marker(checker: SupportChecker) -> None:
    both = "Fibroblasts are the main stromal target [1], and PD-1 blockade is in phase III trials [2]."
    assert ground(both, PASSAGES, checker).text == both
    swapped = "Fibroblasts are the main stromal target [2], and PD-1 blockade is in phase III trials [1]."
    grounded = ground(swapped, PASSAGES, checker)
    assert grounded.citations == [] and grounded.removed == 1


def test_ground_rejects_numbers_the_passage_does_not_state(checker: SupportChecker) -> None:
    grounded = ground(
        "Twelve of 31 trials report results in 2027 [2]. Twelve of 40 trials report results in 2027 [2].",
        PASSAGES,
        checker,
    )
    assert grounded.text == "Twelve of 31 trials report results in 2027 [1]."
    assert grounded.removed == 1


def test_ground_keeps_list_lines_and_drops_uncited_lead_ins(checker: SupportChecker) -> None:
    text = (
        "Here is what I found:\n- Cancer-associated fibroblasts are the main stromal target [1]\n"
        "- PD-1 and CTLA-4 blockade is in phase III trials [2]"
    )
    grounded = ground(text, PASSAGES, checker)
    assert grounded.text == (
        "- Cancer-associated fibroblasts are the main stromal target [1]\n"
        "- PD-1 and CTLA-4 blockade is in phase III trials [2]"
    )
    assert grounded.removed == 1


def test_ground_marker_before_the_sentence_still_counts(checker: SupportChecker) -> None:
    grounded = ground("[2] PD-1 and CTLA-4 blockade is in phase III trials.", PASSAGES, checker)
    assert grounded.text == "[1] PD-1 and CTLA-4 blockade is in phase III trials."
    assert [c.passage.id for c in grounded.citations] == ["trials"]


CLAIMS = [
    FIBROBLASTS,
    MATRIX,
    "PD-1 and CTLA-4 blockade is in phase III trials for several solid tumours.",
    "Aspirin prevents all cancers.",
    "Bananas are rich in potassium.",
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(CLAIMS), st.lists(st.integers(0, 9), max_size=3)), max_size=6))
def test_ground_never_cites_what_was_not_given(checker: SupportChecker, sentences: list[tuple[str, list[int]]]) -> None:
    text = " ".join(claim[:-1] + "".join(f" [{n}]" for n in numbers) + "." for claim, numbers in sentences)
    grounded = ground(text, PASSAGES, checker)
    numbers = [c.number for c in grounded.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    assert set(parse_markers(grounded.text)) == set(numbers)
    for citation in grounded.citations:
        assert citation.passage in PASSAGES
        assert citation.passage.text[citation.start : citation.end] == citation.quote
    assert "Aspirin" not in grounded.text and "Bananas" not in grounded.text


def test_ground_numbers_two_passages_of_one_document_once(checker: SupportChecker) -> None:
    review = {"source": "review.pdf", "title": "Stroma review"}
    first = Passage("review-1", f"Stroma is more than scaffolding. {FIBROBLASTS}", {**review, "page": 2})
    second = Passage("review-7", f"Drug delivery is hard. {MATRIX}", {**review, "page": 9})
    text = f"{FIBROBLASTS[:-1]} [1]. {MATRIX[:-1]} [2]."
    grounded = ground(text, [first, second], checker)
    assert parse_markers(grounded.text) == [1]
    assert [(c.number, c.passage.id) for c in grounded.citations] == [(1, "review-1"), (1, "review-7")]
