"""Sentence boundaries: abbreviations and decimals do not end a sentence, a line break does."""

from retrieval.sentences import spans


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in spans(text)]


def test_spans_do_not_end_at_abbreviations_or_decimals() -> None:
    text = "Cytokines (e.g. IL-6) rose, as Smith et al. found in 3.5% of cases. Dr. Lee agreed. Fig. 2 shows it."
    assert sentences(text) == [
        "Cytokines (e.g. IL-6) rose, as Smith et al. found in 3.5% of cases.",
        "Dr. Lee agreed.",
        "Fig. 2 shows it.",
    ]


def test_spans_end_at_line_breaks_and_keep_markers_with_their_sentence() -> None:
    text = "Targets\nFibroblasts are targets. [1] The matrix blocks drugs [2].\n\n- PD-1 [3]"
    assert sentences(text) == ["Targets", "Fibroblasts are targets. [1]", "The matrix blocks drugs [2].", "- PD-1 [3]"]


def test_spans_index_the_text_itself() -> None:
    text = "  One sentence here.   Another one there.  "
    for a, b in spans(text):
        assert text[a:b] == text[a:b].strip() and text[a:b]
