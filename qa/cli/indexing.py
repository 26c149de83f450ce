"""`qa index build | update | status` and `qa add`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from qa.cli.options import (
    _backend_option,
    _corpus_option,
    _embedder,
    _engine_options,
    _human_size,
    _index_option,
    _json_option,
    _max_file_bytes,
    _print_json,
    _print_report,
    _sync,
    _yes_option,
    cli,
    resolve_corpus,
    resolve_index,
)
from qa.errors import InputError


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
    help='FAISS factory string, e.g. "HNSW32" or "IVF1024,Flat". [default: auto: Flat below '
    "200,000 chunks, IVF with 8-bit vectors above]",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 4096),
    default=None,
    help="Texts per model call. [default: the backend's best measured setting]",
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
    from qa.encoders import encoder_factory

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
    from qa.encoders import encoder_factory

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
        status: dict[str, Any] = {**reader.status(), "integrity": reader.check()}
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
@click.option("-q", "--quiet", is_flag=True, help="Print only what failed.")
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
    from qa.encoders import encoder_factory
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
    elif not quiet:  # -q: only what failed is said
        _print_report(report, False, False)
    if failures:
        ctx.exit(1)
