"""`qa history`: the conversations kept by the chat and by `qa ask`, outside the chat."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import click

from qa.cli.options import _json_option, _print_json, cli
from qa.errors import InputError, QAError


def _store() -> Any:
    from qa.conversations import ConversationStore

    return ConversationStore()


def _conversation(store: Any, conversation_id: int) -> tuple[Any, list[Any]]:
    info = store.get(conversation_id)
    turns = store.turns(conversation_id) if info is not None else []
    if info is None or not turns:
        raise QAError(f"no conversation {conversation_id} in the history (qa history lists them)")
    return info, turns


@cli.group("history", invoke_without_command=True)
@click.option(
    "-n", "limit", type=click.IntRange(1), default=20, show_default=True, help="How many to list."
)
@_json_option
@click.pass_context
def history(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List the saved conversations, newest first: id, last asked, turns, index, first
    question. Conversations are kept in $XDG_DATA_HOME/qa (or $QA_DATA_DIR).

    \b
    Examples:
      qa history
      qa history show 12
      qa history export 12 -o chat.md
      qa ask -c "And when?"        # continue the last one
    """
    if ctx.invoked_subcommand is not None:
        return
    from qa.text import one_line

    store = _store()
    try:
        found = store.recent(limit)
    finally:
        store.close()
    if as_json:
        _print_json([vars(info) for info in found])
        return
    if not found:
        click.echo("No saved conversations yet (ask with qa ask or in the chat).")
        return
    for info in found:
        when = info.updated_at.replace("T", " ")[:16]
        title = one_line(info.title)
        click.echo(f"{info.id:>5}  {when}  {info.turns:>3} turn(s)  {one_line(info.index_dir)}")
        click.echo(f"       {title}")


@history.command("show")
@click.argument("conversation_id", metavar="ID", type=click.IntRange(1))
@_json_option
def show(conversation_id: int, as_json: bool) -> None:
    """Print one conversation: each question, the query searched for a follow-up, the
    answers and their citations."""
    from qa.cli.asking import render_result
    from qa.text import terminal_safe

    store = _store()
    try:
        info, turns = _conversation(store, conversation_id)
    finally:
        store.close()
    if as_json:
        _print_json(
            {
                **vars(info),
                "turns": [{"question": t.question, **t.result.as_dict()} for t in turns],
            }
        )
        return
    for number, turn in enumerate(turns, 1):
        if number > 1:
            click.echo()
        click.echo(f"Q{number}: {terminal_safe(turn.question)}")
        result = dataclasses.replace(turn.result, question=turn.question)
        click.echo(render_result(result, color=False))


@history.command("export")
@click.argument("conversation_id", metavar="ID", type=click.IntRange(1))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this new file (never over an existing one) instead of standard output.",
)
def export(conversation_id: int, output: Path | None) -> None:
    """Write one conversation as Markdown, as the chat's /export does."""
    from qa.conversations import conversation_markdown

    store = _store()
    try:
        info, turns = _conversation(store, conversation_id)
    finally:
        store.close()
    text = conversation_markdown(turns, info.index_dir, when=info.created_at.replace("T", " ")[:16])
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with output.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise InputError(f"{output}: exists; choose another name") from None
    except OSError as exc:
        raise InputError(f"{output}: cannot write ({exc.strerror or exc})") from None
    click.echo(f"Saved conversation {conversation_id} to {os.fspath(output)}", err=True)
