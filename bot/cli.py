"""citebot: cited answers from your documents, in the terminal, Telegram and Slack.

Index a folder with `citebot index DOCS/`, then `citebot ask "your question"`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.text import one_line
from retrieval import CitebotError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from bot.spaces import Spaces
    from retrieval import Pipeline, ProgressFn, RetrievalSettings, Scope, owner

# Every command imports what it uses when it runs: `citebot --help` then costs about a bare Python start, and
# `citebot ask` loads neither the chat platforms' libraries nor the document parsers (BENCHMARKS.md, "Startup").
logger = logging.getLogger(__name__)
_PIPED_WIDTH = 100_000  # columns: no file name or title is ever cut when the output goes to a file or a pipe
GAP_WORDINGS = 4  # wordings of a group `citebot gaps` shows


def _console(*, stderr: bool = False) -> Console:
    """Rich output; when piped, tables as wide as their rows rather than cut at 80 columns."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(highlight=False, stderr=stderr, width=None if stream.isatty() else _PIPED_WIDTH)


def _pipeline() -> Pipeline:
    from retrieval import Pipeline, RetrievalSettings

    return Pipeline(RetrievalSettings())


_space_option = click.option(
    "--space", "space_names", multiple=True, metavar="NAME",
    help="Only the documents of this space of CITEBOT_SPACES_FILE (repeatable); default: the spaces listing cli.")


def _space_names(names: tuple[str, ...]) -> Spaces:
    """The spaces file, after checking it names every space of ``names`` (a spaces file is needed for any)."""
    from bot.settings import BotSettings
    from bot.spaces import Spaces

    spaces = Spaces.load(BotSettings().spaces_file)
    if names and not spaces.configured:
        raise click.ClickException("--space needs a spaces file: set CITEBOT_SPACES_FILE")
    for name in names:
        if name not in spaces.names:
            raise click.ClickException(f"no space {name!r} in {spaces.path}; its spaces: {', '.join(spaces.names)}")
    return spaces


def _scope(pipeline: Pipeline, names: tuple[str, ...]) -> Scope | None:
    """The scope of the spaces ``names`` (or of those listing ``cli``), after checking the spaces file."""
    spaces = _space_names(names)
    if not spaces.configured:
        return None
    spaces.check(pipeline.folders())
    return spaces.scope(names or spaces.of("cli", "", ""))



