"""The fully local option: answers from the model ``scripts/local-llm.sh`` serves on 127.0.0.1.

Skipped unless that server answers (start it first: ``scripts/local-llm.sh &``); ``CITEBOT_LOCAL_LLM_URL``
points elsewhere. Whatever the small model writes, every citation a user receives must verify, or the user
gets the extractive answer with a notice saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from retrieval.citations import verify
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
# Read at import: the isolated-environment fixture removes CITEBOT_ variables before each test.
URL = os.environ.get("CITEBOT_LOCAL_LLM_URL", "http://127.0.0.1:8080/v1")
MODEL = "qwen2.5-coder-1.5b"


def _served_model() -> str | None:
    """The id of the model served at ``URL``, or None when nothing answers there."""
    try:
        response = httpx.get(f"{URL}/models", timeout=2, trust_env=False)
        return str(response.json()["data"][0]["id"]) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, IndexError):
        return None


@pytest.mark.slow
def test_local_llm_answer_streams_and_reaches_the_user_verified(tmp_path: Path) -> None:
    model = _served_model()
    if model is None:
        pytest.skip(f"no local LLM server at {URL}: start scripts/local-llm.sh to run this test")
    settings = RetrievalSettings(data_dir=tmp_path / "data", openai_api_key="local", openai_base_url=URL,
                                 llm_model=model, llm_timeout=600, llm_max_retries=0, top_k=3, _env_file=None)
    pipeline = Pipeline(settings)
    pipeline.index([SEEDS])
    tokens: list[str] = []
    answer = pipeline.ask("What are the therapeutic targets in the TME?", on_sentence=tokens.append)
    assert tokens, "the local model streamed nothing"
    assert answer.found and answer.citations and verify(answer) == []
    assert answer.mode == "llm" or "extractive answer" in answer.notice
