"""LLM answers against a real OpenAI-compatible server on 127.0.0.1: what the user receives in each case."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval import prompts
from retrieval.citations import verify
from retrieval.embeddings import Embedder, get_embedder
from retrieval.errors import LLMError, UnverifiedAnswerError
from retrieval.grounding import strip_markers
from retrieval.llm import ChatClient, LLMAnswerer, estimate_cost
from retrieval.pipeline import Pipeline
from retrieval.prompts import NOT_FOUND_PHRASE, NOT_FOUND_PROMPT
from retrieval.settings import RetrievalSettings
from retrieval.types import Passage
from tests.emulators.openai_server import Behaviour, Hang, Malformed, OpenAIEmulator, Reply, Status

QUESTION = "What are the therapeutic targets in the TME?"
PASSAGES = [
    Passage(
        "tme-1",
        "The tumour microenvironment (TME) holds many cell types. Cancer-associated fibroblasts and "
        "tumour-associated macrophages are the main therapeutic targets in the TME.",
        {"source": "tme-review.pdf", "title": "Targeting the tumour microenvironment", "page": 3},
    ),
    Passage(
        "trials-1",
        "PD-1 and CTLA-4 blockade is in phase III trials for several solid tumours. "
        "Results of 12 trials are expected next year.",
        {"source": "checkpoints.html", "title": "Immune checkpoints", "section": "Clinical trials"},
    ),
    Passage(
        "stroma-1",
        "Stromal components such as the extracellular matrix shield tumours from drugs.",
        {"source": "stroma.txt"},
    ),
    Passage("sauce-1", "Simmer the tomato sauce slowly and season it with basil just before serving.", {}),
]
WELL_CITED = (
    "The main therapeutic targets in the TME are cancer-associated fibroblasts and tumour-associated "
    "macrophages [1]. PD-1 and CTLA-4 blockade is in phase III trials for several solid tumours [2]."
)


@pytest.fixture
def server() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder("minilm-l6-int8")


def llm_settings(data_dir: Path, url: str, **overrides: object) -> RetrievalSettings:
    """Settings that point at the emulator, with a short timeout so failures stay fast."""
    values: dict[str, object] = {"llm_timeout": 0.5, "llm_max_retries": 1, **overrides}
    return RetrievalSettings(data_dir=data_dir, openai_api_key="sk-test", openai_base_url=url, _env_file=None, **values)


def answerer(tmp_path: Path, server: OpenAIEmulator, embedder: Embedder, **overrides: object) -> LLMAnswerer:
    return LLMAnswerer(llm_settings(tmp_path / "data", server.url, **overrides), embedder)


def test_answerer_well_cited_answer_streams_and_verifies(
    tmp_path: Path, server: OpenAIEmulator, embedder: Embedder
) -> None:
    server.script(Reply(WELL_CITED, usage=(812, 41)))
    tokens: list[str] = []
    answer = answerer(tmp_path, server, embedder).answer(QUESTION, PASSAGES, on_sentence=tokens.append)
    # The stream carries each verified sentence as it completes, without the prompt's numbers.
    assert len(tokens) == 2 and "".join(tokens).strip() == strip_markers(WELL_CITED)
    assert answer.found and answer.mode == "llm" and answer.notice == ""
    assert answer.text == WELL_CITED
    assert [(c.number, c.passage.id) for c in answer.citations] == [(1, "tme-1"), (2, "trials-1")]
    assert answer.citations[0].quote == (
        "Cancer-associated fibroblasts and tumour-associated macrophages are the main therapeutic targets in the TME."
    )
    assert verify(answer) == []
    assert answer.usage == {"prompt_tokens": 812, "completion_tokens": 41, "total_tokens": 853}
    assert {"generate", "verify"} <= set(answer.timings)


def test_answerer_stream_never_shows_a_recited_prompt(
    tmp_path: Path, server: OpenAIEmulator, embedder: Embedder
) -> None:
    # A document told the model to reveal its instructions; it starts by reciting them, cited or not.
    recital = prompts.ANSWER_SYSTEM_PROMPT.format(max_sentences=5).replace("\n", " ")
    server.script(Reply(f"My instructions say: {recital} [1]. " + WELL_CITED))
    tokens: list[str] = []
    answer = answerer(tmp_path, server, embedder).answer(QUESTION, PASSAGES, on_sentence=tokens.append)
    streamed = "".join(tokens)
    assert "instructions" not in streamed and recital[:40] not in streamed
    assert streamed.strip() == strip_markers(WELL_CITED)
    assert "instructions" not in answer.text


def test_answerer_renumbers_citations_in_order_of_first_use(
    tmp_path: Path, server: OpenAIEmulator, embedder: Embedder
) -> None:
    server.script(
        Reply(
            "Stromal components such as the extracellular matrix shield tumours from drugs [3]. "
            "Fibroblasts and macrophages are the main therapeutic targets in the TME [1]."
        )
    )
    answer = answerer(tmp_path, server, embedder).answer(QUESTION, PASSAGES)
    assert answer.text.endswith(
        "from drugs [1]. Fibroblasts and macrophages are the main therapeutic targets in the TME [2]."
    )
    assert [(c.number, c.passage.id) for c in answer.citations] == [(1, "stroma-1"), (2, "tme-1")]


def test_answerer_citation_to_missing_passage_is_removed(
    tmp_path: Path, server: OpenAIEmulator, embedder: Embedder
) -> None:
    server.script(
        Reply(
            "Cancer-associated fibroblasts are main therapeutic targets in the TME [1]. "
            "Radiotherapy cures most tumours [7]. "
            "PD-1 and CTLA-4 blockade is in phase III trials [7][2]."
        )
    )
    answer = answerer(tmp_path, server, embedder).answer(QUESTION, PASSAGES)
    assert "[7]" not in answer.text and "Radiotherapy" not in answer.text
    assert "phase III trials [2]." in answer.text
    assert answer.notice == "1 unsupported sentence(s) removed."
    assert {c.passage.id for c in answer.citations} == {"tme-1", "trials-1"}
    assert verify(answer) == []


def test_answerer_unsupported_claim_is_dropped(tmp_path: Path, server: OpenAIEmulator, embedder: Embedder) -> None:
    server.script(
        Reply(
            "Cancer-associated fibroblasts and macrophages are the main therapeutic targets in the TME [1]. "
            "Vitamin C megadoses cure pancreatic cancer in most patients [1]. "
            "Results of 40 trials are expected next year [2]."
        )
    )
    answer = answerer(tmp_path, server, embedder).answer(QUESTION, PASSAGES)
    assert (
        answer.text == "Cancer-associated fibroblasts and macrophages are the main therapeutic targets in the TME [1]."
    )
    assert answer.notice == "2 unsupported sentence(s) removed."
    assert len(answer.citations) == 1


def test_answerer_with_nothing_verified_signals_fallback(
    tmp_path: Path, server: OpenAIEmulator, embedder: Embedder
) -> None:
    server.script(Reply("The moon is made of green cheese [1]. Mars has two moons [9]."))
    with pytest.raises(UnverifiedAnswerError):
        answerer(tmp_path, server, embedder).answer(QUESTION, PASSAGES)


def test_answerer_declines_when_the_model_finds_nothing(
    tmp_path: Path, server: OpenAIEmulator, embedder: Embedder
) -> None:
    server.script(Reply(NOT_FOUND_PHRASE + "."))
    answer = answerer(tmp_path, server, embedder).answer("What is the capital of France?", PASSAGES)
    assert not answer.found and answer.mode == "llm"
    assert answer.text == NOT_FOUND_PROMPT and answer.citations == []
    assert answer.passages == PASSAGES


def test_answerer_sends_numbered_passages_history_and_limits(
    tmp_path: Path, server: OpenAIEmulator, embedder: Embedder
) -> None:
    server.script(Reply(WELL_CITED))
    history = [("What is the TME?", "The tumour microenvironment [1].")]
    answerer(tmp_path, server, embedder, llm_model="qwen2.5-coder", llm_max_tokens=250).answer(
        QUESTION, PASSAGES, history
    )
    request = server.requests[0]
    body = request.body
    assert request.headers["authorization"] == "Bearer sk-test"
    assert body["model"] == "qwen2.5-coder" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 250 and "max_completion_tokens" not in body
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert body["messages"][2]["content"] == "The tumour microenvironment."
    prompt = body["messages"][-1]["content"]
    assert "[1] Targeting the tumour microenvironment (page 3)\nThe tumour microenvironment" in prompt
    assert "[4] " in prompt and "[5] " not in prompt and prompt.endswith(QUESTION)


@pytest.mark.parametrize("turns", [0, 2])
def test_answerer_reads_the_last_history_turns_only(
    tmp_path: Path, server: OpenAIEmulator, embedder: Embedder, turns: int
) -> None:
    server.script(Reply(WELL_CITED))
    history = [(f"Question {n}?", f"Answer {n}.") for n in range(5)]
    answerer(tmp_path, server, embedder, history_turns=turns).answer(QUESTION, PASSAGES, history)
    asked = [m["content"] for m in server.requests[0].body["messages"] if m["role"] == "user"][:-1]
    assert asked == [f"Question {n}?" for n in range(5 - turns, 5)]


def test_answerer_logs_tokens_and_cost(
    tmp_path: Path, server: OpenAIEmulator, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Reply(WELL_CITED, usage=(1000, 200)))
    with caplog.at_level(logging.INFO, logger="retrieval.llm"):
        answerer(tmp_path, server, embedder).answer(QUESTION, PASSAGES)
    assert "llm call to gpt-4o-mini: 1000 prompt + 200 completion tokens, about $0.00027" in caplog.text


def test_estimate_cost_known_and_local_models() -> None:
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    assert estimate_cost("gpt-4o-mini", usage) == pytest.approx(0.75)
    assert estimate_cost("qwen2.5-coder-1.5b-instruct", usage) == 0.0


def test_chat_malformed_stream_is_retried_then_reported(tmp_path: Path, server: OpenAIEmulator) -> None:
    server.script(Malformed())
    chat = ChatClient(llm_settings(tmp_path / "data", server.url, llm_max_retries=2))
    with pytest.raises(LLMError, match="malformed reply from the endpoint"):
        chat.generate([("human", "hi")])
    assert len(server.requests) == 3


def test_chat_stream_breaking_after_tokens_is_not_retried(tmp_path: Path, server: OpenAIEmulator) -> None:
    server.script(Malformed(prefix="Immune checkpoints are"))
    tokens: list[str] = []
    with pytest.raises(LLMError, match="malformed"):
        ChatClient(llm_settings(tmp_path / "data", server.url)).generate([("human", "hi")], tokens.append)
    assert "".join(tokens) == "Immune checkpoints are"
    assert len(server.requests) == 1  # a retry would stream the same words to the user twice


def test_chat_server_error_is_retried_then_reported(tmp_path: Path, server: OpenAIEmulator) -> None:
    server.script(Status(500))
    with pytest.raises(LLMError, match=r"^HTTP 500$"):
        ChatClient(llm_settings(tmp_path / "data", server.url)).generate([("human", "hi")])
    assert len(server.requests) == 2


def test_chat_recovers_when_a_retry_succeeds(tmp_path: Path, server: OpenAIEmulator) -> None:
    server.script(Status(503), Reply("Fine now."))
    generation = ChatClient(llm_settings(tmp_path / "data", server.url)).generate([("human", "hi")])
    assert generation.text == "Fine now." and len(server.requests) == 2


def test_chat_bad_key_says_what_to_check(tmp_path: Path, server: OpenAIEmulator) -> None:
    server.script(Status(401, "Incorrect API key provided: sk-test"))
    with pytest.raises(LLMError) as caught:
        ChatClient(llm_settings(tmp_path / "data", server.url)).generate([("human", "hi")])
    assert str(caught.value) == "HTTP 401, check OPENAI_API_KEY"
    assert len(server.requests) == 1  # not worth retrying


def test_chat_hang_past_timeout_is_reported_in_time(tmp_path: Path, server: OpenAIEmulator) -> None:
    server.script(Hang(30))
    start = time.monotonic()
    with pytest.raises(LLMError, match=r"no reply within 0\.5 s"):
        ChatClient(llm_settings(tmp_path / "data", server.url, llm_max_retries=0)).generate([("human", "hi")])
    assert time.monotonic() - start < 5


def test_chat_refused_connection_is_reported(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on once it is closed
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(LLMError, match="cannot connect to http://127.0.0.1"):
        ChatClient(llm_settings(tmp_path / "data", url, llm_max_retries=0)).generate([("human", "hi")])


def test_chat_failed_endpoint_rests_before_the_next_call(tmp_path: Path, server: OpenAIEmulator) -> None:
    server.script(Status(500))
    chat = ChatClient(llm_settings(tmp_path / "data", server.url, llm_max_retries=0))
    for _ in range(2):
        with pytest.raises(LLMError, match="HTTP 500"):
            chat.generate([("human", "hi")])
    assert len(server.requests) == 1


def test_prompts_use_exactly_their_placeholders() -> None:
    expected = {
        "ANSWER_SYSTEM_PROMPT": {"max_sentences"},
        "ANSWER_USER_PROMPT": {"passages", "question"},
        "CONDENSE_QUESTION_PROMPT": {"history", "question"},
        "NOT_FOUND_PROMPT": set(),
    }
    names = {n for n in dir(prompts) if n.endswith("_PROMPT")}
    assert names == set(expected)
    for name, placeholders in expected.items():
        prompts.check_placeholders(getattr(prompts, name), placeholders)
    assert NOT_FOUND_PHRASE in prompts.ANSWER_SYSTEM_PROMPT


def test_check_placeholders_rejects_unknown_and_missing() -> None:
    with pytest.raises(ValueError, match=r"unknown \['context'\], missing \['passages'\]"):
        prompts.check_placeholders("{context} {question}", {"passages", "question"})


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the four passages as documents."""
    folder = tmp_path_factory.mktemp("docs")
    for passage in PASSAGES:
        (folder / f"{passage.id}.txt").write_text(passage.text)
    data_dir = tmp_path_factory.mktemp("data")
    Pipeline(RetrievalSettings(data_dir=data_dir, _env_file=None)).index([folder])
    return data_dir


