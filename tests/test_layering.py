"""The seams between the packages, as imports: the library knows nothing of the bots, the bots use only the
library's public API, and inside bot/ rendering and storage stay apart (httpx guards its ``__all__`` alike)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import retrieval

ROOT = Path(__file__).resolve().parent.parent


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import in the file; names is empty for ``import module``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).glob("*.py"))


def test_retrieval_all_is_sorted_and_every_name_exists() -> None:
    assert retrieval.__all__ == sorted(retrieval.__all__, key=str.casefold)
    for name in retrieval.__all__:
        assert getattr(retrieval, name) is not None, name


@pytest.mark.parametrize("path", modules("retrieval"), ids=lambda p: p.name)
def test_retrieval_imports_nothing_of_the_bots(path: Path) -> None:
    assert [m for m, _ in imports(path) if m == "bot" or m.startswith("bot.")] == []


@pytest.mark.parametrize("path", modules("bot"), ids=lambda p: p.name)
def test_bot_uses_only_the_public_api_of_retrieval(path: Path) -> None:
    for module, names in imports(path):
        assert not module.startswith("retrieval."), f"{path.name} imports {module}: use `from retrieval import`"
        if module == "retrieval":
            assert set(names) <= set(retrieval.__all__), f"{path.name} imports {set(names) - set(retrieval.__all__)}"


def test_render_imports_no_storage_and_core_no_renderer() -> None:
    render = {m for m, _ in imports(ROOT / "bot" / "render.py")}
    assert not render & {"bot.feedback", "sqlite3", "bot.core"}
    core = {m for m, _ in imports(ROOT / "bot" / "core.py")}
    assert not core & {"bot.render", "bot.telegram_adapter", "bot.slack_adapter", "bot.slack_http", "bot.cli"}
