"""A newcomer's first hour at the command line: every misconfiguration is one line naming the variable (exit
code 1, a traceback only with -v), and index / remove / sources say plainly what they did."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli

SEEDS = Path(__file__).parent.parent / "seeds"


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_line_error(args: list[str], env: dict[str, str]) -> str:
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize(("env", "expected"), [
    ({"CITEBOT_TOP_K": "abc"}, "CITEBOT_TOP_K='abc' is not accepted: it should be a valid integer"),
    ({"CITEBOT_EMBEDDER": "bge-small"}, "CITEBOT_EMBEDDER='bge-small' is not accepted: it should be "
                                        "'minilm-l6-int8', 'minilm-l6-qint8' or 'paraphrase-minilm-l3'"),
    ({"CITEBOT_RATE_LIMIT_WINDOW": "-1"}, "CITEBOT_RATE_LIMIT_WINDOW='-1' is not accepted: it should be greater"),
    ({"CITEBOT_TELEGRAM_ALLOWED_CHATS": "team"}, "CITEBOT_TELEGRAM_ALLOWED_CHATS='team' is not accepted"),
    ({"CITEBOT_CHUNK_OVERLAP": "5000"}, "CITEBOT_CHUNK_OVERLAP must be smaller than CITEBOT_CHUNK_SIZE"),
    ({"CHROMA_HOST": "ftp://chroma.example.org"}, "CHROMA_HOST='ftp://chroma.example.org' is not accepted"),
    ({"SLACK_BOT_TOKEN": "xoxb-secret-value", "CITEBOT_SLACK_HTTP_PORT": "http"}, "CITEBOT_SLACK_HTTP_PORT='http'"),
])
def test_cli_bad_setting_is_one_line_naming_the_variable(env: dict[str, str], expected: str) -> None:
    assert expected in one_line_error(["sources"], env)


def test_cli_bad_secret_setting_is_named_but_not_shown() -> None:
    line = one_line_error(["sources"], {"CITEBOT_TELEGRAM_WEBHOOK_URL": "https://bot.example.org/t",
                                        "CITEBOT_TELEGRAM_WEBHOOK_SECRET": "not valid!"})
    assert "CITEBOT_TELEGRAM_WEBHOOK_SECRET" in line and "not valid!" not in line


def test_cli_verbose_shows_the_traceback() -> None:
    result = CliRunner().invoke(cli, ["-v", "sources"], env={"CITEBOT_TOP_K": "abc"})
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "ValidationError"


def test_cli_unwritable_data_dir_names_citebot_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = one_line_error(["index", str(SEEDS)], {"CITEBOT_DATA_DIR": str(blocker / "data")})
    assert "CITEBOT_DATA_DIR" in line and str(blocker / "data") in line


def test_cli_chroma_url_is_understood_and_an_unreachable_server_is_one_line() -> None:
    port = closed_port()
    line = one_line_error(["sources"], {"CHROMA_HOST": f"http://127.0.0.1:{port}"})
    assert f"cannot reach the Chroma server at 127.0.0.1:{port} " in line and "CHROMA_HOST" in line


def test_cli_telegram_unreachable_is_one_line() -> None:
    line = one_line_error(["telegram"], {"TELEGRAM_BOT_TOKEN": "123456:" + "A" * 35,
                                         "TELEGRAM_BASE_URL": f"http://127.0.0.1:{closed_port()}"})
    assert "cannot reach Telegram" in line and "TELEGRAM_BASE_URL" in line and "A" * 35 not in line


def test_cli_slack_unreachable_is_one_line_before_starting() -> None:
    line = one_line_error(["slack"], {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1",
                                      "SLACK_API_URL": f"http://127.0.0.1:{closed_port()}/api/"})
    assert "cannot reach Slack" in line and "SLACK_API_URL" in line


def test_cli_slack_missing_token_is_said_before_anything_starts() -> None:
    line = one_line_error(["slack"], {})
    assert line == "Error: SLACK_BOT_TOKEN is not set (see the Slack section of the README)\n"


def test_cli_short_help_option() -> None:
    result = CliRunner().invoke(cli, ["-h"])
    assert result.exit_code == 0 and "remove" in result.output


def test_cli_index_names_each_file_and_json_and_quiet(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    runner = CliRunner()
    first = runner.invoke(cli, ["index", str(docs)])
    assert first.exit_code == 0, first.output
    assert [line for line in first.output.splitlines() if line.startswith("added ")] == [
        f"added {p.name}" for p in sorted(docs.iterdir())]
    (docs / "notes.md").write_text("# Notes\n\nFibroblasts shape the tumour stroma.\n")
    quiet = runner.invoke(cli, ["index", "-q", str(docs)])
    assert quiet.exit_code == 0 and quiet.output == ""
    (docs / "notes.md").write_text("# Notes\n\nMacrophages shape the tumour stroma too.\n")
    report = json.loads(runner.invoke(cli, ["index", "--json", str(docs)]).output)
    assert report["updated"] == ["notes.md"] and len(report["unchanged"]) == 2 and report["skipped"] == []


def test_cli_remove_forgets_a_deleted_folder(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs / "seeds")
    (docs / "keep.md").write_text("# Keep\n\nThis note stays indexed.\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(docs)]).exit_code == 0
    refused = runner.invoke(cli, ["remove", str(docs / "seeds")])
    assert refused.exit_code == 1 and "still exists" in refused.output
    shutil.rmtree(docs / "seeds")
    removed = runner.invoke(cli, ["remove", str(docs / "seeds")])
    assert removed.exit_code == 0, removed.output
    assert "2 removed" in removed.output
    listed = json.loads(runner.invoke(cli, ["sources", "--json"]).output)
    assert [row["source"] for row in listed] == ["keep.md"]
    again = runner.invoke(cli, ["remove", str(docs / "seeds")])
    assert again.exit_code == 1 and "nothing was indexed at" in again.output


def test_cli_sources_piped_shows_whole_paths(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    name = "a-rather-long-folder-name/" * 4 + "with-an-even-longer-file-name-that-would-not-fit-in-80-columns.md"
    (docs / name).parent.mkdir(parents=True)
    (docs / name).write_text("# A long way down\n\nFibroblasts shape the tumour stroma.\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(docs)]).exit_code == 0
    listed = runner.invoke(cli, ["sources"])
    assert name in listed.output and "A long way down" in listed.output

