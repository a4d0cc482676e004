"""Pipelines answered by a language model at a test's OpenAI emulator, and model replies that verify."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from retrieval.pipeline import Pipeline
from retrieval.sentences import spans as sentence_spans


def llm_pipeline(indexed: Pipeline, base_url: str, **overrides: Any) -> Pipeline:
    """``indexed``'s store, answered by the language model at ``base_url`` (short timeout, no retries)."""
    settings = indexed.settings.model_copy(update={
        "openai_api_key": SecretStr("sk-test"), "openai_base_url": base_url, "llm_timeout": 2.0,
        "llm_max_retries": 0, **overrides,
    })
    return Pipeline(settings, embedder=indexed.store.embedder, store=indexed.store)


def cited_reply(pipeline: Pipeline, question: str, extra: str = "") -> str:
    """A model's answer quoting the best passages of two documents for ``question``, cited as the prompt
    numbers them (so the verified answer cites them as [1] and [2]).

    ``extra`` goes between the two sentences, e.g. a claim citing a passage that was not given.
    """
    passages = pipeline.search(question).passages
    first = next(n for n, p in enumerate(passages) if p.document != passages[0].document)
    quotes = [max((p.text[a:b] for a, b in sentence_spans(p.text)), key=len).rstrip(".")
              for p in (passages[0], passages[first])]
    return f"{quotes[0]} [1]. {extra}{quotes[1]} [{first + 1}]."
