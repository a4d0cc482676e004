"""Settings a user configures: every variable is documented in .env.example, and bad values are refused."""

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices, ValidationError
from pydantic_settings import BaseSettings

from bot.settings import BotSettings
from retrieval.settings import RetrievalSettings, default_data_dir

EXAMPLE = Path(__file__).parent.parent / ".env.example"


def _variables(model: type[BaseSettings]) -> set[str]:
    prefix = model.model_config.get("env_prefix", "")
    names = set()
    for name, field in model.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):
            names.add(str(field.validation_alias.choices[0]).upper())
        elif name != "retrieval":  # the nested section reads its own variables
            names.add(f"{prefix}{name}".upper())
    return names


def test_settings_every_variable_is_in_env_example() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", EXAMPLE.read_text(), re.MULTILINE))
    missing = (_variables(RetrievalSettings) | _variables(BotSettings)) - documented
    assert not missing, f"not documented in .env.example: {sorted(missing)}"


def test_settings_read_known_names_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("CITEBOT_TOP_K", "3")
    s = RetrievalSettings(_env_file=None)
    assert s.chroma_host == "127.0.0.1" and s.top_k == 3
    assert s.llm_enabled and "sk-test" not in repr(s)


def test_settings_default_data_dir_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "citebot"


def test_settings_refuse_overlap_not_smaller_than_chunk() -> None:
    with pytest.raises(ValidationError, match="CHUNK_OVERLAP"):
        RetrievalSettings(chunk_size=200, chunk_overlap=200, _env_file=None)


def test_settings_read_dotenv_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("CITEBOT_COLLECTION=team-docs\nCHROMA_PORT=9000\n")
    s = RetrievalSettings(_env_file=env)
    assert (s.collection, s.chroma_port) == ("team-docs", 9000)
