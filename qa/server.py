"""`qa serve`: one index for a whole newsroom, over HTTP (FastAPI on uvicorn).

    POST /ask              one question (filters, a conversation id for follow-ups): the JSON
                           of `qa ask --json`, with the conversation's id
    POST /batch            questions in, JSON lines out as each is answered
    GET  /articles/{id}    an article's text and metadata, for the page's viewer
    GET  /status           what `qa index status --json` shows
    POST /update           (admin) update the index from its corpus in the background
    GET  /update           how the last update went
    GET  /openapi.json     the API's description

Every question is answered by one shared `Engine` (one question at a time: it holds the
models and one SQLite connection) inside one read snapshot of the index, so an update that
commits meanwhile is seen whole by the next question and never half by this one.

Security: the server binds 127.0.0.1 unless a token is set (`qa serve` refuses another host
without one); with a token every API request needs `Authorization: Bearer <token>`, and
`/update` the admin token. Bodies, questions, batches and the time a request may take are
limited (`Limits`); no CORS unless an origin is given; an error is JSON with a status code and
one line of text, never a traceback; nothing in a request names a file (the index is fixed
when the server starts, articles are named by their index ids).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hmac
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI, Header, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.errors import QAError

if TYPE_CHECKING:
    from qa.answers import Result
    from qa.chat import Conversation
    from qa.engine import Engine
    from qa.index import StoredArticle
    from qa.retrieval import Filters

log = logging.getLogger("qa.server")

T = TypeVar("T")

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server."""

    body_bytes: int = 1 << 20
    question_chars: int = 1000
    batch_questions: int = 1000
    seconds: float = 120.0
    """Wall-clock time for one question (/ask), an article or the status."""
    conversations: int = 1000
    """Conversations kept for follow-ups (the least recently used go first)."""


UPDATE_FILE = "serve-update.json"
"""The last `POST /update`'s progress, kept in the index folder: every worker process and
replica serving the index answers `GET /update` with it, whichever of them runs the update."""


