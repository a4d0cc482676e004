"""How an answer looks in the terminal, Telegram and Slack: limits, escaping, splitting, sources, buttons."""

from __future__ import annotations

import html
import re

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bot import render
from bot.types import StoredAnswer, StoredCitation
from retrieval.types import Citation

MARKER = re.compile(r"\[\d+\]")
HTML_TAG = re.compile(r'<(/?)(b|i|blockquote|a)(?: href="[^"<>&]*")?>')


def paragraph(n: int, chars: int) -> str:
    """A paragraph of about ``chars`` characters: numbered sentences, each ending with a citation."""
    sentence = f"Paragraph {n} says fibroblasts & macrophages matter [1]. "
    return (sentence * (chars // len(sentence) + 1))[:chars].rsplit(". ", 1)[0] + "."


def assert_valid_telegram_html(message: str) -> None:
    """Only our tags, balanced; every other <, > and & escaped."""
    stack = []
    for m in HTML_TAG.finditer(message):
        if m.group(1):
            assert stack and stack.pop() == m.group(2), message
        else:
            stack.append(m.group(2))
    assert not stack, message
    bare = HTML_TAG.sub("", message)
    assert "<" not in bare and ">" not in bare
    assert re.fullmatch(r"(?:[^&]|&(?:amp|lt|gt|quot|#x27);)*", bare, re.DOTALL)


def visible(message: str) -> str:
    return html.unescape(HTML_TAG.sub("", message))


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- plain lines and the terminal ---------------------------------------------------------------------


def test_source_line_shows_title_identifiers_location_file_and_quote(make_answer) -> None:
    first, second = make_answer().citations
    assert render.source_line([first]) == (
        "[1] Targeting the tumour microenvironment, DOI 10.1038/s41571-020-0403-1, page 3\n"
        "    papers/tme-review.pdf\n"
        '    "Cancer-associated fibroblasts and tumour-associated macrophages are the main therapeutic targets."'
    )
    assert render.source_line([second]).startswith(
        "[2] Immune checkpoints in solid tumours, PMID 31562232, section Clinical trials\n"
    )


def test_source_line_lists_every_quote_of_one_document_under_its_number(make_answer) -> None:
    answer = make_answer()
    first, second = answer.citations
    same_document = Citation(1, second.passage, second.quote, second.start, second.end)
    answer.citations = [first, same_document]
    (group,) = render.groups(answer.citations)
    head, path, *quotes = render.source_line(group).splitlines()
    assert head.startswith("[1] Targeting the tumour microenvironment") and "section Clinical trials" in head
    assert path.strip() == "papers/tme-review.pdf"
    assert [q.strip().strip('"') for q in quotes] == [first.quote, second.quote]
    assert render.to_terminal(answer).count("[1] Targeting") == 1


def test_source_line_shortens_a_long_quote_at_a_word(make_answer) -> None:
    quote = "Macrophages " + "reshape the stroma and " * 40 + "end."
    (citation,) = make_answer(sources=[({"title": "Review", "page": 1}, quote)]).citations
    shown = render.source_line([citation]).splitlines()[1].strip().strip('"')
    kept = shown.removesuffix("…")
    assert shown.endswith("…") and len(shown) <= render.QUOTE_CHARS
    assert quote.startswith(kept) and quote[len(kept)] == " "  # cut between words


def test_source_line_same_for_a_stored_citation(make_answer) -> None:
    for citation in make_answer().citations:
        assert render.source_line([StoredCitation.from_citation(citation)]) == render.source_line([citation])


def test_to_terminal_lists_sources_after_the_answer(make_answer) -> None:
    out = render.to_terminal(make_answer(notice="The LLM was unreachable; this answer is extractive."))
    notice, text, sources = out.split("\n\n")
    assert notice == "The LLM was unreachable; this answer is extractive."
    assert text.endswith("Checkpoint blockade is in trials [2].")
    assert sources.splitlines()[0] == "Sources:"
    assert sources.splitlines()[1].startswith("[1] Targeting the tumour microenvironment")


def test_to_terminal_declined_lists_closest_passages_uncited(make_answer) -> None:
    out = render.to_terminal(make_answer(found=False))
    assert out.startswith("Not found in the documents")
    assert "Closest passages (not cited):\n• Targeting the tumour microenvironment, page 3" in out
    assert "[1]" not in out and "Sources" not in out


def test_to_terminal_drops_escape_sequences_from_documents(make_answer) -> None:
    out = render.to_terminal(
        make_answer("Clear\x1b[2J the screen\x07 [1].", sources=[({"title": "T\x1b]0;x"}, "q")])
    )
    assert "\x1b" not in out and "\x07" not in out
    assert "Clear[2J the screen [1]." in out


# --- Telegram ------------------------------------------------------------------------------------------


def test_telegram_html_escapes_document_markup(make_answer) -> None:
    answer = make_answer(
        "Use <b>x</b> & y [1].", sources=[({"title": "<script>alert(1)</script> & co", "page": 2}, "a < b")]
    )
    (message,) = render.to_telegram_html(answer)
    assert "Use &lt;b&gt;x&lt;/b&gt; &amp; y [1]." in message
    assert "[1] &lt;script&gt;alert(1)&lt;/script&gt; &amp; co, page 2" in message
    assert_valid_telegram_html(message)


def test_telegram_html_links_doi_and_pubmed(make_answer) -> None:
    (message,) = render.to_telegram_html(make_answer())
    assert (
        '[1] <a href="https://doi.org/10.1038/s41571-020-0403-1">Targeting the tumour microenvironment</a>'
        in message
    )
    assert 'PMID <a href="https://pubmed.ncbi.nlm.nih.gov/31562232/">31562232</a>' in message
    assert message.index("<b>Sources</b>") > message.index("trials [2].")


def test_telegram_html_leaves_out_malformed_identifiers(make_answer) -> None:
    meta = {"title": "Odd", "doi": 'javascript:alert(1)"', "pmid": "12<3", "pmcid": "PMC99"}
    (message,) = render.to_telegram_html(make_answer("A [1].", sources=[(meta, "q")]))
    assert "javascript" not in message and "12&lt;3" not in message
    assert '<a href="https://pmc.ncbi.nlm.nih.gov/articles/PMC99/">Odd</a>' in message


def test_telegram_long_answer_splits_between_paragraphs(make_answer) -> None:
    paragraphs = [paragraph(n, 1800) for n in range(1, 5)]
    messages = render.to_telegram_html(make_answer("\n\n".join(paragraphs)))
    assert len(messages) >= 2
    body = [p for m in messages for p in visible(m).split("\n\n") if p.startswith("Paragraph")]
    assert body == paragraphs  # every paragraph whole, in order
    assert all(render.width(m) <= render.TELEGRAM_LIMIT for m in messages)


def test_telegram_overlong_paragraph_splits_between_sentences(make_answer) -> None:
    text = paragraph(1, 9000)
    messages = render.to_telegram_html(make_answer(text, sources=[]))
    assert len(messages) == 3
    assert all(visible(m).endswith("[1].") for m in messages)
    assert " ".join(visible(m) for m in messages) == text


def test_telegram_sources_pages_quote_each_passage(make_answer) -> None:
    (page,) = render.sources_pages_telegram(make_answer())
    assert page.startswith("<b>Sources</b>")
    assert (
        "<blockquote>PD-1 and CTLA-4 blockade is in phase III trials for several solid tumours.</blockquote>"
        in page
    )
    assert_valid_telegram_html(page)


def test_telegram_sources_pages_paginate(make_answer) -> None:
    sources = [({"title": f"Paper {n}", "page": n}, f"Finding number {n}.") for n in range(1, 13)]
    pages = render.sources_pages_telegram(make_answer(sources=sources), page_size=5)
    assert [p.split("\n", 1)[0] for p in pages] == [f"<b>Sources {i}/3</b>" for i in (1, 2, 3)]
    assert [len(MARKER.findall(visible(p))) for p in pages] == [5, 5, 2]


def test_telegram_sources_pages_from_a_stored_answer(make_answer) -> None:
    answer = make_answer()
    stored = StoredAnswer(
        1,
        "telegram",
        "42",
        "7",
        answer.question,
        answer.text,
        True,
        "extractive",
        [StoredCitation.from_citation(c) for c in answer.citations],
        "2024-01-01T00:00:00+00:00",
    )
    assert render.sources_pages_telegram(stored) == render.sources_pages_telegram(answer)


def test_telegram_declined_answer_names_closest_passages(make_answer) -> None:
    (message,) = render.to_telegram_html(make_answer(found=False))
    assert "<b>Closest passages (not cited):</b>\n• Targeting the tumour microenvironment, page 3" in message


# --- Slack ---------------------------------------------------------------------------------------------


def test_slack_blocks_answer_sources_and_buttons(make_answer) -> None:
    fallback, blocks = render.to_slack_blocks(make_answer(), 42)
    assert fallback.startswith("The main targets are fibroblasts")
    assert [b["type"] for b in blocks] == ["section", "context", "actions"]
    assert blocks[1]["elements"][1]["text"] == (
        "[2] <https://pubmed.ncbi.nlm.nih.gov/31562232/|Immune checkpoints in solid tumours>, "
        "PMID <https://pubmed.ncbi.nlm.nih.gov/31562232/|31562232>, section Clinical trials"
    )
    buttons = blocks[2]["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        (render.ACTION_SOURCES, "42"),
        (render.ACTION_VOTE_UP, "42"),
        (render.ACTION_VOTE_DOWN, "42"),
    ]


def test_slack_blocks_without_an_answer_id_have_no_buttons(make_answer) -> None:
    _, blocks = render.to_slack_blocks(make_answer(), None)
    assert "actions" not in [b["type"] for b in blocks]


def test_slack_escapes_mentions_and_markup_from_documents(make_answer) -> None:
    answer = make_answer(
        "Ping <!channel> & <https://evil.example|click> [1].", sources=[({"title": "<@U123> & co"}, "x")]
    )
    fallback, blocks = render.to_slack_blocks(answer, 1)
    assert blocks[0]["text"]["text"] == "Ping &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt; [1]."
    assert blocks[1]["elements"][0]["text"] == "[1] &lt;@U123&gt; &amp; co"
    assert "<" not in fallback


def test_slack_many_sources_use_several_context_blocks(make_answer) -> None:
    sources = [({"title": f"Paper {n}"}, f"Finding {n}.") for n in range(1, 26)]
    _, blocks = render.to_slack_blocks(make_answer(sources=sources), 1)
    contexts = [b for b in blocks if b["type"] == "context"]
    assert [len(b["elements"]) for b in contexts] == [10, 10, 5]


def test_slack_huge_answer_is_cut_within_fifty_blocks(make_answer) -> None:
    _, blocks = render.to_slack_blocks(make_answer("A fact [1]. " * 20_000), 1)
    assert len(blocks) == render.SLACK_MAX_BLOCKS
    assert "too long for Slack" in blocks[-3]["text"]["text"]
    assert blocks[-1]["type"] == "actions"


def test_slack_sources_blocks_quote_each_source(make_answer) -> None:
    fallback, blocks = render.sources_blocks_slack(make_answer())
    assert fallback == "Sources for: What are the therapeutic targets in the TME?"
    assert blocks[0]["text"]["text"].endswith(
        "\n>Cancer-associated fibroblasts and tumour-associated macrophages are the main therapeutic targets."
    )


# --- properties ----------------------------------------------------------------------------------------

NASTY = [
    "[1]",
    "[23]",
    "[1, 2]",
    "\n\n",
    "\n",
    ". ",
    "! ",
    " ",
    "&",
    "<",
    ">",
    '"',
    "&amp;",
    "<b>",
    "</a>",
    "🙂",
    "👩‍🔬",
    "שלום עולם",
    "مرحبا",
    "\u202e",
    "\x00",
    "\x1b[31m",
    "\r\n",
    "\ud800",
    "*bold*",
    "_x_",
]
words = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=30),
    st.integers(0, 2500).map(lambda n: "&" * n),  # one word longer than a message once escaped
    st.integers(0, 2500).map(lambda n: "🙂" * n),
)
texts = st.lists(words, max_size=400).map("".join)
fields = st.one_of(st.text(max_size=300), st.sampled_from(NASTY), st.just("10.1000/a<b>&c"), st.just("123"))
metadata = st.fixed_dictionaries(
    {"title": fields},
    optional={"page": st.integers(1, 999), "section": fields, "doi": fields, "pmid": fields, "pmcid": fields},
)
sources = st.lists(st.tuples(metadata, st.text(max_size=3000)), max_size=60)
checks = hsettings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])


