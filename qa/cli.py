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


def resolve_corpus(ctx: click.Context, value: Path | None) -> Path:
    """--corpus on the subcommand, else on `qa` itself, else QA_CORPUS, else ./corpus."""
    root_value = ctx.find_root().params.get("corpus")
    return Path(value or root_value or os.environ.get("QA_CORPUS") or DEFAULT_CORPUS)


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
@click.version_option(__version__, prog_name="qa")
@click.pass_context
def cli(ctx: click.Context, corpus: Path | None, index_dir: Path | None) -> None:
    """Ask questions about a corpus of news articles; answers are quoted, with citations.

    Without a command, opens the chat in the terminal.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


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
        "problems": [
            {"path": p.path, "reason": p.reason, "action": p.action} for p in result.problems
        ],
    }
    if as_json:
        _print_json(report)
        return
    click.echo(f"corpus      {root}")
    click.echo(f"files       {result.files:,}")
    click.echo(f"articles    {len(result.articles):,}")
    click.echo(f"unique      {result.unique:,}")
    click.echo(f"duplicates  {report['duplicates']:,}")
    click.echo(f"problems    {len(result.problems):,}")
    for problem in result.problems:
        click.echo(f"  {problem}")
    if groups:
        click.echo("duplicate texts:")
        for refs in groups:
            click.echo("  " + " = ".join(refs))


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: QAError -> `qa: error: ...` and exit 1, never a traceback."""
    try:
        code = cli.main(args=argv, prog_name="qa", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("qa: interrupted", err=True)
        code = 130
    except KeyboardInterrupt:
        click.echo("\nqa: interrupted", err=True)
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
