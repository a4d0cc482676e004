"""Document spaces: which folders each conversation answers from (``CITEBOT_SPACES_FILE``, a TOML file).

    [spaces.hr]
    folders = ["hr", "policies/*"]      # paths or globs relative to the indexed folders
    slack_channels = ["C0123HR"]
    slack_users = ["U0456ANN"]          # their direct messages with the bot
    telegram_chats = [-1001234567890]
    cli = true                          # `citebot ask` without --space

    [default]                           # conversations in no space; every document when left out
    folders = ["public"]

A conversation in several spaces answers from all of their folders. Which space a conversation may see is an
access decision, made by the core (``ChatCore.space``) from this file; retrieval only receives the ``Scope``.
A reply the help desk kept from an answer of a space is saved in that space's own folder of the answers
folder (``kept_folder``), and a document an admin posts in a conversation in that folder of the inbox, so each
is cited only inside the space.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from retrieval import ConfigError, Scope

DEFAULT = "default"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a space's name is also a folder name of the kept replies


class _Space(BaseModel):
    model_config = ConfigDict(extra="forbid")

    folders: list[str] = Field(min_length=1, description="Paths or globs relative to the indexed folders.")
    slack_channels: list[str] = Field(default_factory=list, description="Slack channel ids that use the space.")
    slack_users: list[str] = Field(default_factory=list, description="Slack users whose DMs use the space.")
    telegram_chats: list[int] = Field(default_factory=list, description="Telegram chat ids that use the space.")
    cli: bool = Field(False, description="The terminal (`citebot ask`) uses the space.")


class _Default(BaseModel):
    model_config = ConfigDict(extra="forbid")

    folders: list[str] | None = Field(None, description="The default space's folders; unset: every document.")


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spaces: dict[str, _Space] = Field(default_factory=dict)
    default: _Default = Field(default_factory=_Default)


@dataclass(frozen=True)
class Space:
    """One space as ``citebot spaces`` shows it; ``folders`` None means every document."""

    name: str
    folders: tuple[str, ...] | None
    conversations: tuple[str, ...]


class Spaces:
    """The spaces of one file; ``Spaces.load(None)`` is the setup without one (every conversation sees all)."""

    def __init__(self, path: Path | None, config: _File) -> None:
        self.path = path
        self._config = config

    @classmethod
    def load(cls, path: Path | None) -> Spaces:
        """The spaces ``path`` names (none when it is None); ``ConfigError`` with one line when it is unusable."""
        if path is None:
            return cls(None, _File())
        try:
            config = _File.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConfigError(f"cannot read the spaces file {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"spaces file {path} is not valid TOML: {exc}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"spaces file {path}: {where}: {first['msg']}") from exc
        for name in config.spaces:
            if name == DEFAULT or not _NAME.fullmatch(name):
                raise ConfigError(f"spaces file {path}: {name!r} cannot name a space (letters, digits, _ and -; "
                                  f"not {DEFAULT!r})")
        return cls(path, config)

    @property
    def configured(self) -> bool:
        return self.path is not None

    @property
    def names(self) -> list[str]:
        return [*self._config.spaces, DEFAULT]

    def of(self, platform: str, chat_id: str, user_id: str) -> tuple[str, ...]:
        """The spaces a conversation uses, sorted: those listing it, else the default space.

        A Slack direct message is a channel whose id starts with "D" (Slack's own convention); it uses the
        spaces listing its user.
        """
        found = []
        for name, space in self._config.spaces.items():
            if ((platform == "cli" and space.cli)
                    or (platform == "telegram" and chat_id in {str(c) for c in space.telegram_chats})
                    or (platform == "slack" and (chat_id in space.slack_channels
                                                 or (chat_id.startswith("D") and user_id in space.slack_users)))):
                found.append(name)
        return tuple(sorted(found)) or (DEFAULT,)

    def scope(self, names: Iterable[str]) -> Scope | None:
        """What spaces ``names`` may see together: their folders and the help desk's replies kept in them; None
        when that is every document (no spaces file, or the default space without folders)."""
        names = sorted(set(names))
        folders: set[str] = set()
        for name in names:
            own = self._folders(name)
            if own is None:
                return None
            folders |= set(own)
        # Kept replies of any combination of these spaces (an answer drawn from several spaces is kept for
        # the conversations that see all of them).
        folders |= {kept_folder(key) for n in range(1, len(names) + 1) for key in map(_key, combinations(names, n))}
        return Scope.of(folders)

    def listing(self) -> list[Space]:
        """Every space, the default last, with the conversations that use it."""
        rows = []
        for name, s in self._config.spaces.items():
            conversations = ([f"slack {c}" for c in s.slack_channels] + [f"slack DMs of {u}" for u in s.slack_users]
                             + [f"telegram {c}" for c in s.telegram_chats] + (["cli"] if s.cli else []))
            rows.append(Space(name, tuple(s.folders), tuple(conversations)))
        default = self._config.default.folders
        return [*rows, Space(DEFAULT, None if default is None else tuple(default), ("every other conversation",))]

    def check(self, indexed: Collection[str]) -> None:
        """Refuse, with one line, a file naming a folder that holds no indexed document (``indexed``: the
        folders that do, relative to their roots)."""
        for space in self.listing():
            for folder in space.folders or ():
                if not any(Scope.of([folder]).covers(f) for f in indexed):
                    raise ConfigError(f"spaces file {self.path}: space {space.name!r} names folder {folder!r}, "
                                      "which holds no indexed document")

    def _folders(self, name: str) -> list[str] | None:
        if name == DEFAULT:
            return self._config.default.folders
        return self._config.spaces[name].folders


def key(names: Iterable[str]) -> str:
    """How an answer records the spaces it was drawn from: "" without a spaces file, else "hr" or "hr+it"."""
    return _key(sorted(names))


def kept_folder(space_key: str) -> str:
    """The folder of what was added inside ``space_key``: in the answers folder, the help desk's replies to its
    answers; in the inbox, the documents posted in its conversations."""
    return f"space-{space_key}"


def _key(names: Iterable[str]) -> str:
    return "+".join(names)

