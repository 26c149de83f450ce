"""The `qa` command line: one boundary where domain errors become one-line messages.

Every command imports what it needs inside its function, so `qa --help` stays fast. The
commands live in `corpus`, `indexing`, `asking` and `serving`; `options` holds what they
share.
"""

from __future__ import annotations

import contextlib
import os
import sys

import click

from qa.cli import asking, corpus, history, indexing, serving  # noqa: F401 - registers the commands
from qa.cli.options import cli
from qa.errors import QAError, ReportedInterrupt, storage_reason
from qa.text import one_line

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: QAError -> `qa: error: ...` and exit 1, never a traceback;
    Ctrl+C -> exit 130 (at once, without waiting for threads, when `argv` is None: the
    process's own command line rather than a caller in the same process)."""
    try:
        code = cli.main(args=argv, prog_name="qa", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        # click turns Ctrl+C into Abort; a command that said what it kept raised the cause
        if not isinstance(exc.__cause__ or exc, ReportedInterrupt):
            click.echo("\nqa: interrupted; nothing was changed by the unfinished step", err=True)
        code = 130
        if argv is None:
            # The process's own command line. What the interrupted step wrote was undone
            # while the exception unwound; a normal exit would now join worker threads still
            # running the step, and CPython may end the process by re-raising SIGINT (status
            # -2 instead of 130) when the interrupt surfaced inside embedded code. Leave now.
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            os._exit(code)
    except QAError as exc:
        # a message may carry a file name or text from an article: one inert line
        click.echo(f"qa: error: {one_line(str(exc))}", err=True)
        code = exc.exit_code
    except BrokenPipeError:
        # `qa ask ... | head`: the reader went away; that is not an error worth a traceback.
        sys.stderr.close()
        code = 0
    except OSError as exc:
        # a full disk or a read-only place, met by any command's write (an output file, the
        # corpus): one line naming the file, not a traceback
        reason = storage_reason(exc)
        if reason is None:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"qa: error: {one_line(where)}cannot write: {reason}", err=True)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
