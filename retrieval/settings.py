"""Retrieval settings: one typed object read from the environment and ``.env``.

Our own variables start with ``CITEBOT_``; the ones users already know keep their names
(``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``CHROMA_HOST``, ``CHROMA_PORT``). ``.env.example`` lists them all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Per-user data directory: ``$XDG_DATA_HOME/citebot``, else ``~/.local/share/citebot``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "citebot"


def env_alias(name: str) -> AliasChoices:
    """Accept the well-known variable name and its CITEBOT_-prefixed spelling."""
    return AliasChoices(name, f"CITEBOT_{name}")


def setting_error(exc: ValidationError, *models: type[BaseSettings]) -> str:
    """One line for a settings error: the environment variable, what it holds and what it accepts.

    Args:
        exc: what pydantic raised while reading the settings.
        models: the settings classes that may have raised it (picked by ``exc.title``).
    """
    model = next((m for m in models if m.__name__ == exc.title), models[0])
    first, *rest = exc.errors(include_url=False)
    message = first["msg"].removeprefix("Value error, ").replace("Input should", "it should")
    more = f" (and {len(rest)} more setting error(s))" if rest else ""
    if not first["loc"]:  # a check across settings: its message names the variables
        return message + more
    variable, secret = _variable(model, [str(part) for part in first["loc"]])
    shown = "" if secret else f"={first['input']!r}" if isinstance(first["input"], str) else ""
    return f"{variable}{shown} is not accepted: {message}{more}"


def _variable(model: type[BaseSettings], loc: list[str]) -> tuple[str, bool]:
    """The environment variable of the field at ``loc`` (nested settings followed) and whether it is secret."""
    field: Any = model.model_fields.get(loc[0])
    if field is None:
        return loc[0], False
    nested = field.annotation
    if len(loc) > 1 and isinstance(nested, type) and issubclass(nested, BaseSettings):
        return _variable(nested, loc[1:])
    alias, prefix = field.validation_alias, model.model_config.get("env_prefix", "")
    name = alias.choices[0] if isinstance(alias, AliasChoices) else f"{prefix}{loc[0]}"
    return str(name).upper(), "SecretStr" in str(field.annotation)


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

    embedder: Literal["minilm-l6-int8", "minilm-l6-qint8", "paraphrase-minilm-l3"] = Field(
        "minilm-l6-qint8",
        description="Packaged embedding model (see BENCHMARKS.md for the choice); minilm-l6-qint8 is minilm-l6-int8 "
        "run with integer kernels, built once into <data dir>/models.",
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
        0.29, ge=0, le=1,
        description="The reader's probability that the documents answer, under which the answer is declined.",
    )
    min_support_probability: float = Field(
        0.07, ge=0, le=1, description="A sentence's probability of answering, under which it does not support the lead."
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
        if self.chroma_host and ("://" in self.chroma_host or self.chroma_host.count(":") == 1):
            self._split_chroma_url(self.chroma_host if "://" in self.chroma_host else f"http://{self.chroma_host}")
        return self

    def _split_chroma_url(self, url: str) -> None:
        """Read ``CHROMA_HOST=http(s)://host[:port]`` (or ``host:port``) as host, port and TLS, as a user pasting
        a URL means."""
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or parts.path not in ("", "/"):
            raise ValueError(f"CHROMA_HOST={self.chroma_host!r} is not accepted: give a host name "
                             "(CHROMA_HOST=chroma.example.org CHROMA_PORT=8000) or a URL like http://chroma.example.org:8000")
        self.chroma_host, self.chroma_ssl = parts.hostname, parts.scheme == "https"
        self.chroma_port = port or self.chroma_port

    @property
    def llm_enabled(self) -> bool:
        return self.openai_api_key is not None and bool(self.openai_api_key.get_secret_value())
