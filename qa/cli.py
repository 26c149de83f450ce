"""The `qa` command line: one boundary where domain errors become one-line messages.

Every command imports what it needs inside its function, so `qa --help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from qa import __version__
from qa.errors import InputError, QAError

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
        return int(float(value) * 1024 * 1024)
    except ValueError:
        raise QAError(f"QA_MAX_FILE_MB={value!r} is not a number") from None


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
        ctx.invoke(tui, corpus=corpus, index_dir=index_dir)


# --------------------------------------------------------------------------- corpus


@cli.group()
def corpus() -> None:
    """Inspect the article corpus."""


@corpus.command("check")
@_corpus_option
@_json_option
@click.pass_context
def corpus_check(ctx: click.Context, corpus: Path | None, as_json: bool) -> None:
    """Load the corpus and report articles, problems and duplicates.

    \b
    Example:
      qa corpus check --corpus ../shared/data/bbc --json
    """
    from qa.articles import load_corpus

    root = resolve_corpus(ctx, corpus)
    result = load_corpus(root, max_bytes=_max_file_bytes())
    groups = result.duplicate_groups()
    report = {
        "corpus": str(root),
        "files": result.files,
        "articles": len(result.articles),
        "unique": result.unique,
        "duplicates": len(result.articles) - result.unique,
        "duplicate_groups": groups,
        "problems": [p.as_dict() for p in result.problems],
    }
    if as_json:
        _print_json(report)
        return
    from qa.text import one_line

    click.echo(f"corpus      {one_line(str(root))}")
    click.echo(f"files       {result.files:,}")
    click.echo(f"articles    {len(result.articles):,}")
    click.echo(f"unique      {result.unique:,}")
    click.echo(f"duplicates  {report['duplicates']:,}")
    click.echo(f"problems    {len(result.problems):,}")
    for problem in result.problems:
        click.echo(f"  {one_line(str(problem))}")
    if groups:
        click.echo("duplicate texts:")
        for refs in groups:
            click.echo("  " + " = ".join(one_line(ref) for ref in refs))


@corpus.command("show")
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@_json_option
def corpus_show(path: Path, as_json: bool) -> None:
    """Show what qa extracts from one file: title, byline, date, source and paragraphs.

    Use it to check an import (a saved web page, a Markdown file) before indexing it; the
    paragraph numbers are the ones citations use.

    \b
    Example:
      qa corpus show ~/Downloads/story.html
    """
    from qa.articles import load_file
    from qa.text import one_line, terminal_safe

    articles, problems = load_file(path, path.name, max_bytes=_max_file_bytes())
    if as_json:
        _print_json(
            {
                "file": str(path),
                "articles": [
                    {
                        "ref": a.ref, "title": a.title, "byline": a.byline,
                        "published": a.published, "source": a.source, "url": a.url,
                        "categories": list(a.categories),
                        "paragraphs": [a.body[s:e] for s, e in a.paragraphs],
                    }
                    for a in articles
                ],
                "problems": [p.as_dict() for p in problems],
            }
        )  # fmt: skip
    else:
        for number, article in enumerate(articles):
            if number:
                click.echo("")
            fields = [
                ("title", article.title),
                ("byline", article.byline),
                ("date", article.published),
                ("source", article.source),
                ("url", article.url),
                ("categories", ", ".join(article.categories)),
            ]
            if article.record is not None:
                fields.insert(0, ("record", article.record))
            for name, value in fields:
                click.echo(f"{name:<11} {one_line(value) if value else '-'}")
            for paragraph, (start, end) in enumerate(article.paragraphs, 1):
                click.echo(f"[{paragraph}] {terminal_safe(article.body[start:end])}")
        for problem in problems:
            click.echo(f"qa: {one_line(str(problem))}", err=True)
    if not articles:
        raise InputError(f"{path}: no article in this file")


# --------------------------------------------------------------------------- index


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
        f"index {verb} in {report.seconds:.1f} s: {report.articles:,} articles, "
        f"{report.chunks:,} chunks ({report.added:,} added, {report.changed:,} changed, "
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
    from qa.embedding import BACKENDS, DEFAULT_BACKEND

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
    from qa.cluster import RayEmbedder, import_ray

    import_ray()  # a clear error now, before the corpus is scanned
    return RayEmbedder(address=ray_address, workers=ray_workers)


@cli.group()
def index() -> None:
    """Build, update and inspect the search index."""


@index.command("build")
@_corpus_option
@_index_option
@click.option(
    "--model",
    default=None,
    help="sentence-transformers model name or path [default: the bundled all-MiniLM-L6-v2].",
)
@_backend_option
@click.option(
    "--chunk-tokens",
    type=click.IntRange(16, 4096),
    default=None,
    help="Chunk size in tiktoken tokens. [default: 200]",
)
@click.option(
    "--faiss",
    "faiss_factory",
    default=None,
    metavar="FACTORY",
    help='FAISS factory string, e.g. "HNSW32" or "IVF1024,Flat". [default: Flat]',
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 4096),
    default=None,
    help="Texts per model call. [default: the backend's best on this machine's measurements]",
)
@_engine_options
@_yes_option
@_json_option
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.pass_context
def index_build(
    ctx: click.Context,
    corpus: Path | None,
    index_dir: Path | None,
    model: str | None,
    backend: str | None,
    chunk_tokens: int | None,
    faiss_factory: str | None,
    batch_size: int | None,
    engine: str,
    ray_address: str | None,
    ray_workers: int | None,
    yes: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Build the index from scratch (the previous one stays usable until it is done).

    The corpus defaults to the one the index was built from (./corpus for a new index).

    \b
    Examples:
      qa index build
      qa index build --corpus ../shared/data/bbc --index /tmp/bbc-index
      qa index build --chunk-tokens 128 --faiss HNSW32
      qa index build --backend torch
      qa index build --engine ray --ray-address auto
    """
    from qa.chunking import ChunkSettings
    from qa.embedding import encoder_factory

    target = resolve_index(ctx, index_dir)
    root = resolve_corpus(ctx, corpus, target)
    chunking = ChunkSettings(max_tokens=chunk_tokens) if chunk_tokens else None
    report = _sync(
        root,
        target,
        encoder_factory(model, backend),
        quiet=quiet or as_json,
        yes=yes,
        full=True,
        chunking=chunking,
        faiss_factory=faiss_factory,
        batch_size=batch_size,
        embedder=_embedder(engine, ray_address, ray_workers),
    )
    _print_report(report, as_json, quiet)