@dataclass
class UpdateState:
    """The background update's progress, as `GET /update` shows it."""

    state: str = "idle"  # idle, running, done, failed
    started: float | None = None
    finished: float | None = None
    report: dict[str, Any] | None = None
    error: str | None = None
    host: str | None = None
    pid: int | None = None
    """The process that runs it: a running update whose process is gone failed."""

    def as_dict(self) -> dict[str, Any]:
        shown = dataclasses.asdict(self)
        del shown["host"], shown["pid"]
        return shown

    def save(self, index_dir: Path) -> None:
        from qa.atomic import atomic_write

        atomic_write(index_dir / UPDATE_FILE, json.dumps(dataclasses.asdict(self)))

    @classmethod
    def load(cls, index_dir: Path) -> UpdateState:
        try:
            data = json.loads((index_dir / UPDATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        names = {f.name for f in dataclasses.fields(cls)}
        found = cls(**{k: v for k, v in data.items() if k in names})
        if found.state == "running" and not found.runner_alive():
            found.state = "failed"
            found.error = "the server process running the update stopped before it finished"
        return found

    def runner_alive(self) -> bool:
        """Whether the process running the update is there (on another machine: assumed)."""
        if self.host != socket.gethostname() or self.pid is None:
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True


@dataclass
class ServerState:
    """What the app shares between requests: the engine, the conversations, the update."""

    engine: Engine
    index_dir: Path
    corpus: Path | None
    limits: Limits
    token: str | None = None
    admin_token: str | None = None
    conversations: collections.OrderedDict[str, Conversation] = field(
        default_factory=collections.OrderedDict
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def conversation(self, conversation_id: str | None) -> tuple[str, Conversation]:
        """The conversation to continue (a known id) or a new one; an unknown id is an
        error, not a silent new start."""
        from qa.chat import Conversation

        with self.lock:
            if conversation_id is None:
                conversation_id = uuid.uuid4().hex[:16]
                self.conversations[conversation_id] = Conversation()
                while len(self.conversations) > self.limits.conversations:
                    self.conversations.popitem(last=False)
            elif conversation_id not in self.conversations:
                raise ApiError(
                    404, f"no conversation {conversation_id[:40]!r} (it may have expired)"
                )
            self.conversations.move_to_end(conversation_id)
            return conversation_id, self.conversations[conversation_id]


class ApiError(Exception):
    """An error answered as JSON: a status code and one line of text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def one_line_error(message: str) -> str:
    return " ".join(str(message).split())[:500]


def check_host(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token."""
    if host not in LOOPBACK_HOSTS and not token:
        raise QAError(
            f"refusing to listen on {host} without a token: anyone who can reach it could ask "
            "and read the corpus; pass --token-file FILE (clients send 'Authorization: Bearer "
            "<token>'), or keep the default --host 127.0.0.1"
        )


def read_token(path: Path | None, what: str) -> str | None:
    """A token from its file (its first line); None without a file."""
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip().splitlines()[0].strip()
    except (OSError, UnicodeDecodeError, IndexError) as exc:
        raise QAError(f"{path}: cannot read the {what} ({exc})") from None
    if len(token) < 16:
        raise QAError(f"{path}: the {what} must be at least 16 characters")
    return token


def create_app(
    engine: Engine,
    index_dir: Path,
    *,
    corpus: Path | None = None,
    limits: Limits | None = None,
    token: str | None = None,
    admin_token: str | None = None,
    cors_origins: tuple[str, ...] = (),
) -> FastAPI:
    """The FastAPI app over an open engine (closed by the caller)."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    state = ServerState(
        engine=engine,
        index_dir=index_dir,
        corpus=corpus,
        limits=limits or Limits(),
        token=token,
        admin_token=admin_token,
    )
    app = FastAPI(
        title="qa",
        summary="Extractive answers with exact citations from a corpus of news articles.",
        version="1",
    )
    app.state.qa = state

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": one_line_error(exc.message)}, status_code=exc.status)

    @app.exception_handler(QAError)
    async def qa_error(_: Request, exc: QAError) -> JSONResponse:
        return JSONResponse({"error": one_line_error(str(exc))}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return JSONResponse({"error": one_line_error(message)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": one_line_error(str(exc.detail))},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("qa serve: request failed")
        return JSONResponse(
            {"error": f"internal error ({type(exc).__name__}); see the server's log"},
            status_code=500,
        )

    _add_routes(app, state)
    app.add_middleware(BodyLimit, limit=state.limits.body_bytes)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is refused with 413, whether it
    says its length or streams it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _json_reply(send, 413, f"request body over {self.limit:,} bytes")
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise ApiError(413, f"request body over {self.limit:,} bytes")
            return message

        try:
            await self.app(scope, limited, send)
        except ApiError as exc:
            await _json_reply(send, exc.status, exc.message)


async def _json_reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": one_line_error(message)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def check_token(state: ServerState, authorization: str | None, admin: bool = False) -> None:
    """The request's bearer token against the server's (constant-time)."""
    expected = state.admin_token if admin else state.token
    if admin and expected is None:
        raise ApiError(403, "updates over HTTP need the server started with --admin-token-file")
    if expected is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), expected):
        raise ApiError(401, "a valid 'Authorization: Bearer <token>' header is needed")


async def in_time(state: ServerState, work: Callable[..., T], *args: object) -> T:
    """`work(*args)` in a worker thread, answered with 503 past the time limit (the work
    itself finishes in the background: a question cannot be stopped half-way)."""
    from starlette.concurrency import run_in_threadpool

    try:
        return await asyncio.wait_for(run_in_threadpool(work, *args), timeout=state.limits.seconds)
    except asyncio.TimeoutError:
        raise ApiError(503, f"the question took longer than {state.limits.seconds:g} s") from None


def run_update(state: ServerState, progress: UpdateState) -> None:
    """The background update (`POST /update`): the corpus into the index, while questions go
    on against the last committed state; its progress saved where every server of the index
    reads it."""
    from qa.index import sync_index

    assert state.corpus is not None
    encoder = state.engine.encoder
    try:
        report = sync_index(state.corpus, state.index_dir, lambda _: encoder)
    except Exception as exc:  # reported by GET /update, never lost (a busy index too)
        log.exception("qa serve: update failed")
        progress.state = "failed"
        progress.error = one_line_error(str(exc) or type(exc).__name__)
    else:
        progress.state = "done"
        progress.report = report.as_dict()
    progress.finished = time.time()
    try:
        progress.save(state.index_dir)
    except OSError:
        log.exception("qa serve: cannot record how the update went")


def batch_records(
    state: ServerState, questions: list[tuple[str, str]], options: dict[str, Any]
) -> Iterator[bytes]:
    """One JSON line a question, as it is answered; a question that fails gets an `error`
    and the batch goes on (`qa.batch.answer_record`, as `qa batch`)."""
    from qa.batch import answer_record

    for question_id, question in questions:
        record: dict[str, Any]
        if len(question) > state.limits.question_chars:
            record = {
                "id": question_id,
                "question": question[:200],
                "error": f"question over {state.limits.question_chars:,} characters",
            }
        else:
            record = answer_record(
                question_id, question, lambda text: state.engine.ask(text, **options)
            )
            if "error" in record:
                record["error"] = one_line_error(record["error"])
        yield (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


class Filtered(BaseModel):
    since: str | None = Field(None, max_length=10, description="2006, 2006-01 or 2006-01-31")
    until: str | None = Field(None, max_length=10, description="2006, 2006-01 or 2006-01-31")
    source: str | None = Field(None, max_length=200)
    n: int = Field(3, ge=1, le=10, description="answers at most")


class AskRequest(Filtered):
    """`POST /ask`: one question."""

    question: str = Field(min_length=1)
    conversation: str | None = Field(
        None, max_length=64, description="continue this conversation (follow-ups)"
    )


class BatchItem(BaseModel):
    id: str | None = Field(None, max_length=200)
    question: str


class BatchRequest(Filtered):
    """`POST /batch`: questions, as text or with an id each."""

    questions: list[str | BatchItem] = Field(min_length=1)


def _add_routes(app: FastAPI, state: ServerState) -> None:
    from qa.retrieval import parse_filters

    limits = state.limits

    def filters_of(request: Filtered) -> Filters:
        return parse_filters(request.since, request.until, request.source)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(PAGE_DIR / "index.html", media_type="text/html")

    @app.get("/page/{name}", include_in_schema=False)
    def page_file(name: str) -> FileResponse:
        # only the page's own files, by name: nothing a request says reaches the disk
        if name not in PAGE_FILES:
            raise ApiError(404, "no such file")
        return FileResponse(PAGE_DIR / name, media_type=PAGE_FILES[name])

    @app.post("/ask", summary="Answer one question (a follow-up when `conversation` is given)")
    async def ask(request: AskRequest, authorization: str | None = Header(None)) -> dict[str, Any]:
        check_token(state, authorization)
        if len(request.question) > limits.question_chars:
            raise ApiError(422, f"question: over {limits.question_chars:,} characters")
        filters = filters_of(request)
        conversation_id, conversation = state.conversation(request.conversation)

        def answer() -> dict[str, Any]:
            turn = conversation.answer(
                state.engine.ask, request.question, n=request.n, filters=filters
            )
            with state.lock:
                conversation.turns.append(turn)
            result = dataclasses.replace(turn.result, question=turn.question)
            return {**page_record(result), "conversation": conversation_id}

        return await in_time(state, answer)

    @app.post("/batch", summary="Answer many questions: JSON lines, one a question, as answered")
    async def batch(
        request: BatchRequest, authorization: str | None = Header(None)
    ) -> StreamingResponse:
        check_token(state, authorization)
        if len(request.questions) > limits.batch_questions:
            raise ApiError(422, f"questions: over {limits.batch_questions:,} in one batch")
        options = {"n": request.n, "filters": filters_of(request)}
        questions = [
            (str(number), item)
            if isinstance(item, str)
            else (item.id or str(number), item.question)
            for number, item in enumerate(request.questions, 1)
        ]
        # a sync generator: Starlette runs it in a worker thread, a line at a time, and stops
        # asking when the client goes away
        return StreamingResponse(
            batch_records(state, questions, options), media_type="application/x-ndjson"
        )

    @app.get("/articles/{article_id:path}", summary="An article's text and metadata")
    async def article(article_id: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        check_token(state, authorization)
        found = await in_time(state, state.engine.article, article_id)
        if found is None:
            raise ApiError(404, f"no article {article_id[:200]!r} in this index")
        return article_record(found)

    @app.get("/status", summary="What the index holds (qa index status --json)")
    async def status(authorization: str | None = Header(None)) -> dict[str, Any]:
        check_token(state, authorization)
        return dict(await in_time(state, state.engine.status))

    @app.post("/update", status_code=202, summary="Update the index from its corpus (admin)")
    def update(authorization: str | None = Header(None)) -> dict[str, Any]:
        check_token(state, authorization, admin=True)
        if state.corpus is None:
            raise ApiError(409, f"{state.index_dir} does not record its corpus")
        with state.lock:
            if UpdateState.load(state.index_dir).state == "running":
                raise ApiError(409, "an update is already running")
            progress = UpdateState(
                state="running", started=time.time(), host=socket.gethostname(), pid=os.getpid()
            )
            try:
                progress.save(state.index_dir)
            except OSError as exc:
                raise ApiError(
                    409, f"cannot write the index: {exc.strerror or type(exc).__name__}"
                ) from None
        threading.Thread(
            target=run_update, args=(state, progress), name="qa-update", daemon=True
        ).start()
        return progress.as_dict()

    @app.get("/update", summary="How the last update went (admin)")
    def update_state(authorization: str | None = Header(None)) -> dict[str, Any]:
        check_token(state, authorization, admin=True)
        return UpdateState.load(state.index_dir).as_dict()


PAGE_DIR = Path(__file__).with_name("page")
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css"}


def page_record(result: Result) -> dict[str, Any]:
    """`result.as_dict()` (the JSON of `qa ask --json`) with what a page shows in words:
    each answer's confidence and the not-found message."""
    from qa.answers import confidence_words

    record = result.as_dict()
    for answer in record["answers"]:
        answer["confidence_words"] = confidence_words(answer["score"])
    if result.not_found:
        record["not_found_message"] = result.not_found_message
    return record


def article_record(found: StoredArticle) -> dict[str, Any]:
    """An indexed article as `GET /articles/{id}` gives it."""
    return dataclasses.asdict(found)


SERVE_CONFIG = "QA_SERVE_CONFIG"
"""The environment variable through which `qa serve --workers N` hands its `ServeSettings`
to each worker process (`app_from_environment`)."""


@dataclass(frozen=True)
class ServeSettings:
    """What `qa serve` was asked for: everything its app needs besides the engine. As JSON
    (`--workers`) it holds paths and limits, never a token itself."""

    index_dir: Path
    corpus: Path | None
    seconds: float
    token_file: Path | None = None
    admin_token_file: Path | None = None
    cors_origins: tuple[str, ...] = ()

    def app(self, engine: Engine) -> FastAPI:
        return create_app(
            engine,
            self.index_dir,
            corpus=self.corpus,
            limits=Limits(seconds=self.seconds),
            token=read_token(self.token_file, "token"),
            admin_token=read_token(self.admin_token_file, "admin token"),
            cors_origins=self.cors_origins,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "index_dir": str(self.index_dir),
                "corpus": _text(self.corpus),
                "seconds": self.seconds,
                "token_file": _text(self.token_file),
                "admin_token_file": _text(self.admin_token_file),
                "cors_origins": list(self.cors_origins),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        data = json.loads(text)
        return cls(
            index_dir=Path(data["index_dir"]),
            corpus=_path(data["corpus"]),
            seconds=float(data["seconds"]),
            token_file=_path(data["token_file"]),
            admin_token_file=_path(data["admin_token_file"]),
            cors_origins=tuple(data["cors_origins"]),
        )


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _path(text: str | None) -> Path | None:
    return None if text is None else Path(text)


def app_from_environment() -> FastAPI:
    """The app of one worker process of `qa serve --workers N` (uvicorn's factory): its own
    engine over the index of the `ServeSettings` in `QA_SERVE_CONFIG`, the models loaded
    before it answers."""
    from qa.engine import Engine

    settings = ServeSettings.from_json(os.environ[SERVE_CONFIG])
    engine = Engine.open(settings.index_dir)
    engine.warm_up()
    return settings.app(engine)
