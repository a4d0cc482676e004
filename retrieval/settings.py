"""Retrieval settings: one typed object read from the environment and ``.env``.

Our own variables start with ``CITEBOT_``; the ones users already know keep their names
(``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``CHROMA_HOST``, ``CHROMA_PORT``). ``.env.example`` lists them all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Per-user data directory: ``$XDG_DATA_HOME/citebot``, else ``~/.local/share/citebot``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "citebot"


def env_alias(name: str) -> AliasChoices:
    """Accept the well-known variable name and its CITEBOT_-prefixed spelling."""
    return AliasChoices(name, f"CITEBOT_{name}")


class RetrievalSettings(BaseSettings):
    """Where the index lives, how documents are cut and searched, and which LLM (if any) writes answers."""

    model_config = SettingsConfigDict(
        env_prefix="CITEBOT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Holds the embedded Chroma store, the keyword index and the feedback database.",
    )
    collection: str = Field("citebot", description="Chroma collection holding the documents' chunks.")
    chroma_host: str | None = Field(
        None, validation_alias=env_alias("CHROMA_HOST"), description="Use a Chroma server instead of the data dir."
    )
    chroma_port: int = Field(8000, validation_alias=env_alias("CHROMA_PORT"), description="Chroma server port.")
    chroma_ssl: bool = Field(False, validation_alias=env_alias("CHROMA_SSL"), description="HTTPS to the server.")
    chroma_timeout: float = Field(30.0, gt=0, description="Seconds a Chroma server may take to answer a request.")
    max_file_mb: float = Field(
        50.0, gt=0, description="Larger files are skipped: embedding them would take hours on a CPU."
    )
    max_extracted_chars: int = Field(
        5_000_000, ge=1, description="A file whose text runs longer is skipped (a small PDF can expand to 20 MB)."
    )
    max_extract_seconds: float = Field(
        120.0, gt=0, description="A PDF, DOCX or HTML file that takes longer to read is skipped."
    )

    embedder: Literal["minilm-l6-int8", "paraphrase-minilm-l3"] = Field(
        "minilm-l6-int8", description="Packaged embedding model (see BENCHMARKS.md for the choice)."
    )
    embed_batch_size: int = Field(32, ge=1, description="Texts per embedding batch.")

    chunk_size: int = Field(1000, ge=100, description="Characters per chunk.")
    chunk_overlap: int = Field(150, ge=0, description="Characters shared by neighbouring chunks.")

    candidates: int = Field(30, ge=1, description="Passages each search side (dense, keyword) proposes.")
    top_k: int = Field(6, ge=1, description="Fused passages a language model's answer is drawn from.")
    read_k: int = Field(
        24, ge=1, description="Fused passages the extractive reader reads (long documents hide answers deep)."
    )
    fusion: Literal["score", "rrf"] = Field(
        "score", description="Fusion of the two sides: normalised score fusion or reciprocal rank fusion."
    )
    dense_weight: float = Field(0.5, ge=0, le=1, description="The dense side's share in score fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    min_relevance: float = Field(
        0.3, description="Cosine similarity the best passage needs before the documents count as answering."
    )
    # Both operating points are fitted on COVID-QA's tune fold by bench/fit_reader.py (BENCHMARKS.md, "Reader").
    min_answer_probability: float = Field(
        0.23, ge=0, le=1,
        description="The reader's probability that the documents answer, under which the answer is declined.",
    )
    min_support_probability: float = Field(
        0.1, ge=0, le=1, description="A sentence's probability of answering, under which it does not support the lead."
    )
    max_sentences: int = Field(5, ge=1, description="Sentences in a language model's answer at most.")
    history_turns: int = Field(
        3, ge=0, description="Earlier questions and answers of a conversation a follow-up is read with."
    )

    openai_api_key: SecretStr | None = Field(
        None, validation_alias=env_alias("OPENAI_API_KEY"), description="Turns on LLM-written answers."
    )
    openai_base_url: str | None = Field(
        None, validation_alias=env_alias("OPENAI_BASE_URL"), description="Any OpenAI-compatible server."
    )
    llm_model: str = Field("gpt-4o-mini", description="Chat model name at the endpoint.")
    llm_timeout: float = Field(30.0, gt=0, description="Seconds before an LLM call is abandoned.")
    llm_max_retries: int = Field(2, ge=0, description="Retries (with backoff) of a failed LLM call.")
    llm_max_tokens: int = Field(600, ge=1, description="Tokens an LLM answer may run to at most.")

    @model_validator(mode="after")
    def _check(self) -> RetrievalSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("CITEBOT_CHUNK_OVERLAP must be smaller than CITEBOT_CHUNK_SIZE")
        return self

    @property
    def llm_enabled(self) -> bool:
        return self.openai_api_key is not None and bool(self.openai_api_key.get_secret_value())