@index.command("update")
@_corpus_option
@_index_option
@click.option(
    "--chunk-tokens",
    type=click.IntRange(16, 4096),
    default=None,
    help="Refuse to run unless the index uses this chunk size.",
)
@_engine_options
@_yes_option
@_json_option
@click.option("-q", "--quiet", is_flag=True, help="Print only when something changed.")
@click.pass_context
def index_update(
    ctx: click.Context,
    corpus: Path | None,
    index_dir: Path | None,
    chunk_tokens: int | None,
    engine: str,
    ray_address: str | None,
    ray_workers: int | None,
    yes: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Embed only new and changed articles; drop removed ones.

    Articles are matched by path and content hash; renamed files are not embedded again.
    Without an index, builds one. The corpus defaults to the one the index was built from.

    \b
    Example:
      qa index update --json
    """
    from qa.chunking import ChunkSettings
    from qa.embedding import encoder_factory

    target = resolve_index(ctx, index_dir)
    root = resolve_corpus(ctx, corpus, target)
    chunking = None
    if chunk_tokens:
        chunking = ChunkSettings(max_tokens=chunk_tokens)
    report = _sync(
        root,
        target,
        encoder_factory(None),
        quiet=quiet or as_json,
        yes=yes,
        chunking=chunking,
        embedder=_embedder(engine, ray_address, ray_workers),
    )
    _print_report(report, as_json, quiet)


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.1f} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    return f"{size} B"


@index.command("status")
@_index_option
@_json_option
@click.pass_context
def index_status(ctx: click.Context, index_dir: Path | None, as_json: bool) -> None:
    """Show what the index holds and how it was built.

    \b
    Example:
      qa index status --json
    """
    from qa.index import IndexReader

    with IndexReader(resolve_index(ctx, index_dir)) as reader:
        status = reader.status()
        status["integrity"] = reader.check()
    if as_json:
        _print_json(status)
        if status["integrity"] != "ok":
            ctx.exit(1)
        return
    for key, value in status.items():
        shown = _human_size(value) if key == "size_bytes" else value
        if isinstance(shown, int):
            shown = f"{shown:,}"
        click.echo(f"{key.replace('_bytes', ''):<19} {shown}")
    if status["integrity"] != "ok":
        ctx.exit(1)


@cli.command("add")
@click.argument("paths", nargs=-1, required=True)
@_corpus_option
@_index_option
@click.option(
    "--to",
    "subdir",
    default="",
    metavar="SUBDIR",
    help="Sub-folder of the corpus to copy into. [default: the corpus root]",
)
@_json_option
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.pass_context
def add(
    ctx: click.Context,
    paths: tuple[str, ...],
    corpus: Path | None,
    index_dir: Path | None,
    subdir: str,
    as_json: bool,
    quiet: bool,
) -> None:
    """Copy article files into the corpus and update the index in one step.

    The corpus defaults to the one the index was built from (./corpus for a new index).

    Files that hold no usable article are not copied; an existing corpus file with other
    content is never overwritten.

    \b
    Example:
      qa add ~/Downloads/story.html notes/interview.md --to imported
    """
    from qa.adding import copy_into_corpus, corpus_folder
    from qa.embedding import encoder_factory
    from qa.errors import IndexBusyError
    from qa.index import write_lock
    from qa.text import one_line

    index_target = resolve_index(ctx, index_dir)
    root = resolve_corpus(ctx, corpus, index_target)
    try:
        target_dir = corpus_folder(root, subdir)
    except InputError as exc:
        raise click.UsageError(one_line(str(exc))) from None
    # Copying files in while another process writes the index would leave them copied but
    # not indexed: find out first (the lock is taken again by the update below).
    with write_lock(index_target):
        pass
    failures = 0
    copied = 0
    for added in copy_into_corpus(paths, target_dir, _max_file_bytes()):
        shown = one_line(added.source)
        if added.status == "copied":
            copied += 1
            if not (as_json or quiet):
                click.echo(f"added {one_line(str(added.dest))} ({added.articles} article(s))",
                           err=True)  # fmt: skip
            continue
        failures += added.status == "failed"
        click.echo(f"qa: {shown}: {one_line(added.reason)}", err=True)
    if failures and not copied:
        if as_json:
            _print_json({"copied": 0, "failed": failures, "index": None})
        ctx.exit(1)  # nothing new: the index is left alone
    try:
        report = _sync(root, index_target, encoder_factory(None), quiet=quiet or as_json)
    except IndexBusyError as exc:
        if copied:
            raise IndexBusyError(
                f"{exc}; {copied} file(s) were copied into {root} but not indexed yet: "
                f"run `qa index update` when it is free"
            ) from None
        raise
    if as_json:
        _print_json({"copied": copied, "failed": failures, "index": report.as_dict()})
    else:
        _print_report(report, False, quiet)
    if failures:
        ctx.exit(1)


# --------------------------------------------------------------------------- answers


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


def render_result(result: Any, color: bool) -> str:
    """A `Result` as readable text; article text is made inert for the terminal."""
    from qa.answers import citation_label, confidence_words
    from qa.text import terminal_safe

    def cite(number: int, citation: Any) -> str:
        return f"   [{number}] {terminal_safe(citation_label(citation))}"

    lines = []
    if result.query != result.question:
        lines.append(f"(searched: {terminal_safe(result.query)})")
    if result.not_found:
        lines.append(result.not_found_message)
        if result.related:
            lines.append("Related passages:")
            for number, citation in enumerate(result.related, 1):
                lines.append(cite(number, citation))
                excerpt = " ".join(citation.quote.split())
                excerpt = excerpt[:240] + ("…" if len(excerpt) > 240 else "")
                lines.append(f"       {terminal_safe(excerpt)}")
        return "\n".join(lines)
    number = 0
    for index, answer in enumerate(result.answers, 1):
        text = answer.text
        if answer.span is not None and answer.span_start is not None:
            before = terminal_safe(text[: answer.span_start])
            span = terminal_safe(answer.span)
            after = terminal_safe(text[answer.span_start + len(answer.span) :])
            shown = click.style(span, bold=True, underline=True) if color else f"**{span}**"
            body = before + shown + after
        else:
            body = terminal_safe(text)
        markers = " ".join(f"[{number + i}]" for i in range(1, len(answer.citations) + 1))
        lines.append(f"{index}. {body} {markers}  ({confidence_words(answer.score)})")
        for citation in answer.citations:
            number += 1
            lines.append(cite(number, citation))
    return "\n".join(lines)


@cli.command("ask")
@click.argument("question", required=False)
@_index_option
@click.option(
    "-n",
    "answers",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Distinct answers to show at most.",
)
@click.option(
    "-k",
    "passages",
    type=click.IntRange(1, 200),
    default=20,
    show_default=True,
    help="Passages to retrieve.",
)
@_filter_options
@_json_option
@click.pass_context
def ask(
    ctx: click.Context,
    question: str | None,
    index_dir: Path | None,
    answers: int,
    passages: int,
    since: str | None,
    until: str | None,
    source: str | None,
    as_json: bool,
) -> None:
    """Answer one question with sentences quoted from the corpus, and their citations.

    QUESTION `-` (or none, with a pipe) reads the question from standard input.

    \b
    Examples:
      qa ask "Who led the purge of North Korean officers?"
      qa ask "What did the central bank decide?" --since 2006-01-01 --source wikinews --json
      echo "Who won the election?" | qa ask
    """
    from qa.engine import Engine

    if question in (None, "-"):
        if question is None and sys.stdin.isatty():
            raise click.UsageError("give a QUESTION (or - to read it from standard input)")
        question = sys.stdin.read()
    if not question.strip():
        raise QAError("the question is empty")
    filters = _filters(since, until, source)
    engine = Engine.open(resolve_index(ctx, index_dir))
    try:
        result = engine.ask(question, n=answers, k=passages, filters=filters)
    finally:
        engine.close()
    if as_json:
        _print_json(result.as_dict())
    else:
        tty = sys.stdout.isatty()
        text = render_result(result, color=tty)
        click.echo(_wrap(text) if tty else text)


def _wrap(text: str) -> str:
    """Lines folded to the terminal's width at spaces (never inside a word), continuation
    lines indented like the line they continue."""
    import re
    import shutil
    import textwrap

    width = max(shutil.get_terminal_size((100, 24)).columns - 1, 40)
    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        lead = re.match(r"\s*(?:\d+\.\s|\[\d+\]\s)?", line)
        indent = " " * len(lead.group()) if lead else ""
        out.append(
            textwrap.fill(
                line,
                width=width,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(out)


@cli.command("batch")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@_index_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Output file. [default: standard output]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", "md"]),
    default=None,
    help="Output format. [default: from the output's extension, else jsonl]",
)
@click.option("--resume", is_flag=True, help="Skip ids already answered in the output file.")
@click.option("-n", "answers", type=click.IntRange(1, 20), default=3, show_default=True)
@_filter_options
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.pass_context
def batch(
    ctx: click.Context,
    file: Path,
    index_dir: Path | None,
    output: Path | None,
    fmt: str | None,
    resume: bool,
    answers: int,
    since: str | None,
    until: str | None,
    source: str | None,
    quiet: bool,
) -> None:
    """Answer a file of questions; one record per question, in input order.

    FILE is plain text (one question a line), JSONL (`question`, optional `id`) or CSV (a
    `question` column, optional `id`). A question that fails gets an `error` field and the
    batch goes on; the exit code is 1 if any failed.

    \b
    Examples:
      qa batch questions.txt -o answers.jsonl
      qa batch questions.csv -o answers.csv --resume
      qa batch questions.jsonl --format md > answers.md
    """
    from qa.batch import Writer, check_output, done_ids, drop_torn_tail, read_questions, run_batch
    from qa.engine import Engine
    from qa.index import Progress

    if fmt is None:
        suffix = output.suffix.lower().lstrip(".") if output else ""
        fmt = {"csv": "csv", "md": "md", "markdown": "md"}.get(suffix, "jsonl")
    if resume and output is None:
        raise QAError("--resume needs -o OUT (the file whose ids are skipped)")
    index_target = resolve_index(ctx, index_dir)
    if output is not None:
        check_output(output, file, [index_target])
    questions = read_questions(file)
    if resume and output is not None and drop_torn_tail(output, fmt) and not quiet:
        click.echo(f"qa: {output}: dropped a half-written last record; asking it again", err=True)
    skip = done_ids(output, fmt) if resume and output else set()
    filters = _filters(since, until, source)
    engine = Engine.open(index_target)
    append = bool(resume and output and output.exists() and output.stat().st_size > 0)
    # A new output is written to a temporary file and renamed over OUT at the end, so an
    # existing OUT is never truncated by a batch that then fails; --resume appends in place.
    existed = output is not None and output.exists()
    temp = None
    if output is not None and not append:
        temp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    path = temp or output
    handle = path.open("a" if append else "w", encoding="utf-8", newline="") if path else None
    finished = False
    writer = Writer(handle or sys.stdout, fmt, header=not append)
    try:
        # progress goes to stderr: shown on a terminal even when the answers go to stdout
        with ProgressView(quiet or (output is None and not sys.stderr.isatty())) as view:
            answered, failed = run_batch(
                questions,
                lambda q: engine.ask(q, n=answers, filters=filters),
                writer,
                skip,
                progress=lambda done, total: view(Progress("questions", done, total)),
            )
        finished = True
    except KeyboardInterrupt:
        if output is not None and (append or not existed):
            click.echo(
                f"\nqa: interrupted after {writer.written} record(s) written to {output}; "
                "run the same command with --resume to finish",
                err=True,
            )
        raise
    finally:
        engine.close()
        if handle is not None:
            handle.close()
        if temp is not None and output is not None:
            if finished or not existed:
                os.replace(temp, output)  # an unfinished new file is kept for --resume
            else:
                temp.unlink(missing_ok=True)
                click.echo(f"qa: {output} was left as it was", err=True)
    if not quiet:
        skipped = f", {len(skip & {q.id for q in questions})} already done" if skip else ""
        click.echo(f"{answered} answered, {failed} failed{skipped}", err=True)
    if failed:
        ctx.exit(1)


@cli.command("verify")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@_corpus_option
@_index_option
@_json_option
@click.option("-v", "--verbose", is_flag=True, help="List verified citations too.")
@click.pass_context
def verify_command(
    ctx: click.Context,
    file: Path,
    corpus: Path | None,
    index_dir: Path | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Re-check every citation in an answers file against the corpus as it is now.

    FILE is `qa ask --json` output, a `qa batch` output (JSONL, CSV or Markdown) or a chat
    export. Each citation is verified (the article still holds exactly the quoted text at
    those characters), changed or missing; the exit code is 1 unless all are verified.

    \b
    Examples:
      qa batch questions.txt -o answers.jsonl && qa verify answers.jsonl
      qa verify qa-conversation-20261201-101500.md --corpus corpus
    """
    from qa.text import one_line
    from qa.verify import STATUSES, VERIFIED, verify

    root = resolve_corpus(ctx, corpus, resolve_index(ctx, index_dir))
    checks = verify(file, root)
    counts = {status: sum(c.status == status for c in checks) for status in STATUSES}
    if as_json:
        _print_json({"file": str(file), "corpus": str(root), **counts,
                     "citations": [c.as_dict() for c in checks]})  # fmt: skip
    else:
        for check in checks:
            if verbose or check.status != VERIFIED:
                where = f"{check.ref} chars {check.char_start}-{check.char_end}"
                detail = f": {check.detail}" if check.detail else ""
                click.echo(f"{check.status:<9} {one_line(where)}{detail}")
        click.echo(
            f"{len(checks)} citation(s): {counts['verified']} verified, {counts['changed']} "
            f"changed, {counts['missing']} missing"
        )
    if not checks:
        raise InputError(f"{file}: no citations found (is it a qa answers file?)")
    if counts["verified"] != len(checks):
        ctx.exit(1)


@cli.command("eval")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Index to ask (built there from a SQuAD file if empty). [default: a temporary index "
    "built from the SQuAD file; a JSONL file needs one]",
)
@_backend_option
@click.option("--sample", type=click.IntRange(1), default=None, help="Ask N random questions.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--half",
    type=click.Choice(["all", "fit", "heldout"]),
    default="all",
    show_default=True,
    help="Articles to ask about: weights are fitted on 'fit'.",
)
@_json_option
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.pass_context
def eval_command(
    ctx: click.Context,
    file: Path,
    index_dir: Path | None,
    backend: str | None,
    sample: int | None,
    seed: int,
    half: str,
    as_json: bool,
    quiet: bool,
) -> None:
    """Measure retrieval and answers on a SQuAD-format file (v1.1 or v2.0, zipped or not)
    or on a JSONL file of questions.

    Without --index a SQuAD file's articles are indexed into a temporary index; with --index
    DIR, DIR is used if it holds an index, else built there and kept. --backend applies to an
    index built here; an existing index keeps its own.

    A JSONL file holds one `{"question", "answers": [...], "article": "PATH"}` record a line
    (`article`, optional, is the end of the path of the article that answers it; `answers`
    empty for a question the corpus cannot answer) and needs --index: the index of the
    corpus the questions are about.

    Reports recall@k, answer (sentence) accuracy, span exact match and F1 (SQuAD's
    normalisation), no-answer accuracy, a calibration table (confidence bins against
    accuracy) and latency split into retrieval and reading.

    \b
    Examples:
      qa eval ../shared/data/squad/dev-v1.1.json.zip --index /tmp/squad-index --json
      qa eval tests/data/bbc_paraphrased.jsonl --index /tmp/bbc-index
    """
    from qa.evaluate import evaluate_file

    if index_dir is None and not (quiet or as_json):
        click.echo(f"qa: indexing {file.name}'s articles into a temporary index", err=True)
    with ProgressView(quiet or as_json) as view:
        metrics = evaluate_file(
            file, index_dir, backend=backend, half=half, sample=sample, seed=seed, progress=view
        )
    if as_json:
        _print_json(metrics)
        return
    heldout = metrics.pop("heldout", None)
    _echo_metrics(metrics)
    if heldout:
        click.echo("\nheld-out half (articles nothing was fitted on):")
        _echo_metrics(heldout)


def _echo_metrics(metrics: dict[str, Any]) -> None:
    calibration = metrics.pop("calibration")
    for key, value in metrics.items():
        click.echo(f"{key:<28} {value}")
    click.echo("calibration (confidence bin: questions, mean confidence, accuracy)")
    for row in calibration:
        click.echo(
            f"  {row['bin']}: {row['questions']:>6}  {row['mean_confidence']}  {row['accuracy']}"
        )


# --------------------------------------------------------------------------- terminal UI


@cli.command("tui")
@_corpus_option
@_index_option
@click.option("--no-save", is_flag=True, help="Do not keep this session's conversations.")
@click.pass_context
def tui(
    ctx: click.Context, corpus: Path | None, index_dir: Path | None, no_save: bool = False
) -> None:
    """Open the chat in the terminal (the default command).

    Without an index, offers to build one from the corpus (by default the one the index was
    built from, else ./corpus). Conversations are kept in
    $XDG_DATA_HOME/qa (or $QA_DATA_DIR).

    \b
    Example:
      qa tui --index index --corpus corpus
    """
    if not sys.stdout.isatty() or not sys.stdin.isatty():
        raise QAError("the terminal UI needs a terminal; see qa --help for the other commands")
    from qa.tui.app import create_app

    target = resolve_index(ctx, index_dir)
    app = create_app(target, resolve_corpus(ctx, corpus, target), save_conversations=not no_save)
    app.run()


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: QAError -> `qa: error: ...` and exit 1, never a traceback."""
    try:
        code = cli.main(args=argv, prog_name="qa", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("\nqa: interrupted; nothing was changed by the unfinished step", err=True)
        code = 130
    except QAError as exc:
        click.echo(f"qa: error: {exc}", err=True)
        code = exc.exit_code
    except BrokenPipeError:
        # `qa ask ... | head`: the reader went away; that is not an error worth a traceback.
        sys.stderr.close()
        code = 0
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
