"""What every command shares: the `qa` group, the common options, resolving the corpus and
the index, the progress view and running `sync_index`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from qa import __version__
from qa.errors import QAError

F = TypeVar("F", bound=Callable[..., Any])


DEFAULT_CORPUS = "corpus"


DEFAULT_INDEX = "index"


def _corpus_option(func: F) -> F:
    return click.option(
        "--corpus",
        type=click.Path(path_type=Path),
        default=None,
        help=f"Folder (or file) of articles. [env QA_CORPUS; default ./{DEFAULT_CORPUS}]",
    )(func)


def _index_option(func: F) -> F:
    return click.option(
        "--index",
        "index_dir",
        type=click.Path(path_type=Path),
        default=None,
        help=f"Index folder. [env QA_INDEX; default ./{DEFAULT_INDEX}]",
    )(func)


def _json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(func)


def resolve_corpus(ctx: click.Context, value: Path | None, index_dir: Path | None = None) -> Path:
    """--corpus on the subcommand, else on `qa` itself, else QA_CORPUS, else (for a command
    that changes the index at `index_dir`) the corpus that index was built from, else
    ./corpus."""
    explicit = value or ctx.find_root().params.get("corpus") or os.environ.get("QA_CORPUS")
    if explicit:
        return Path(explicit)
    stored = _stored_corpus(index_dir) if index_dir is not None else None
    return stored or Path(DEFAULT_CORPUS)


def resolve_index(ctx: click.Context, value: Path | None) -> Path:
    """--index on the subcommand, else on `qa` itself, else QA_INDEX, else ./index."""
    root_value = ctx.find_root().params.get("index_dir")
    return Path(value or root_value or os.environ.get("QA_INDEX") or DEFAULT_INDEX)


def _max_file_bytes() -> int:
    from qa.articles import DEFAULT_MAX_BYTES

    value = os.environ.get("QA_MAX_FILE_MB")
    if not value:
        return DEFAULT_MAX_BYTES
    try:
        megabytes = float(value)
    except ValueError:
        raise QAError(f"QA_MAX_FILE_MB={value!r} is not a number") from None
    # an article is read whole into memory: a limit past what a machine holds is a typo
    if not 0 < megabytes <= MAX_FILE_MB:
        raise QAError(
            f"QA_MAX_FILE_MB={value!r} must be a number of megabytes above 0 and at most "
            f"{MAX_FILE_MB:,}"
        )
    return int(megabytes * 1024 * 1024)


MAX_FILE_MB = 4096
"""The largest QA_MAX_FILE_MB accepted."""


def _print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))


@click.group(
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@_corpus_option
@_index_option
@click.version_option(__version__, "-V", "--version", prog_name="qa")
@click.pass_context
def cli(ctx: click.Context, corpus: Path | None, index_dir: Path | None) -> None:
    """Ask questions about a corpus of news articles; answers are quoted, with citations.

    Without a command, opens the chat in the terminal.
    """
    if ctx.invoked_subcommand is None:
        tui = cli.get_command(ctx, "tui")  # qa.cli.asking registers it
        assert tui is not None
        ctx.invoke(tui, corpus=corpus, index_dir=index_dir)


class ProgressView:
    """Renders core `Progress` reports: a live bar on a terminal, plain lines otherwise."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty() and not quiet
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._started: dict[str, float] = {}
        self._last_line = 0.0

    def __enter__(self) -> ProgressView:
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description:<15}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, report: Any) -> None:
        import time

        if self.quiet:
            return
        now = time.monotonic()
        started = self._started.setdefault(report.stage, now)
        from qa.labels import STAGES

        label, unit = STAGES.get(report.stage, (report.stage, ""))
        elapsed = now - started
        rate = report.done / elapsed if elapsed > 0.5 and report.done else 0.0
        rate_text = f"{rate:,.1f} {unit}/s" if rate and unit else ""
        if self._bar is not None:
            task = self._tasks.get(report.stage)
            if task is None:
                task = self._bar.add_task(label, total=report.total, rate="")
                self._tasks[report.stage] = task
            self._bar.update(task, completed=report.done, total=report.total, rate=rate_text)
            return
        finished = report.done >= report.total
        if not finished and now - self._last_line < 5:
            return
        self._last_line = now
        eta = ""
        if rate and not finished:
            eta = f", ETA {(report.total - report.done) / rate:,.0f} s"
        counts = f" {report.done:,}/{report.total:,} {unit}" if unit else ""
        extra = f" ({rate_text}{eta})" if rate_text else ""
        click.echo(f"{label}:{counts}{extra}" + (" done" if finished else ""), err=True)


