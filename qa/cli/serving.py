"""`qa serve`: the index over HTTP and a chat page in the browser (`qa.server`)."""

from __future__ import annotations

from pathlib import Path

import click

from qa.cli.options import _index_option, cli, resolve_corpus, resolve_index


@cli.command("serve")
@_index_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File whose first line is the token every request must send as 'Authorization: "
    "Bearer <token>' (needed to listen on anything but this machine).",
)
@click.option(
    "--admin-token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File with the token POST /update needs (no updates over HTTP without it).",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    metavar="URL",
    help="Let pages from this origin call the API (repeatable; none by default).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes, each with its own copy of the models and its share of the CPU "
    "cores (more questions a second under load; follow-ups stay in the process that "
    "started them).",
)
@click.option(
    "--timeout",
    default=120.0,
    show_default=True,
    type=click.FloatRange(1, 3600),
    help="Seconds one question may take before the request is answered 503.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    index_dir: Path | None,
    host: str,
    port: int,
    token_file: Path | None,
    admin_token_file: Path | None,
    cors_origins: tuple[str, ...],
    workers: int,
    timeout: float,
) -> None:
    """Serve the index over HTTP, with a chat page at /.

    One engine answers everyone's questions: POST /ask (the JSON of `qa ask --json`),
    POST /batch (JSON lines as answered), GET /articles/{id}, GET /status, POST /update
    (admin), and /docs for the API. Listens on this machine only unless a token is set.

    \b
    Examples:
      qa serve                                  # http://127.0.0.1:8000/
      qa serve --host 0.0.0.0 --token-file ~/.config/qa/token
    """
    import os

    import uvicorn

    from qa.encoders.onnx_runtime import cores
    from qa.engine import Engine
    from qa.server import SERVE_CONFIG, ServeSettings, check_host, read_token

    check_host(host, read_token(token_file, "token"))
    read_token(admin_token_file, "admin token")  # a bad file is an error before anything starts
    target = resolve_index(ctx, index_dir)
    engine = Engine.open(target)
    corpus = resolve_corpus(ctx, None, target)
    settings = ServeSettings(
        target, corpus if corpus.is_dir() else None, timeout, token_file, admin_token_file,
        cors_origins,
    )  # fmt: skip
    shown = f"[{host}]" if ":" in host else host
    if workers > 1:
        # each worker process opens the index and loads the models itself
        engine.close()
        os.environ[SERVE_CONFIG] = settings.to_json()
        # the cores shared out: processes that each ran the models on every core would
        # fight over them (OMP_NUM_THREADS, where set, says otherwise)
        if not os.environ.get("OMP_NUM_THREADS", "").isdigit():
            os.environ["OMP_NUM_THREADS"] = str(max(1, cores() // workers))
        click.echo(
            f"qa: serving {target} at http://{shown}:{port}/ with {workers} processes "
            "(Ctrl+C stops)",
            err=True,
        )
        uvicorn.run(
            "qa.server:app_from_environment", factory=True, host=host, port=port,
            workers=workers, log_level="warning", server_header=False,
        )  # fmt: skip
        return
    try:
        click.echo(f"qa: loading the models for {target} ...", err=True)
        engine.warm_up()
        app = settings.app(engine)
        click.echo(f"qa: serving {target} at http://{shown}:{port}/ (Ctrl+C stops)", err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
    finally:
        engine.close()
