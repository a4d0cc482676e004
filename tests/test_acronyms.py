"""Acronyms the documents spell out: found by Schwartz and Hearst's rule, written into the question."""

from retrieval.acronyms import asked, expand, long_forms


def test_long_form_is_the_fewest_words_that_spell_the_acronym() -> None:
    texts = ["Strategies to target the tumor microenvironment (TME) have emerged."]
    assert long_forms("What are the targets in the TME?", texts) == {"TME": "tumor microenvironment"}


def test_only_the_question_acronyms_are_looked_up_and_unspelled_ones_are_left() -> None:
    texts = ["Middle East respiratory syndrome (MERS) and the polymerase chain reaction (PCR).",
             "A quick test (RDT) was used."]
    assert long_forms("How is MERS diagnosed with RDT?", texts) == {"MERS": "Middle East respiratory syndrome"}
    assert long_forms("How is it diagnosed?", texts) == {}


def test_expand_writes_the_long_form_after_the_acronym_once() -> None:
    question = "Is TME the same in every TME?"
    expanded = expand(question, {"TME": "tumor microenvironment"})
    assert expanded == "Is TME (tumor microenvironment) the same in every TME?"
    assert asked("What does mRNA or the WHO say about Covid?") == {"WHO"}