def _print_report(report: Any, as_json: bool, quiet: bool) -> None:
    if as_json:
        _print_json(report.as_dict())
        return
    if quiet and not (report.added or report.changed or report.removed or report.renamed):
        return
    verb = "built" if report.built else "updated"
    click.echo(
        f"index {verb} in {report.seconds:.1f} s: {report.article_count:,} articles, "
        f"{report.chunk_count:,} chunks ({report.added:,} added, {report.changed:,} changed, "
        f"{report.removed:,} removed, {report.renamed:,} renamed, {report.unchanged:,} "
        f"unchanged; {report.embedded_chunks:,} chunks embedded)",
        err=quiet,
    )
    if report.skipped and not quiet:
        click.echo(f"{len(report.skipped)} file problem(s):", err=True)
        from qa.text import one_line

        for item in report.skipped:
            line = f"{item['path']}: {item['reason']} ({item['action']})"
            click.echo(f"  {one_line(line)}", err=True)


def _yes_option(func: F) -> F:
    return click.option(
        "-y",
        "--yes",
        is_flag=True,
        help="Remove articles without asking, even when most of the index would go.",
    )(func)


def _confirm_removal(yes: bool) -> Callable[[int, int], bool]:
    """Asks before an update removes more than half of an index: on a terminal, a prompt;
    elsewhere (scripts, cron) the update is refused unless --yes was given."""

    def confirm(removed: int, total: int) -> bool:
        if yes:
            return True
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            return False
        return click.confirm(
            f"This removes {removed:,} of the {total:,} articles in the index. Go on?",
            default=False,
            err=True,
        )

    return confirm


def _sync(
    root: Path,
    target: Path,
    factory: Callable[[Any], Any],
    *,
    quiet: bool,
    yes: bool = False,
    **options: Any,
) -> Any:
    """`sync_index` as every command runs it: a progress view (unless quiet), the size limit,
    and the question before removing most of the index."""
    from qa.index import sync_index

    with ProgressView(quiet) as view:
        return sync_index(
            root,
            target,
            factory,
            progress=view,
            max_bytes=_max_file_bytes(),
            confirm_removal=_confirm_removal(yes),
            **options,
        )


def _stored_corpus(index_dir: Path) -> Path | None:
    from qa.index import IndexReader, index_exists, resolve_stored_corpus

    if not index_exists(index_dir):
        return None
    try:
        with IndexReader(index_dir) as reader:
            stored = reader.meta.get("corpus")
    except QAError:
        return None
    return resolve_stored_corpus(stored, index_dir) if stored else None


def _backend_option(func: Any) -> Any:
    from qa.encoders import BACKENDS, DEFAULT_BACKEND

    return click.option(
        "--backend",
        type=click.Choice(BACKENDS),
        default=None,
        help="Encoder backend: torch, onnx (ONNX Runtime, fp32) or onnx-int8 (quantised, "
        f"fastest). [default: {DEFAULT_BACKEND}]",
    )(func)


def _engine_options(func: Any) -> Any:
    func = click.option(
        "--ray-workers",
        type=click.IntRange(1, 100_000),
        default=None,
        help="Embedding actors on the cluster. [default: one per CPU of the cluster]",
    )(func)
    func = click.option(
        "--ray-address",
        default=None,
        metavar="auto|HOST:PORT",
        help="The Ray cluster to join (with --engine ray). [default: start a local Ray]",
    )(func)
    return click.option(
        "--engine",
        type=click.Choice(["local", "ray"]),
        default="local",
        show_default=True,
        help="Where chunks are embedded: in this process, or on a Ray cluster "
        "(pip install 'qa[cluster]'; README: Running on a cluster).",
    )(func)


def _embedder(engine: str, ray_address: str | None, ray_workers: int | None) -> Any:
    if engine == "local":
        if ray_address or ray_workers:
            raise click.UsageError("--ray-address and --ray-workers go with --engine ray")
        return None
    from qa.cluster import RayEmbedder, check_reachable, import_ray

    import_ray()  # clear errors now, before the corpus is scanned
    check_reachable(ray_address)
    return RayEmbedder(address=ray_address, workers=ray_workers)


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.1f} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    return f"{size} B"


def _filter_options(func: F) -> F:
    func = click.option(
        "--source", default=None, help="Only articles whose source, path or URL contains TEXT."
    )(func)
    func = click.option(
        "--until",
        default=None,
        metavar="DATE",
        help="Only articles published on or before DATE (YYYY[-MM[-DD]]).",
    )(func)
    func = click.option(
        "--since",
        default=None,
        metavar="DATE",
        help="Only articles published on or after DATE (YYYY[-MM[-DD]]).",
    )(func)
    return func


def _filters(since: str | None, until: str | None, source: str | None) -> Any:
    from qa.retrieval import parse_filters

    return parse_filters(since, until, source, option_prefix="--")
