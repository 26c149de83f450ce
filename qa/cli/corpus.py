"""`qa corpus check` and `qa corpus show`: what the corpus holds and what cannot be read."""

from __future__ import annotations

from pathlib import Path

import click

from qa.cli.options import (
    _corpus_option,
    _json_option,
    _max_file_bytes,
    _print_json,
    cli,
    resolve_corpus,
)
from qa.errors import InputError


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
        "files": result.file_count,
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
    click.echo(f"files       {result.file_count:,}")
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
