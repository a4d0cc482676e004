"""Bot settings from the environment: known token names, comma-separated allowlists, secrets kept secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import BotSettings


def test_bot_settings_defaults_are_safe() -> None:
    s = BotSettings(_env_file=None)
    assert (s.telegram_listen_host, s.slack_http_host) == ("127.0.0.1", "127.0.0.1")
    assert (s.rate_limit_questions, s.rate_limit_window, s.retrieval.history_turns) == (5, 60.0, 3)
    assert s.max_question_chars == 4000
    assert s.telegram_allowed_chats == [] and s.slack_allowed_teams == []


def test_bot_settings_read_known_names_and_comma_lists(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9999/api/")
    monkeypatch.setenv("CITEBOT_TELEGRAM_ALLOWED_CHATS", "123, -100456")
    monkeypatch.setenv("CITEBOT_SLACK_ALLOWED_CHANNELS", "C1,C2,")
    monkeypatch.setenv("CITEBOT_RATE_LIMIT_QUESTIONS", "10")
    s = BotSettings(_env_file=None)
    assert s.telegram_bot_token.get_secret_value() == "123:abc"
    assert s.slack_api_url == "http://127.0.0.1:9999/api/"
    assert s.telegram_allowed_chats == [123, -100456]
    assert s.slack_allowed_channels == ["C1", "C2"]
    assert s.rate_limit_questions == 10
    assert s.retrieval.data_dir == tmp_path / "data"


def test_bot_settings_read_the_dotenv_file(monkeypatch, tmp_path) -> None:
    env = tmp_path / ".env"
    env.write_text("SLACK_BOT_TOKEN=xoxb-1\nCITEBOT_SLACK_ALLOWED_TEAMS=T1,T2\n")
    s = BotSettings(_env_file=env)
    assert s.slack_bot_token.get_secret_value() == "xoxb-1"
    assert s.slack_allowed_teams == ["T1", "T2"]


def test_bot_settings_empty_values_count_as_unset(tmp_path) -> None:
    env = tmp_path / ".env"
    env.write_text("TELEGRAM_BOT_TOKEN=\nCITEBOT_TELEGRAM_LISTEN_PORT=\nCITEBOT_SLACK_ALLOWED_USERS=\n")
    s = BotSettings(_env_file=env)
    assert s.telegram_bot_token is None
    assert s.telegram_listen_port == 8443 and s.slack_allowed_users == []


def test_bot_settings_hide_tokens(monkeypatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    s = BotSettings(_env_file=None)
    assert "xoxb-very-secret" not in repr(s) and "xoxb-very-secret" not in str(s.model_dump())


def test_bot_settings_reject_a_chat_id_that_is_not_a_number(monkeypatch) -> None:
    monkeypatch.setenv("CITEBOT_TELEGRAM_ALLOWED_CHATS", "123,@mygroup")
    with pytest.raises(ValidationError, match="telegram_allowed_chats"):
        BotSettings(_env_file=None)


@pytest.mark.parametrize("secret", ["", "has space", "x" * 257])
def test_bot_settings_webhook_needs_a_valid_secret(monkeypatch, secret: str) -> None:
    monkeypatch.setenv("CITEBOT_TELEGRAM_WEBHOOK_URL", "https://bot.example.org/telegram")
    monkeypatch.setenv("CITEBOT_TELEGRAM_WEBHOOK_SECRET", secret)
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        BotSettings(_env_file=None)


def test_bot_settings_every_field_is_described() -> None:
    assert all(f.description for f in BotSettings.model_fields.values())


def test_bot_settings_env_example_lists_every_variable_and_loads() -> None:
    example = Path(__file__).parent.parent / ".env.example"
    text = example.read_text()
    for name, field in BotSettings.model_fields.items():
        if name != "retrieval":
            alias = field.validation_alias
            variable = alias.choices[0] if alias else f"CITEBOT_{name.upper()}"
            assert f"{variable}=" in text, variable
    assert BotSettings(_env_file=example).telegram_bot_token is None
