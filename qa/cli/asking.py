"""`qa ask`, `qa batch`, `qa verify`, `qa eval` and `qa tui`."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from qa.cli.options import (
    ProgressView,
    _backend_option,
    _corpus_option,
    _filter_options,
    _filters,
    _index_option,
    _json_option,
    _print_json,
    cli,
    resolve_corpus,
    resolve_index,
)
from qa.datasets import HALVES
from qa.errors import InputError, QAError, ReportedInterrupt, StorageError, storage_reason

if TYPE_CHECKING:
    from qa.batch import Writer as BatchWriter


def _answers_option(help_text: str) -> Any:
    """`-n`: how many distinct answers a question gets (qa ask, qa batch)."""
    return click.option(
        "-n",
        "max_answers",
        type=click.IntRange(1, 20),
        default=3,
        show_default=True,
        help=help_text,
    )


def render_result(result: Any, color: bool) -> str:
    """A `Result` as readable text; article text is made inert for the terminal."""
    from qa.answers import citation_label, confidence_words
    from qa.text import excerpt, one_line, terminal_safe

    def cite(number: int, citation: Any) -> str:
        return f"   [{number}] {one_line(citation_label(citation))}"

    lines = []
    if result.query != result.question:
        lines.append(f"(searched: {terminal_safe(result.query)})")
    if result.not_found:
        lines.append(result.not_found_message)
        if result.related:
            lines.append("Related passages:")
            for number, citation in enumerate(result.related, 1):
                lines.append(cite(number, citation))
                preview = excerpt(" ".join(citation.quote.split()), 240)
                lines.append(f"       {terminal_safe(preview)}")
        return "\n".join(lines)
    number = 0
    for index, answer in enumerate(result.answers, 1):
        before, span, after = (terminal_safe(piece) for piece in answer.pieces())
        if span:
            span = click.style(span, bold=True, underline=True) if color else f"**{span}**"
        body = before + span + after
        markers = " ".join(f"[{number + i}]" for i in range(1, len(answer.citations) + 1))
        lines.append(f"{index}. {body} {markers}  ({confidence_words(answer.score)})")
        if answer.dates:
            lines.append(f"   when: {terminal_safe(answer.when())}")
        for citation in answer.citations:
            number += 1
            lines.append(cite(number, citation))
    return "\n".join(lines)


@cli.command("ask")
@click.argument("question", required=False)
@_index_option
@_answers_option("Distinct answers to show at most.")
@click.option(
    "-k",
    "passage_count",
    type=click.IntRange(1, 200),
    default=20,
    show_default=True,
    help="Passages to retrieve.",
)
@_filter_options
@click.option(
    "-c",
    "--continue",
    "follow_up",
    is_flag=True,
    help="Continue the last conversation of this index (a follow-up: 'And when?').",
)
@click.option(
    "--cid", type=click.IntRange(1), default=None, help="Continue conversation ID (qa history)."
)
@click.option("--no-save", is_flag=True, help="Do not keep this question in the history.")
@_json_option
@click.pass_context
def ask(
    ctx: click.Context,
    question: str | None,
    index_dir: Path | None,
    max_answers: int,
    passage_count: int,
    since: str | None,
    until: str | None,
    source: str | None,
    follow_up: bool,
    cid: int | None,
    no_save: bool,
    as_json: bool,
) -> None:
    """Answer one question with sentences quoted from the corpus, and their citations.

    QUESTION `-` (or none, with a pipe) reads the question from standard input. Each question
    is kept in the history as a new conversation (as the chat's are; `qa history`); `-c`
    asks it as a follow-up of the last one instead, `--cid ID` of another.

    \b
    Examples:
      qa ask "Who led the purge of North Korean officers?"
      qa ask -c "How many were executed?"
      qa ask "What did the central bank decide?" --since 2006-01-01 --source wikinews --json
      echo "Who won the election?" | qa ask
    """
    from qa.chat import Conversation
    from qa.engine import Engine

    if question in (None, "-"):
        if question is None and sys.stdin.isatty():
            raise click.UsageError("give a QUESTION (or - to read it from standard input)")
        question = sys.stdin.read()
    if not question.strip():
        raise QAError("the question is empty")
    if no_save and (follow_up or cid):
        raise click.UsageError("--no-save asks a question alone: it cannot continue a conversation")
    filters = _filters(since, until, source)
    target = resolve_index(ctx, index_dir)
    index_key = str(target.resolve())
    store = None if no_save else _history_store()
    conversation_id = None
    conversation = Conversation()
    if store is not None and (follow_up or cid):
        conversation_id = _conversation_to_continue(store, cid, index_key)
        conversation.turns = store.turns(conversation_id)
    engine = Engine.open(target)
    try:
        turn = conversation.answer(
            engine.ask, question, n=max_answers, k=passage_count, filters=filters
        )
    finally:
        engine.close()
    # the question as typed; a rewritten follow-up shows what was searched
    result = dataclasses.replace(turn.result, question=turn.question)
    if store is not None:
        try:
            if conversation_id is None:
                conversation_id = store.start(turn.question, index_key)
            store.add_turn(conversation_id, turn)
        except sqlite3.Error as exc:
            click.echo(f"qa: note: the question was not kept in the history ({exc})", err=True)
        finally:
            store.close()
    if as_json:
        _print_json(result.as_dict())
    else:
        tty = sys.stdout.isatty()
        text = render_result(result, color=tty)
        click.echo(_wrap(text) if tty else text)


def _history_store() -> Any:
    """The conversation store, or None (with a note) when it cannot be opened: the history is
    a convenience that never stops a question."""
    from qa.conversations import ConversationStore

    try:
        return ConversationStore()
    except (OSError, sqlite3.Error) as exc:
        click.echo(f"qa: note: the history cannot be opened ({exc}); not kept", err=True)
        return None


def _conversation_to_continue(store: Any, cid: int | None, index_key: str) -> int:
    """The conversation `qa ask -c` / `--cid` continues."""
    if cid is not None:
        info = store.get(cid)
        if info is None or not info.turns:
            raise QAError(f"no conversation {cid} in the history (qa history lists them)")
        if info.index_dir != index_key:
            raise QAError(
                f"conversation {cid} was asked of {info.index_dir}, not of {index_key} "
                "(give that --index)"
            )
        return cid
    latest = store.recent(1, index_dir=index_key)
    if not latest:
        raise QAError(f"no conversation of {index_key} to continue yet: ask without -c first")
    return latest[0].id


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
@_answers_option("Distinct answers to keep for each question at most.")
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
    max_answers: int,
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
    from qa.batch import (
        check_output,
        drop_torn_tail,
        read_questions,
        run_batch,
        written_ids,
    )
    from qa.engine import Engine
    from qa.index import Progress

    if fmt is None:
        suffix = output.suffix.lower().lstrip(".") if output else ""
        fmt = {"csv": "csv", "md": "md", "markdown": "md"}.get(suffix, "jsonl")
    if resume and output is None:
        raise QAError("--resume needs -o OUT (the file whose ids are skipped)")
    index_target = resolve_index(ctx, index_dir)
    in_place = False
    if output is not None:
        corpus = resolve_corpus(ctx, None, index_target)
        in_place = check_output(output, file, [index_target], [corpus])
        if in_place and resume:
            raise QAError(
                f"{output}: --resume needs a regular output file (this is a device, a pipe or a "
                "link)"
            )
    questions = read_questions(file)
    if resume and output is not None and drop_torn_tail(output, fmt) and not quiet:
        click.echo(f"qa: {output}: dropped a half-written last record; asking it again", err=True)
    written = written_ids(output, fmt) if resume and output else {}
    skip = set(written)
    failed_before = {writer_id for writer_id, failed in written.items() if failed}
    filters = _filters(since, until, source)
    append = bool(resume and output and output.exists() and output.stat().st_size > 0)
    # progress goes to stderr: shown on a terminal even when the answers go to stdout
    with (
        contextlib.closing(Engine.open(index_target)) as engine,
        _batch_output(output, fmt, append, in_place) as writer,
        ProgressView(quiet or (output is None and not sys.stderr.isatty())) as view,
    ):
        answered, failed = run_batch(
            questions,
            lambda q: engine.ask(q, n=max_answers, filters=filters),
            writer,
            skip,
            progress=lambda done, total: view(Progress("questions", done, total)),
        )
    asked_ids = {writer.written_id(q.id) for q in questions}
    failed_before &= asked_ids
    if not quiet:
        skipped = f", {len(skip & asked_ids)} already done" if skip else ""
        if failed_before:
            skipped += (
                f" ({len(failed_before)} of them failed: their error records stay; delete those "
                "lines from the output to ask them again)"
            )
        click.echo(f"{answered} answered, {failed} failed{skipped}", err=True)
    if failed or failed_before:
        ctx.exit(1)


@contextlib.contextmanager
def _batch_output(
    output: Path | None, fmt: str, append: bool, in_place: bool
) -> Iterator[BatchWriter]:
    """The writer of a batch's records, and what becomes of OUT when the batch fails.

    A batch over an existing OUT writes a temporary file renamed over OUT at the end, so OUT
    is never truncated by a batch that then fails. A new OUT is written as answered (a batch
    killed even with kill -9 leaves its records there, and --resume finds them); --resume
    appends in place. No OUT: standard output."""
    from qa.batch import Writer

    existed = output is not None and output.exists()
    temp = None
    if output is not None and existed and not append and not in_place:
        temp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    path = temp or output
    handle = path.open("a" if append else "w", encoding="utf-8", newline="") if path else None
    finished = False
    told = False  # the error already says what became of the output
    writer = Writer(handle or sys.stdout, fmt, header=not append)
    try:
        yield writer
        finished = True
    except KeyboardInterrupt:
        if output is not None and (append or not existed):
            click.echo(
                f"\nqa: interrupted after {writer.written} record(s) written to {output}; "
                "run the same command with --resume to finish",
                err=True,
            )
            raise ReportedInterrupt from None
        raise
    except OSError as exc:
        reason = storage_reason(exc)
        if reason is None or output is None:
            raise
        kept = (
            f"{writer.written} record(s) are in it; free space and run the same command with "
            "--resume to finish"
            if append or not existed
            else "it was left as it was"
        )
        told = True
        raise StorageError(f"{output}: cannot write: {reason}; {kept}") from None
    finally:
        if handle is not None:
            # closing flushes: on a full disk that fails again, after the error above
            with contextlib.suppress(OSError) if not finished else contextlib.nullcontext():
                handle.close()
        if temp is not None and output is not None:
            if finished:
                os.replace(temp, output)
            else:
                temp.unlink(missing_ok=True)
                if not told:
                    click.echo(f"qa: {output} was left as it was", err=True)


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
    if not root.exists():
        # every citation would read "missing", as if the answers had been invented
        raise InputError(
            f"{one_line(str(root))}: no such corpus folder; pass --corpus with the folder the "
            "answers were drawn from"
        )
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
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False)
)
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
    type=click.Choice(HALVES),
    default="all",
    show_default=True,
    help="Articles to ask about (by a hash of the title, or of a JSONL question's article): "
    "the reader trains on 'fit:reader', weights are fitted on 'fit:weights'; report 'heldout'.",
)
@_json_option
@click.option(
    "--answers",
    "answers_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write each question's outcome to this JSONL file: gold answers, the answer "
    "shown with its citation and confidence, and how it was scored.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.pass_context
def eval_command(
    ctx: click.Context,
    files: tuple[Path, ...],
    index_dir: Path | None,
    backend: str | None,
    sample: int | None,
    seed: int,
    half: str,
    as_json: bool,
    answers_file: Path | None,
    quiet: bool,
) -> None:
    """Measure retrieval and answers on a SQuAD-format file (v1.1 or v2.0, zipped or not)
    or on a JSONL file of questions.

    Without --index a SQuAD file's articles are indexed into a temporary index; with --index
    DIR, DIR is used if it holds an index, else built there and kept. --backend applies to an
    index built here; an existing index keeps its own.

    A JSONL file holds one `{"question", "answers": [...], "article": "PATH"}` record a line
    (`article`, optional, is the end of the path of the article that answers it, or that an
    unanswerable question was written from; `answers` empty for a question the corpus cannot
    answer) and needs --index: the index of the corpus the questions are about. Several
    JSONL files are asked together, as one set; --half splits them by article.

    Reports recall@k (the passages as qa ranks them, the reader re-ranking those it reads;
    retrieval_recall@5 for retrieval's own order), answer (sentence) accuracy, span exact
    match and F1 (SQuAD's normalisation), no-answer accuracy, a calibration table
    (confidence bins against accuracy), how far the confidence can be trusted (AUROC of right
    against wrong answers, accuracy by confidence band, the share of answerable questions
    answered where 90 % of answers are right) and latency split into retrieval and reading.

    \b
    Examples:
      qa eval ../shared/data/squad/dev-v1.1.json.zip --index /tmp/squad-index --json
      qa eval tests/data/bbc_paraphrased.jsonl --index /tmp/bbc-index --answers bbc.jsonl
      qa eval tests/data/bbc_*.jsonl --index /tmp/bbc-index --half heldout
    """
    from qa.evaluate import evaluate_file

    if index_dir is None and not (quiet or as_json):
        click.echo(f"qa: indexing {files[0].name}'s articles into a temporary index", err=True)
    with ProgressView(quiet or as_json) as view:
        metrics = evaluate_file(
            files,
            index_dir,
            backend=backend,
            half=half,
            sample=sample,
            seed=seed,
            progress=view,
            answers_file=answers_file,
        )
    if as_json:
        _print_json(metrics)
        return
    heldout = metrics.pop("heldout", None)
    _echo_metrics(metrics)
    if heldout:
        click.echo("\nheld-out half (articles nothing was fitted on):")
        _echo_metrics(heldout)


def _echo_metrics(report: Mapping[str, Any]) -> None:
    metrics = dict(report)
    calibration = metrics.pop("calibration")
    trust = dict(metrics.pop("trust"))
    bands = trust.pop("bands")
    for key, value in metrics.items():
        click.echo(f"{key:<28} {value}")
    click.echo("calibration (confidence bin: questions, mean confidence, accuracy)")
    for row in calibration:
        click.echo(
            f"  {row['bin']}: {row['questions']:>6}  {row['mean_confidence']}  {row['accuracy']}"
        )
    click.echo("trust (unanswerable questions answered count as wrong)")
    for key, value in trust.items():
        click.echo(f"  {key:<26} {value}")
    click.echo("  answers shown by confidence band: answers, share, accuracy")
    for row in bands:
        click.echo(f"    {row['band']}: {row['answers']:>6}  {row['share']}  {row['accuracy']}")


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