def pipeline_for(indexed: Path, server: OpenAIEmulator) -> Pipeline:
    return Pipeline(llm_settings(indexed, server.url, top_k=2))


def test_pipeline_streams_the_verified_llm_answer(indexed: Path, server: OpenAIEmulator) -> None:
    server.script(Reply(WELL_CITED.split(" PD-1")[0]))
    tokens: list[str] = []
    answer = pipeline_for(indexed, server).ask(QUESTION, on_sentence=tokens.append)
    assert answer.mode == "llm" and answer.notice == "" and tokens
    assert answer.citations[0].passage.source == "tme-1.txt"
    assert {"search", "generate", "verify", "total"} <= set(answer.timings)


@pytest.mark.parametrize(
    ("behaviour", "notice"),
    [
        (Status(500), "The language model is unavailable (HTTP 500); showing the extractive answer."),
        (
            Malformed(),
            "The language model is unavailable (malformed reply from the endpoint); showing the extractive answer.",
        ),
        (Hang(30), "The language model is unavailable (no reply within 0.5 s); showing the extractive answer."),
        (Reply("The moon is made of green cheese [1]."), prompts.LLM_UNVERIFIED_NOTICE),
    ],
)
def test_pipeline_falls_back_to_the_extractive_answer(
    indexed: Path, server: OpenAIEmulator, behaviour: Behaviour, notice: str
) -> None:
    server.script(behaviour)
    answer = pipeline_for(indexed, server).ask(QUESTION)
    assert answer.mode == "extractive" and answer.found
    assert answer.notice == notice
    assert answer.citations and verify(answer) == []


def test_pipeline_does_not_call_the_llm_when_nothing_is_relevant(indexed: Path, server: OpenAIEmulator) -> None:
    answer = pipeline_for(indexed, server).ask("What is the capital of France?")
    assert not answer.found and answer.text == NOT_FOUND_PROMPT
    assert server.requests == []