@checks
@given(text=texts)
def test_telegram_messages_stay_within_limits_and_keep_every_word(make_answer, text: str) -> None:
    messages = render.to_telegram_html(make_answer(text, sources=[]))
    assert messages and all(0 < render.width(m) <= render.TELEGRAM_LIMIT for m in messages)
    for m in messages:
        assert_valid_telegram_html(m)
    shown = [visible(m) for m in messages]
    clean = render.sanitize(text)
    if clean.strip():
        assert squeeze("".join(shown)) == squeeze(clean)
    assert sum(len(MARKER.findall(m)) for m in shown) == len(MARKER.findall(clean))


@checks
@given(text=texts)
def test_slack_sections_stay_within_limits_and_keep_every_word(make_answer, text: str) -> None:
    fallback, blocks = render.to_slack_blocks(make_answer(text, sources=[]), 1)
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(blocks) <= render.SLACK_MAX_BLOCKS and fallback
    assert all(0 < render.width(s) <= render.SLACK_SECTION_LIMIT for s in sections)
    for s in sections:
        assert "<" not in s and ">" not in s
        assert re.fullmatch(r"(?:[^&]|&(?:amp|lt|gt);)*", s, re.DOTALL)
    shown = [html.unescape(s) for s in sections]
    if render.sanitize(text).strip() and len(sections) < render.SLACK_MAX_BLOCKS - 1:
        assert squeeze("".join(shown)) == squeeze(render.sanitize(text))
        assert sum(len(MARKER.findall(s)) for s in shown) == len(MARKER.findall(render.sanitize(text)))


