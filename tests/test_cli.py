"""The command line as a user drives it: index, ask (text and JSON), sources, and clear errors."""

import json
from pathlib import Path

from click.testing import CliRunner

from bot.cli import cli
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from tests.emulators.openai_server import OpenAIEmulator, Reply
from tests.llm_pipelines import cited_reply

SEEDS = Path(__file__).parent.parent / "seeds"


def test_cli_index_then_ask_prints_cited_answer_and_sources() -> None:
    runner = CliRunner()
    indexed = runner.invoke(cli, ["index", str(SEEDS)])
    assert indexed.exit_code == 0, indexed.output
    assert "2 added" in indexed.output
    asked = runner.invoke(cli, ["ask", "What are the therapeutic targets in the TME?"])
    assert asked.exit_code == 0, asked.output
    answer, _, sources = asked.output.partition("Sources:")
    assert "target" in answer and "[1]" in answer
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


TME = "What are the therapeutic targets in the TME?"


def llm_env(url: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": url, "CITEBOT_LLM_TIMEOUT": "2",
            "CITEBOT_LLM_MAX_RETRIES": "0"}


def test_cli_ask_streams_the_llm_words_then_prints_the_verified_answer(openai: OpenAIEmulator) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["index", str(SEEDS)])
    reply = cited_reply(Pipeline(RetrievalSettings(_env_file=None)), TME, extra="Radiotherapy cures all [7]. ")
    openai.script(Reply(reply))
    result = runner.invoke(cli, ["ask", TME], env=llm_env(openai.url))
    assert result.exit_code == 0, result.output
    first_words = reply.split(" [1]")[0]
    # Only verified sentences are streamed: the unsupported one never shows, not even in the draft.
    assert first_words in result.stderr and "Radiotherapy" not in result.stderr
    assert "[" not in result.stderr  # the draft never shows the prompt's numbers
    assert result.output.index(first_words) < result.output.index("Sources:")
    assert result.stdout.startswith("1 unsupported sentence(s) removed.")  # why the verified answer differs
    assert "[1]" in result.stdout and "[7]" not in result.stdout and "Radiotherapy" not in result.stdout


def test_cli_ask_json_and_no_stream_print_only_the_verified_answer(openai: OpenAIEmulator) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["index", str(SEEDS)])
    reply = cited_reply(Pipeline(RetrievalSettings(_env_file=None)), TME)
    openai.script(Reply(reply))
    as_json = runner.invoke(cli, ["ask", "--json", TME], env=llm_env(openai.url))
    data = json.loads(as_json.stdout)
    assert data["mode"] == "llm" and data["citations"] and data["usage"]["total_tokens"] == 150
    plain = runner.invoke(cli, ["ask", "--no-stream", TME], env=llm_env(openai.url))
    assert "Sources:" in plain.stdout
    assert as_json.stderr == plain.stderr == ""
    assert len(openai.requests) == 2


def test_cli_index_and_sources_print_no_terminal_escapes_from_names_or_titles(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "evil\x1b]0;owned\x07\nIndexed: 0 added.txt").write_text("")  # skipped: empty
    notes = docs / "notes\x1b[2J.md"
    notes.write_text("# \x1b[31m[bold]Stroma[/bold] notes\x1b[0m\n\nStromal cells shape how tumours respond.\n")
    runner = CliRunner()
    indexed = runner.invoke(cli, ["index", str(docs)])
    listed = runner.invoke(cli, ["sources"])
    notes.unlink()
    removed = runner.invoke(cli, ["index", str(docs)])
    for result in (indexed, listed, removed):
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output
    assert "skipped evil]0;owned Indexed: 0 added.txt: " in indexed.output
    assert "│ notes[2J.md │ [31m[bold]Stroma[/bold] notes[0m │" in listed.output  # shown, not obeyed
    assert "removed notes[2J.md" in removed.output
