"""citebot: cited answers from your documents, in the terminal, Telegram and Slack.

Index a folder with `citebot index DOCS/`, then `citebot ask "your question"`.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot import render
from retrieval.errors import CitebotError
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings

logger = logging.getLogger(__name__)
console = Console(highlight=False)


def _pipeline() -> Pipeline:
    return Pipeline(RetrievalSettings())


@click.group()
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="citebot")
def cli(verbose: int) -> None:
    """citebot: cited answers from your documents.

    Settings come from the environment and a .env file (see .env.example).
    """
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "bm25s", "chromadb"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def index(paths: tuple[Path, ...]) -> None:
    """Index files and folders (incremental: only changed documents are embedded)."""
    pipeline = _pipeline()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("indexing", total=None)

        def progress(source: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"indexing {source[-40:]}")

        report = pipeline.index(paths, progress=progress)
    click.echo(f"Indexed: {report.summary()}")
    for skipped in report.skipped:
        click.echo(f"  skipped {skipped.source}: {skipped.reason}")
    for source in report.removed:
        click.echo(f"  removed {source}")


@cli.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the answer, citations and timings as JSON.")
def ask(question: str, as_json: bool) -> None:
    """Answer a question from the indexed documents, with citations."""
    pipeline = _pipeline()
    if pipeline.store.count() == 0:
        raise click.ClickException("nothing is indexed yet: run `citebot index PATH...` first")
    answer = pipeline.ask(question)
    if as_json:
        click.echo(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render.to_terminal(answer))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def sources(as_json: bool) -> None:
    """List the indexed documents."""
    rows = _pipeline().sources()
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        console.print("Nothing is indexed yet: run `citebot index PATH...`.")
        return
    table = Table("source", "title", "identifiers", "chunks")
    for row in rows:
        ids = ", ".join(f"{k.upper()} {row[k]}" for k in ("doi", "pmid", "pmcid") if k in row)
        table.add_row(row["source"], row.get("title", ""), ids, str(row["chunks"]))
    console.print(table)


def main() -> None:
    """Console entry point: user-facing errors become one clear line, not a traceback."""
    try:
        cli(standalone_mode=True)
    except CitebotError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