@checks
@given(items=sources, text=texts)
def test_sources_stay_within_limits_and_escaped(make_answer, items, text: str) -> None:
    answer = make_answer(text, sources=items)
    for messages in (render.to_telegram_html(answer), render.sources_pages_telegram(answer, page_size=5)):
        assert all(0 < render.width(m) <= render.TELEGRAM_LIMIT for m in messages)
        for m in messages:
            assert_valid_telegram_html(m)
    for _, blocks in (render.to_slack_blocks(answer, 1), render.sources_blocks_slack(answer)):
        assert len(blocks) <= render.SLACK_MAX_BLOCKS
        texts_ = [b["text"]["text"] for b in blocks if b["type"] == "section"]
        texts_ += [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
        assert all(0 < render.width(t) <= render.SLACK_SECTION_LIMIT for t in texts_)
        assert all(
            len(b["elements"]) <= render.SLACK_CONTEXT_ELEMENTS for b in blocks if b["type"] == "context"
        )
        for t in texts_:
            ours = re.sub(r"<https://[^|<>\s]+\|[^<>]*>|^>", "", t, flags=re.MULTILINE)  # links, quotes
            assert "<" not in ours and ">" not in ours
    assert all(len(render.source_line(g)) < 1000 for g in render.groups(answer.citations))
    assert "\x1b" not in render.to_terminal(answer)
