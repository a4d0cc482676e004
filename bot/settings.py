"""Bot settings: tokens, allowlists and limits for the chat front ends, nesting the retrieval settings.

Names users already know keep them (``TELEGRAM_BOT_TOKEN``, ``SLACK_BOT_TOKEN``, ``SLACK_APP_TOKEN``,
``SLACK_SIGNING_SECRET``, ``TELEGRAM_BASE_URL``, ``SLACK_API_URL``); our own start with ``CITEBOT_``.
Allowlists are comma-separated in the environment (``CITEBOT_TELEGRAM_ALLOWED_CHATS=123,-100456``);
an empty allowlist leaves that platform open to everyone.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from retrieval import RetrievalSettings, env_alias

logger = logging.getLogger(__name__)

# Telegram accepts 1-256 characters of A-Z, a-z, 0-9, _ and - as a webhook secret token.
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")

def reveal(value: SecretStr | None) -> str:
    """The value of a secret setting; "" when it is unset."""
    return value.get_secret_value() if value is not None else ""


IdList = Annotated[list[str], NoDecode]
TelegramIdList = Annotated[list[int], NoDecode]


class BotSettings(BaseSettings):
    """Everything the Telegram and Slack bots need besides the documents: who may ask, how often, where."""

    # An empty variable (`TELEGRAM_BOT_TOKEN=` copied from .env.example) counts as unset.
    model_config = SettingsConfigDict(
        env_prefix="CITEBOT_", env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    retrieval: RetrievalSettings = Field(
        default_factory=RetrievalSettings, description="Index, search and LLM settings the answers come from."
    )

    telegram_bot_token: SecretStr | None = Field(
        None, validation_alias=env_alias("TELEGRAM_BOT_TOKEN"), description="Bot token from @BotFather."
    )
    telegram_base_url: str | None = Field(
        None,
        validation_alias=env_alias("TELEGRAM_BASE_URL"),
        description="Bot API base URL (e.g. http://127.0.0.1:8081/bot) for a self-hosted telegram-bot-api.",
    )
    telegram_webhook_url: str | None = Field(
        None, description="Public HTTPS URL Telegram posts updates to; unset means long polling."
    )
    telegram_webhook_secret: SecretStr | None = Field(
        None, description="Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token; required with a webhook."
    )
    telegram_listen_host: str = Field("127.0.0.1", description="Address the webhook server binds.")
    telegram_listen_port: int = Field(8443, ge=1, le=65535, description="Port the webhook server binds.")

    slack_bot_token: SecretStr | None = Field(
        None, validation_alias=env_alias("SLACK_BOT_TOKEN"), description="Bot user OAuth token (xoxb-...)."
    )
    slack_app_token: SecretStr | None = Field(
        None, validation_alias=env_alias("SLACK_APP_TOKEN"), description="App-level token (xapp-...), Socket Mode."
    )
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=env_alias("SLACK_SIGNING_SECRET"), description="Verifies HTTP-mode requests."
    )
    slack_api_url: str | None = Field(
        None,
        validation_alias=env_alias("SLACK_API_URL"),
        description="Web API base URL, e.g. https://slack-gov.com/api/ for GovSlack; unset means slack.com.",
    )
    slack_http_host: str = Field("127.0.0.1", description="Address the HTTP-mode server binds.")
    slack_http_port: int = Field(3000, ge=1, le=65535, description="Port the HTTP-mode server binds.")

    telegram_allowed_chats: TelegramIdList = Field(
        default_factory=list, description="Telegram chat ids that may ask (comma-separated); empty: any."
    )
    telegram_allowed_users: TelegramIdList = Field(
        default_factory=list, description="Telegram user ids that may ask anywhere (comma-separated)."
    )
    slack_allowed_channels: IdList = Field(
        default_factory=list, description="Slack channel ids that may ask (comma-separated); empty: any."
    )
    slack_allowed_users: IdList = Field(
        default_factory=list, description="Slack user ids that may ask anywhere (comma-separated)."
    )
    slack_allowed_teams: IdList = Field(
        default_factory=list, description="Slack workspace (team) ids the bot serves; empty: any."
    )

    slack_helpdesk_channel: str | None = Field(
        None, description='Slack channel id that "Ask a person" posts to; unset: no such button on Slack.'
    )
    slack_responders: IdList = Field(
        default_factory=list, description="Slack user ids whose help-desk replies are relayed and kept."
    )
    telegram_helpdesk_chat: int | None = Field(
        None, description='Telegram group chat id that "Ask a person" posts to; unset: no such button on Telegram.'
    )
    telegram_responders: TelegramIdList = Field(
        default_factory=list, description="Telegram user ids whose help-desk replies are relayed and kept."
    )
    helpdesk_answers_dir: Path | None = Field(
        None, description="Folder the relayed replies are saved in as Markdown; unset: <data dir>-answers."
    )

    telegram_admins: TelegramIdList = Field(
        default_factory=list, description="Telegram user ids whose documents sent to the bot are indexed."
    )
    slack_admins: IdList = Field(
        default_factory=list, description="Slack user ids whose files shared with the bot are indexed."
    )
    inbox_dir: Path | None = Field(
        None, description="Folder the admins' posted documents are saved in; unset: <data dir>-inbox."
    )
    helpdesk_digest: bool = Field(
        False, description="Post a weekly digest of the unanswered question groups to the help-desk conversation."
    )
    helpdesk_digest_weekday: int = Field(0, ge=0, le=6, description="Day of the digest: 0 Monday ... 6 Sunday.")
    helpdesk_digest_hour: int = Field(9, ge=0, le=23, description="Hour of the digest (UTC).")
    helpdesk_digest_groups: int = Field(5, ge=1, le=50, description="Question groups the digest lists at most.")

    spaces_file: Path | None = Field(
        None, description="TOML file mapping conversations to the folders they answer from; unset: all documents."
    )

    rate_limit_questions: int = Field(
        5, ge=0, description="Questions one user may ask per window; 0 turns the limit off."
    )
    rate_limit_window: float = Field(60.0, gt=0, description="Length of the rate-limit window in seconds.")
    max_question_chars: int = Field(
        4000, ge=1, description="Longer questions are shortened to this many characters, with a notice."
    )

    @field_validator(
        "telegram_allowed_chats",
        "telegram_allowed_users",
        "slack_allowed_channels",
        "slack_allowed_users",
        "slack_allowed_teams",
        "slack_responders",
        "telegram_responders",
        "telegram_admins",
        "slack_admins",
        mode="before",
    )
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        """Accept "123, -100456" from the environment as well as a list from code."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def answers_dir(self) -> Path:
        """Where relayed replies are saved: beside the data dir, since the index never reads its own data dir."""
        data = self.retrieval.data_dir
        return self.helpdesk_answers_dir or data.with_name(f"{data.name}-answers")

    @property
    def inbox(self) -> Path:
        """Where the admins' posted documents are saved: beside the data dir, like the kept replies."""
        data = self.retrieval.data_dir
        return self.inbox_dir or data.with_name(f"{data.name}-inbox")

    def admins(self, platform: str) -> set[str]:
        """The user ids of ``platform`` whose posted documents are indexed."""
        listed = {"slack": self.slack_admins, "telegram": self.telegram_admins}.get(platform, [])
        return {str(u) for u in listed}

    def helpdesk_chat(self, platform: str) -> str | None:
        """The help-desk conversation of ``platform`` ("slack", "telegram"), when it and its responders are set."""
        if platform == "slack" and self.slack_helpdesk_channel and self.slack_responders:
            return self.slack_helpdesk_channel
        if platform == "telegram" and self.telegram_helpdesk_chat is not None and self.telegram_responders:
            return str(self.telegram_helpdesk_chat)
        return None

    def responders(self, platform: str) -> set[str]:
        """The user ids of ``platform`` whose help-desk replies are relayed and kept."""
        listed = {"slack": self.slack_responders, "telegram": self.telegram_responders}.get(platform, [])
        return {str(u) for u in listed}

    def secrets(self) -> list[str]:
        """Every configured token and secret (the retrieval settings' API key too), so logging can mask them."""
        values = [getattr(self, name) for name in type(self).model_fields] + [self.retrieval.openai_api_key]
        return [reveal(v) for v in values if isinstance(v, SecretStr) and reveal(v)]

    @model_validator(mode="after")
    def _check_webhook(self) -> BotSettings:
        secret = reveal(self.telegram_webhook_secret)
        if self.telegram_webhook_url and not secret:
            raise ValueError("CITEBOT_TELEGRAM_WEBHOOK_SECRET is required with CITEBOT_TELEGRAM_WEBHOOK_URL")
        if secret and not _WEBHOOK_SECRET.fullmatch(secret):
            raise ValueError(
                "CITEBOT_TELEGRAM_WEBHOOK_SECRET may only hold 1-256 letters, digits, '_' and '-'"
            )
        return self
