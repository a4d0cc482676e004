"""Follow-up questions: condensed with the conversation, they retrieve what the standalone question would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.followup import condense_offline, condense_question, is_followup
from retrieval.llm import ChatClient
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from tests.emulators.openai_server import OpenAIEmulator, Reply, Status

FIRST = "What are the therapeutic targets in the TME?"
FIRST_ANSWER = "Cancer-associated fibroblasts and immune checkpoints such as PD-1 [1][2]."
FOLLOWUP = "And which of those are in clinical trials?"
STANDALONE = "Which therapeutic targets in the TME are in clinical trials?"
HISTORY = [(FIRST, FIRST_ANSWER)]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    folder = tmp_path_factory.mktemp("docs")
    notes = {
        "tme-trials.txt": "Immune checkpoint inhibitors of PD-1 and CTLA-4, therapeutic targets in the tumour "
        "microenvironment (TME), are in phase III clinical trials.",
        "tme-stroma.txt": "Cancer-associated fibroblasts and the extracellular matrix are therapeutic targets "
        "in the tumour microenvironment (TME).",
        "diabetes.txt": "Which of these diabetes drugs are in clinical trials? Several GLP-1 agonists are in "
        "phase III clinical trials for type 2 diabetes.",
        "vaccines.txt": "Those mRNA vaccines now in clinical trials target influenza and RSV.",
        "sauce.txt": "Simmer the tomato sauce slowly and season it with basil just before serving.",
    }
    for name, text in notes.items():
        (folder / name).write_text(text)
    p = Pipeline(RetrievalSettings(data_dir=tmp_path_factory.mktemp("data"), top_k=2, _env_file=None))
    p.index([folder])
    return p


def top_sources(pipeline: Pipeline, question: str) -> list[str]:
    return [p.source for p in pipeline.search(question).passages]


def test_followup_offline_condensed_question_retrieves_like_the_standalone_one(pipeline: Pipeline) -> None:
    condensed = condense_offline(FOLLOWUP, HISTORY)
    assert top_sources(pipeline, STANDALONE)[0] == "tme-trials.txt"
    assert top_sources(pipeline, FOLLOWUP)[0] != "tme-trials.txt"  # alone, the follow-up misses
    assert top_sources(pipeline, condensed) == top_sources(pipeline, STANDALONE)


@pytest.mark.parametrize(
    ("history", "question", "expected"),
    [
        (HISTORY, FOLLOWUP, "And which of therapeutic targets TME are in clinical trials?"),
        (
            [("How do I reset my VPN password?", "Open the portal [1].")],
            "What if it does not work?",
            "What if reset VPN password does not work?",
        ),
        ([("Which drugs block PD-1?", "Nivolumab [1].")], "Side effects?", "Side effects? (drugs block PD-1)"),
        (
            [(FIRST, FIRST_ANSWER), (FOLLOWUP, "PD-1 blockade [1].")],
            "Why?",
            "Why? (therapeutic targets TME clinical trials)",
        ),
    ],
)
def test_followup_offline_adds_the_previous_question_key_words(
    history: list[tuple[str, str]], question: str, expected: str
) -> None:
    assert condense_offline(question, history) == expected


@pytest.mark.parametrize(
    "question",
    ["How long should tomato sauce simmer before serving?", "Which GLP-1 agonists are in phase III trials?"],
)
def test_followup_offline_leaves_standalone_questions_alone(question: str) -> None:
    assert not is_followup(question)
    assert condense_offline(question, HISTORY) == question


def test_followup_without_history_is_the_question_itself() -> None:
    assert condense_offline(FOLLOWUP, []) == FOLLOWUP


@pytest.fixture
def server() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as emulator:
        yield emulator


def chat_for(tmp_path: Path, server: OpenAIEmulator) -> ChatClient:
    settings = RetrievalSettings(
        data_dir=tmp_path / "data",
        openai_api_key="sk-test",
        openai_base_url=server.url,
        llm_timeout=0.5,
        llm_max_retries=0,
        _env_file=None,
    )
    return ChatClient(settings)


def test_followup_llm_rewrites_with_the_conversation(
    tmp_path: Path, server: OpenAIEmulator, pipeline: Pipeline
) -> None:
    server.script(Reply(f'Standalone question: "{STANDALONE}"\n'))
    condensed = condense_question(FOLLOWUP, HISTORY, chat_for(tmp_path, server))
    assert condensed == STANDALONE
    prompt = server.requests[0].body["messages"][0]["content"]
    assert f"User: {FIRST}" in prompt and "[1]" not in prompt and prompt.rstrip().endswith("Standalone question:")
    assert top_sources(pipeline, condensed)[0] == "tme-trials.txt"


def test_followup_llm_failure_falls_back_to_the_offline_rule(tmp_path: Path, server: OpenAIEmulator) -> None:
    server.script(Status(500))
    condensed = condense_question(FOLLOWUP, HISTORY, chat_for(tmp_path, server))
    assert condensed == condense_offline(FOLLOWUP, HISTORY)


def test_followup_llm_is_not_called_without_history(tmp_path: Path, server: OpenAIEmulator) -> None:
    assert condense_question(STANDALONE, [], chat_for(tmp_path, server)) == STANDALONE
    assert server.requests == []


def test_followup_pipeline_answers_the_condensed_question_under_the_users_words(pipeline: Pipeline) -> None:
    answer = pipeline.ask(FOLLOWUP, HISTORY)
    assert answer.question == FOLLOWUP
    assert answer.found and answer.citations[0].passage.source == "tme-trials.txt"
