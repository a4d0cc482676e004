"""The command line as a user drives it: index, ask (text and JSON), sources, and clear errors."""

import json
from pathlib import Path

from click.testing import CliRunner

from bot.cli import cli

SEEDS = Path(__file__).parent.parent / "seeds"


def test_cli_index_then_ask_prints_cited_answer_and_sources() -> None:
    runner = CliRunner()
    indexed = runner.invoke(cli, ["index", str(SEEDS)])
    assert indexed.exit_code == 0, indexed.output
    assert "2 added" in indexed.output
    asked = runner.invoke(cli, ["ask", "What are the therapeutic targets in the TME?"])
    assert asked.exit_code == 0, asked.output
    answer, _, sources = asked.output.partition("Sources:")
    assert "immune checkpoints" in answer and "[1]" in answer
    assert "[1] " in sources and '"' in sources


def test_cli_reindex_reports_unchanged() -> None:
    runner = CliRunner()
    runner.invoke(cli, ["index", str(SEEDS)])
    again = runner.invoke(cli, ["index", str(SEEDS)])
    assert "0 added, 0 updated, 2 unchanged" in again.output
    assert "(0 chunks embedded)" in again.output


def test_cli_ask_json_is_machine_readable() -> None:
    runner = CliRunner()
    runner.invoke(cli, ["index", str(SEEDS)])
    result = runner.invoke(cli, ["ask", "--json", "What are the therapeutic targets in the TME?"])
    data = json.loads(result.output)
    assert data["found"] is True
    assert data["citations"][0]["quote"] in data["text"]
    assert {"number", "source", "title", "source_start", "source_end"} <= set(data["citations"][0])
    assert data["timings"]["total"] > 0


def test_cli_ask_before_index_explains_what_to_do() -> None:
    result = CliRunner().invoke(cli, ["ask", "anything"])
    assert result.exit_code != 0
    assert "citebot index" in result.output


def test_cli_index_reports_skipped_files(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("# Notes\n\nStromal cells shape how tumours respond to therapy.\n")
    (docs / "empty.txt").write_text("")
    result = CliRunner().invoke(cli, ["index", str(docs)])
    assert result.exit_code == 0
    assert "1 skipped" in result.output
    assert "skipped empty.txt:" in result.output


def test_cli_sources_lists_documents_with_identifiers() -> None:
    runner = CliRunner()
    runner.invoke(cli, ["index", str(SEEDS)])
    rows = json.loads(runner.invoke(cli, ["sources", "--json"]).output)
    assert [r["source"] for r in rows] == sorted(p.name for p in SEEDS.iterdir())
    assert rows[0]["pmid"] == "33259885"


def test_cli_missing_path_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["index", "/no/such/folder"])
    assert result.exit_code == 2
    assert "does not exist" in result.output