def _user_error(exc: Exception) -> str | None:
    """The one line a mistake of the user's (a setting, an unreachable server) is shown as; None for a bug."""
    if isinstance(exc, CitebotError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return _data_dir_error(exc)
    if type(exc).__module__.startswith("pydantic") and type(exc).__name__ == "ValidationError":
        from bot.settings import BotSettings
        from retrieval import RetrievalSettings, setting_error

        return setting_error(exc, RetrievalSettings, BotSettings)  # type: ignore[arg-type]
    return None


def _data_dir_error(exc: OSError) -> str | None:
    """The line for a data dir that cannot be created or written (the default one, or CITEBOT_DATA_DIR's)."""
    from retrieval import RetrievalSettings

    data_dir = RetrievalSettings().data_dir.absolute()
    failed = Path(exc.filename).absolute()
    if failed != data_dir and data_dir not in failed.parents and failed not in data_dir.parents:
        return None
    return (f"cannot write the data dir {data_dir} ({exc.strerror or exc}): set CITEBOT_DATA_DIR to a folder "
            "you may write")


class _Commands(click.Group):
    """The command tree: a user's mistake ends in one line and exit code 1; ``-v`` shows the traceback too."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            message = _user_error(exc)
            if message is None or ctx.params.get("verbose"):
                raise
            raise click.ClickException(one_line(message)) from exc


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug) and tracebacks of errors.")
@click.version_option(package_name="citebot")
def cli(verbose: int) -> None:
    """citebot: cited answers from your documents.

    Settings come from the environment and a .env file (see .env.example).
    """
    from bot import logs
    from bot.settings import BotSettings

    logs.configure(verbose, BotSettings().secrets())


@contextmanager
def _progress_bar(*, shown: bool = True) -> Iterator[ProgressFn | None]:
    """A rich progress bar on stderr, as a sync progress callback (None when not ``shown``)."""
    if not shown:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_console(stderr=True), transient=True) as bar:
        task = bar.add_task("indexing", total=None)

        def progress(source: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"indexing {source[-40:]}")

        yield progress


def _sync(paths: list[Path], command: str, *, as_json: bool, quiet: bool) -> dict[str, Any]:
    """Bring the index in line with ``paths`` here, or in the bot serving the data dir, and print the report:
    its lines (each file that changed or was skipped), as JSON, or with ``quiet`` only the skipped files."""
    from retrieval import Pipeline, RetrievalSettings, SyncReport

    settings = RetrievalSettings()
    with _writing(settings, command, handoff=paths) as handed:
        if handed is None:
            with _progress_bar(shown=not (quiet or as_json)) as progress:
                handed = Pipeline(settings).index(paths, progress=progress).to_dict()
    if "error" in handed:
        raise click.ClickException(handed["error"])
    report = SyncReport.from_dict(handed)
    if as_json:
        click.echo(json.dumps(handed, indent=2, ensure_ascii=False))
    for line in report.lines() if not (quiet or as_json) else []:
        click.echo(one_line(line))  # file names and the reasons quoting them are anyone's bytes: no escapes
    for skipped in report.skipped if quiet else []:
        click.echo(one_line(f"skipped {skipped.source}: {skipped.reason}"), err=True)
    return handed


_REPORT_OPTIONS = (
    click.option("--json", "as_json", is_flag=True, help="Print the report (every file by what happened) as JSON."),
    click.option("-q", "--quiet", is_flag=True, help="No progress bar and no report; skipped files on stderr."),
)


def _report_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_REPORT_OPTIONS):
        command = option(command)
    return command


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@_report_options
def index(paths: tuple[Path, ...], as_json: bool, quiet: bool) -> None:
    """Index files and folders (incremental: only changed documents are embedded).

    Prints what was added, updated and removed. When a bot serves the same data dir, the bot does the indexing
    and this command shows its report.
    """
    _sync(list(paths), "citebot index", as_json=as_json, quiet=quiet)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_report_options
def remove(paths: tuple[Path, ...], as_json: bool, quiet: bool) -> None:
    """Forget indexed files or folders that no longer exist (deleted, moved, or on a drive that is gone)."""
    if present := [p for p in paths if p.exists()]:
        raise click.ClickException(f"{one_line(str(present[0]))} still exists: `citebot remove` forgets what is gone; "
                                   "delete or move it first, or index its folder again after deleting files in it")
    report = _sync(list(paths), "citebot remove", as_json=as_json, quiet=quiet)
    if not report["removed"]:
        raise click.ClickException(f"nothing was indexed at {', '.join(one_line(str(p)) for p in paths)}")


def _waiting(data_dir: Path) -> Callable[[owner.Holder], None]:
    from retrieval import WAITING_FOR_WRITER_NOTICE

    def say(holder: owner.Holder) -> None:
        click.echo(WAITING_FOR_WRITER_NOTICE.format(command=holder.command, pid=holder.pid, data_dir=data_dir),
                   err=True)

    return say


@contextmanager
def _writing(settings: RetrievalSettings, command: str, *, handoff: list[Path] | None = None,
             ) -> Iterator[dict[str, Any] | None]:
    """Hold the embedded store's write lock for the block, which gets None; or, when a bot serves the store
    and ``handoff`` paths are given, have the bot index them and give the block its report."""
    from retrieval import HANDED_TO_SERVER_NOTICE, STORE_SERVED_ERROR, owner

    if settings.chroma_host:
        yield None
        return
    lock, data_dir = owner.StoreLock(settings.data_dir), settings.data_dir
    while True:
        server = owner.acquire(lock, owner.INDEX, command, _waiting(data_dir), until=lambda h: h.role == owner.SERVE)
        if server is None:
            break
        if handoff is None:
            raise click.ClickException(STORE_SERVED_ERROR.format(command=server.command, pid=server.pid,
                                                                 data_dir=data_dir))
        click.echo(HANDED_TO_SERVER_NOTICE.format(command=server.command, pid=server.pid, data_dir=data_dir),
                   err=True)
        requests = owner.IndexRequests(data_dir)
        report = requests.wait(requests.submit(handoff), alive=lambda: not lock.is_free())
        if report is not None:
            yield report
            return
        # The bot stopped before it was done: index here.
    try:
        yield None
    finally:
        lock.release()


@cli.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the answer, citations and timings as JSON.")
@click.option("--no-stream", is_flag=True, help="Do not print the language model's sentences as they arrive.")
@_space_option
def ask(question: str, as_json: bool, no_stream: bool, space_names: tuple[str, ...]) -> None:
    """Answer a question from the indexed documents, with citations.

    With a language model configured, its verified sentences go to stderr as it writes them; the answer and its
    sources follow on stdout.
    """
    from bot import render
    from bot.streaming import Draft

    pipeline = _pipeline()
    if pipeline.store.count() == 0:
        raise click.ClickException("nothing is indexed yet: run `citebot index PATH...` first")
    scope = _scope(pipeline, space_names)
    draft = Draft()

    def show(sentence: str) -> None:
        click.echo(draft.add(sentence), nl=False, err=True)

    stream = pipeline.llm is not None and not (as_json or no_stream)
    answer = pipeline.ask(question, on_sentence=show if stream else None, scope=scope)
    if draft.text:
        click.echo("\n", err=True)  # ends the draft's line and sets the verified answer apart
    if as_json:
        click.echo(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render.to_terminal(answer))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@_space_option
def sources(as_json: bool, space_names: tuple[str, ...]) -> None:
    """List the indexed documents (of a space, with --space): path (relative to the folder indexed), title,
    identifiers, chunks."""
    from rich.table import Table
    from rich.text import Text

    pipeline = _pipeline()
    rows = pipeline.sources(scope=_scope(pipeline, space_names))
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    console = _console()
    if not rows:
        console.print("Nothing is indexed yet: run `citebot index PATH...`.")
        return
    table = Table("path", "title", "identifiers", "chunks")
    for row in rows:
        ids = ", ".join(f"{k.upper()} {row[k]}" for k in ("doi", "pmid", "pmcid") if k in row)
        # Text, not markup: a title like "[bold]" or an escape sequence in a file name is shown as plain text.
        table.add_row(*(Text(one_line(str(v))) for v in (row["source"], row.get("title", ""), ids)),
                      str(row["chunks"]))
    console.print(table)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def spaces(as_json: bool) -> None:
    """The document spaces of CITEBOT_SPACES_FILE: their folders, documents, chunks and conversations."""
    from rich.table import Table
    from rich.text import Text

    from bot.settings import BotSettings
    from bot.spaces import Spaces

    console = _console()
    spaces = Spaces.load(BotSettings().spaces_file)
    if not spaces.configured:
        console.print("No spaces file (CITEBOT_SPACES_FILE): every conversation answers from every document.")
        return
    folders = _pipeline().folders()
    spaces.check(folders)
    rows = []
    for space in spaces.listing():
        scope = spaces.scope([space.name])
        counts = [n for f, n in folders.items() if scope is None or scope.covers(f)]
        rows.append({"space": space.name, "folders": list(space.folders or ["(all)"]),
                     "documents": sum(d for d, _ in counts), "chunks": sum(c for _, c in counts),
                     "conversations": list(space.conversations)})
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table("space", "folders", "documents", "chunks", "conversations")
    for r in rows:
        table.add_row(r["space"], Text(one_line(", ".join(r["folders"]))), str(r["documents"]), str(r["chunks"]),
                      Text(one_line(", ".join(r["conversations"]))))
    console.print(table)


@cli.command(name="eval")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--mode", "modes", multiple=True, type=click.Choice(["dense", "keyword", "hybrid"]),
              help="Search mode(s) to score; all three by default.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def eval_(dataset: Path, modes: tuple[str, ...], as_json: bool) -> None:
    """Score retrieval on a BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels.tsv), and answers too
    when it holds answers.jsonl (gold answer spans)."""
    from rich.table import Table

    from retrieval import Pipeline, RetrievalSettings, answer_eval, evaluate

    try:
        data = evaluate.load_beir(dataset)
    except (OSError, KeyError, ValueError) as exc:
        raise click.ClickException(f"{dataset} is not a BEIR-layout folder: {exc}") from exc
    settings = evaluate.dataset_settings(data, RetrievalSettings())
    with _writing(settings, "citebot eval"), _progress_bar() as progress:
        pipeline = Pipeline(settings)
        report = pipeline.index_documents(f"beir:{data.name}", data.documents(), progress=progress)
    click.echo(f"Indexed {data.name}: {report.summary()}", err=True)
    results = [evaluate.run_queries(pipeline.searcher, data, m) for m in modes or ("dense", "keyword", "hybrid")]
    answers = {}
    if golds := answer_eval.load_answers(dataset):
        with _progress_bar() as progress:
            scores = answer_eval.score_answers(pipeline, data, golds, progress=progress)
        answers = {"all": scores.summary(), "tune": scores.summary("tune"), "held": scores.summary("held")}
    if as_json:
        click.echo(json.dumps({"dataset": data.name, "queries": len(data.queries),
                               "results": [r.to_dict() for r in results], **({"answers": answers} if answers else {})},
                              indent=2))
        return
    table = Table(title=f"{data.name}: {len(data.queries)} queries, {len(data.corpus)} documents")
    for column in ("mode", *results[0].metrics, "p50 ms", "p95 ms"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for r in results:
        table.add_row(r.mode, *(f"{v:.3f}" for v in r.metrics.values()), f"{r.p50:.1f}", f"{r.p95:.1f}")
    console = _console()
    console.print(table)
    if answers:
        console.print(_answers_table(data.name, answers))


def _answers_table(name: str, answers: dict[str, dict[str, float]]) -> Table:
    """Answer quality per fold: the share of answers holding the gold answer, length, declines."""
    from rich.table import Table

    table = Table(title=f"{name}: answers (unanswerable = asked of the index without the question's document)")
    rows = list(answers["all"])
    table.add_column("fold")
    for row in rows:
        table.add_column(row.replace("_", " "), justify="right")
    for fold, figures in answers.items():
        table.add_row(fold, *(f"{figures[r]:.0f}" if r.endswith(("questions", "words")) else f"{figures[r]:.3f}"
                              for r in rows))
    return table


@cli.command()
@click.option("--http", "http", is_flag=True,
              help="Serve Slack's HTTP requests (SLACK_SIGNING_SECRET) instead of Socket Mode (SLACK_APP_TOKEN).")
def slack(http: bool) -> None:
    """Run the Slack bot: Socket Mode by default, no public URL needed."""
    from bot import slack_adapter, slack_http
    from bot.app import serving
    from bot.settings import BotSettings

    settings = BotSettings()
    slack_adapter.check_settings(settings, http=http)
    slack_adapter.check_connection(settings)
    url = f"http://{settings.slack_http_host}:{settings.slack_http_port}{slack_http.EVENTS_PATH}"
    with serving(settings, "citebot slack", on_wait=_waiting(settings.retrieval.data_dir)) as core:
        click.echo(f"Starting the Slack bot ({f'HTTP mode on {url}' if http else 'Socket Mode'}); Ctrl+C stops it.",
                   err=True)
        slack_adapter.run(core, settings, http=http)


@cli.command()
def telegram() -> None:
    """Run the Telegram bot: long polling, or a webhook when CITEBOT_TELEGRAM_WEBHOOK_URL is set."""
    from bot import telegram_adapter
    from bot.app import serving
    from bot.settings import BotSettings

    settings = BotSettings()
    telegram_adapter.check_connection(settings)
    with serving(settings, "citebot telegram", on_wait=_waiting(settings.retrieval.data_dir)) as core:
        application = telegram_adapter.build_application(core, settings)
        click.echo("Starting the Telegram bot; Ctrl+C stops it.", err=True)
        telegram_adapter.run(application, settings)


@cli.command()
@click.option("--watch", "watch", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Keep this file or folder indexed as it changes (repeatable).")
@click.option("--slack-http", "slack_http", is_flag=True, help="Slack in HTTP mode instead of Socket Mode.")
def serve(watch: tuple[Path, ...], slack_http: bool) -> None:
    """Run the configured front ends (Telegram, Slack) in one process on one store."""
    import threading
    from contextlib import nullcontext, suppress

    from bot import slack_adapter, telegram_adapter
    from bot.app import serving
    from bot.settings import BotSettings

    settings = BotSettings()
    telegram_on, slack_on = settings.telegram_bot_token is not None, settings.slack_bot_token is not None
    if not (telegram_on or slack_on):
        raise click.ClickException("no front end is configured: set TELEGRAM_BOT_TOKEN and/or SLACK_BOT_TOKEN")
    if slack_on:
        slack_adapter.check_settings(settings, http=slack_http)
        slack_adapter.check_connection(settings)
    if telegram_on:
        telegram_adapter.check_connection(settings)
    names = " and ".join(n for n, on in (("Telegram", telegram_on), ("Slack", slack_on)) if on)
    with serving(settings, "citebot serve", on_wait=_waiting(settings.retrieval.data_dir), watch=watch) as core, \
            slack_adapter.running(settings, core, http=slack_http) if slack_on else nullcontext():
        click.echo(f"Serving {names}{' and watching ' + ', '.join(map(str, watch)) if watch else ''}; "
                   "Ctrl+C stops it.", err=True)
        if telegram_on:
            telegram_adapter.run(telegram_adapter.build_application(core, settings), settings)
        else:
            with suppress(KeyboardInterrupt):
                threading.Event().wait()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def stats(as_json: bool) -> None:
    """Questions asked in the chat bots (not `citebot ask`), answered vs declined, votes per platform, and the
    most down-voted answers."""
    import dataclasses
    from contextlib import closing

    from rich.table import Table
    from rich.text import Text

    from bot import render
    from bot.feedback import FeedbackStore
    from retrieval import RetrievalSettings

    with closing(FeedbackStore.open(RetrievalSettings())) as store:
        report = store.stats()
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report), indent=2, ensure_ascii=False))
        return
    console = _console()
    if not report.platforms:
        console.print("No questions asked in the chat bots yet (`citebot ask` is not counted).")
        return
    table = Table("platform", "questions", "answered", "declined", "👍", "👎")
    for p in report.platforms:
        table.add_row(p.platform, *(str(n) for n in (p.questions, p.answered, p.declined, p.up, p.down)))
    console.print(table)
    if report.most_down_voted:
        worst = Table("answer", "platform", "👎", "👍", "question", title="Most down-voted answers")
        for d in report.most_down_voted:
            worst.add_row(str(d.answer_id), d.platform, str(d.down), str(d.up), Text(render.shorten(d.question, 80)))
        console.print(worst)


@cli.command()
@click.option("--since", default=None, metavar="SPAN", help="Only those asked within SPAN: 7d, 12h, 2w (default: all).")
@click.option("--space", default=None, metavar="NAME",
              help="Only questions asked in conversations using this space of CITEBOT_SPACES_FILE.")
@click.option("--json", "as_json", is_flag=True, help="Print the groups as JSON.")
def gaps(since: str | None, space: str | None, as_json: bool) -> None:
    """What the documents are missing: questions declined, voted 👎 or escalated, grouped by meaning."""
    from contextlib import closing

    from rich.table import Table
    from rich.text import Text

    from bot.feedback import FeedbackStore
    from bot.gaps import find_gaps, parse_since
    from retrieval import RetrievalSettings

    try:
        span = parse_since(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    if space is not None:
        _space_names((space,))
    settings = RetrievalSettings()
    with closing(FeedbackStore.open(settings)) as store:
        found = find_gaps(store, settings, since=span, space=space)
    if as_json:
        click.echo(json.dumps([g.to_dict() for g in found], indent=2, ensure_ascii=False))
        return
    console = _console()
    if not found:
        console.print(f"No declined, down-voted or escalated questions{f' in the last {since}' if since else ''}.")
        return
    table = Table("asked", "question (other wordings)", "declined", "👎", "escalated", "person's answer",
                  title=f"{len(found)} groups of {sum(g.count for g in found)} questions")
    for g in found:
        shown = [one_line(v) for v in g.variants[:GAP_WORDINGS]] + (["…"] if len(g.variants) > GAP_WORDINGS else [])
        table.add_row(str(g.count), Text("\n  ".join(shown)), str(g.declined), str(g.down_voted), str(g.escalated),
                      "kept" if g.answered else "")
    console.print(table)


def main() -> None:
    """Console entry point (user-facing errors are one line: see ``_Commands``)."""
    cli()
