"""`qa serve` (qa.server): the API answers as the CLI does, and keeps its guarantees: tokens,
limits, JSON errors without tracebacks, nothing named on disk by a request, updates seen
whole."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa.errors import QAError
from tests.conftest import run_qa

# Selenium drives the system's chromedriver; it must never try to download one
os.environ.setdefault("SE_OFFLINE", "true")
fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from qa.server import PAGE_DIR, Limits, check_host, create_app  # noqa: E402

HOSTILE_TITLE = 'Mayor <script>alert("x")</script> resigns'
HOSTILE_BODY = (
    "The mayor of Springfield resigned on Monday after 12 years in office. "
    'Readers were told to <a href="javascript:alert(1)">click here</a> and '
    '<img src=x onerror="alert(2)"> to see \u202ethe letter\u202c.'
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, bbc: Path) -> Iterator[tuple[Any, Path]]:
    from qa.encoders import load_encoder
    from qa.engine import Engine
    from qa.index import sync_index

    root = tmp_path_factory.mktemp("serve")
    corpus = root / "corpus"
    (corpus / "business").mkdir(parents=True)
    for name in ("001.txt", "002.txt", "003.txt", "004.txt", "005.txt"):
        shutil.copy(bbc / "business" / name, corpus / "business" / name)
    (corpus / "hostile.txt").write_text(f"{HOSTILE_TITLE}\n\n{HOSTILE_BODY}\n", encoding="utf-8")
    index = root / "index"
    encoder = load_encoder()
    sync_index(corpus, index, lambda _: encoder, full=True)
    engine = Engine.open(index, encoder)
    yield engine, corpus
    engine.close()


def client_for(served: tuple[Any, Path], **options: Any) -> TestClient:
    engine, corpus = served
    app = create_app(engine, engine.index.index_dir, corpus=corpus, **options)
    return TestClient(app, raise_server_exceptions=False)


def test_ask_answers_as_qa_ask_json_and_follow_ups_continue_the_conversation(
    served: tuple[Any, Path],
) -> None:
    engine, _ = served
    client = client_for(served)
    question = "How much did TimeWarner's quarterly profits jump?"
    response = client.post("/ask", json={"question": question})
    assert response.status_code == 200, response.text
    record = response.json()
    expected = engine.ask(question).as_dict()
    assert not expected["not_found"]
    conversation = record.pop("conversation")
    words = [answer.pop("confidence_words") for answer in record["answers"]]
    # the JSON of qa ask --json, with each answer's confidence in words for the page
    assert record == expected
    for said, answer in zip(words, expected["answers"], strict=True):
        assert said.endswith(f"{round(answer['score'] * 100)} %")
    follow = client.post(
        "/ask", json={"question": "And its sales?", "conversation": conversation}
    ).json()
    assert follow["conversation"] == conversation
    assert follow["question"] == "And its sales?" and follow["query"] != "And its sales?"
    state = client.app.state.qa  # type: ignore[attr-defined]
    assert len(state.conversations[conversation].turns) == 2

    unknown = client.post("/ask", json={"question": "Who?", "conversation": "nope"})
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "no conversation 'nope' (it may have expired)"}


def test_batch_streams_one_record_a_question_and_goes_on_after_a_bad_one(
    served: tuple[Any, Path],
) -> None:
    client = client_for(served, limits=Limits(question_chars=200))
    questions = [
        "What was Time Warner's profit?",
        {"id": "long", "question": "x" * 300},
        {"id": "q3", "question": "Who resigned as mayor of Springfield?"},
    ]
    with client.stream("POST", "/batch", json={"questions": questions}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [line["id"] for line in lines] == ["1", "long", "q3"]
    assert lines[1]["error"] == "question over 200 characters"
    assert "answers" in lines[0] and "answers" in lines[2]


def test_articles_come_whole_by_id_and_nothing_names_a_file(served: tuple[Any, Path]) -> None:
    engine, _ = served
    client = client_for(served)
    (article_id,) = engine.index.conn.execute(
        "SELECT id FROM articles WHERE path = 'hostile.txt'"
    ).fetchone()
    found = client.get(f"/articles/{article_id}")
    assert found.status_code == 200
    article = found.json()
    assert article["title"] == HOSTILE_TITLE and HOSTILE_BODY in article["body"]
    assert client.get("/articles/hostile.txt").status_code == 404  # ids, not paths
    missing = client.get("/articles/../../etc/passwd")
    assert missing.status_code == 404 and "root:" not in missing.text
    assert client.get("/page/../server.py").status_code == 404
    assert client.get("/page/app.js").status_code == 200


def test_status_is_what_qa_index_status_shows(served: tuple[Any, Path]) -> None:
    engine, _ = served
    client = client_for(served)
    status = client.get("/status").json()
    assert status["articles"] == engine.status()["articles"] == 6
    api = client.get("/openapi.json")
    assert api.status_code == 200, api.text
    assert {"/ask", "/batch", "/status", "/update"} <= set(api.json()["paths"])


def test_tokens_guard_the_api_and_the_admin_token_guards_updates(
    served: tuple[Any, Path],
) -> None:
    client = client_for(served, token="t" * 20)
    assert client.get("/status").status_code == 401
    wrong = client.get("/status", headers={"Authorization": "Bearer " + "u" * 20})
    assert wrong.status_code == 401 and "Bearer" in wrong.json()["error"]
    right = client.get("/status", headers={"Authorization": "Bearer " + "t" * 20})
    assert right.status_code == 200
    # the page itself loads without a token (it asks for one when the API says 401)
    assert client.get("/").status_code == 200
    # no admin token configured: no updates over HTTP at all
    refused = client.post("/update", headers={"Authorization": "Bearer " + "t" * 20})
    assert refused.status_code == 403


def test_limits_and_errors_are_one_json_line_without_a_traceback(
    served: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(served, limits=Limits(body_bytes=2000, batch_questions=3))
    big = client.post(
        "/ask",
        content=json.dumps({"question": "a" * 5000}),
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413 and big.json() == {"error": "request body over 2,000 bytes"}
    too_many = client.post("/batch", json={"questions": ["a?", "b?", "c?", "d?"]})
    assert too_many.status_code == 422 and too_many.json()["error"].startswith("questions:")
    empty = client.post("/ask", json={"question": ""})
    assert empty.status_code == 422 and "\n" not in empty.json()["error"]
    bad_date = client.post("/ask", json={"question": "Who?", "since": "2009-13-45"})
    assert bad_date.status_code == 400 and "2009-13-45" in bad_date.json()["error"]
    not_json = client.post("/ask", content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and set(not_json.json()) == {"error"}

    engine, _ = served

    def broken() -> None:
        raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setattr(engine, "status", broken)
    failed = client.get("/status")
    assert failed.status_code == 500
    assert failed.json() == {"error": "internal error (RuntimeError); see the server's log"}
    assert "Traceback" not in failed.text and "/secret/path" not in failed.text


def test_no_cors_unless_an_origin_is_given(served: tuple[Any, Path]) -> None:
    origin = {"Origin": "https://elsewhere.example"}
    closed = client_for(served).get("/status", headers=origin)
    assert "access-control-allow-origin" not in closed.headers
    opened = client_for(served, cors_origins=("https://elsewhere.example",))
    assert (
        opened.get("/status", headers=origin).headers["access-control-allow-origin"]
        == "https://elsewhere.example"
    )


def test_an_update_runs_in_the_background_and_is_seen_whole(
    served: tuple[Any, Path], tmp_path: Path
) -> None:
    _, corpus = served
    admin = {"Authorization": "Bearer " + "a" * 20}
    client = client_for(served, admin_token="a" * 20)
    before = client.get("/status").json()["articles"]
    (corpus / "added.txt").write_text(
        "Lighthouse keeper retires\n\nThe last lighthouse keeper of Dunmore retired on Friday "
        "after 41 years of service.\n",
        encoding="utf-8",
    )
    started = client.post("/update", headers=admin)
    assert started.status_code == 202 and started.json()["state"] == "running"
    for _ in range(300):
        state = client.get("/update", headers=admin).json()
        if state["state"] != "running":
            break
        # questions go on while it runs
        assert client.post("/ask", json={"question": "Who resigned?"}).status_code == 200
        time.sleep(0.1)
    assert state["state"] == "done", state
    assert state["report"]["added"] == 1
    assert client.get("/status").json()["articles"] == before + 1
    answer = client.post(
        "/ask", json={"question": "How many years did the Dunmore lighthouse keeper serve?"}
    ).json()
    assert any("41 years" in a["text"] for a in answer["answers"]), answer


def test_an_update_meeting_a_busy_index_fails_and_the_next_one_runs(
    served: tuple[Any, Path],
) -> None:
    """Another writer (`qa index update` in a shell) holds the index: the update says so,
    and once that writer is done the next update runs."""
    from qa.index import write_lock

    engine, _ = served
    admin = {"Authorization": "Bearer " + "a" * 20}
    client = client_for(served, admin_token="a" * 20)

    def finished() -> dict[str, Any]:
        for _ in range(300):
            state = client.get("/update", headers=admin).json()
            if state["state"] != "running":
                return state
            time.sleep(0.1)
        raise AssertionError(f"the update still runs: {state}")

    with write_lock(engine.index.index_dir):
        assert client.post("/update", headers=admin).status_code == 202
        state = finished()
    assert state["state"] == "failed" and "being written" in state["error"], state
    assert client.post("/update", headers=admin).status_code == 202
    assert finished()["state"] == "done"


def test_an_update_whose_server_died_reads_as_failed_not_running(tmp_path: Path) -> None:
    """A server killed during an update leaves "running" behind: whoever reads it next sees
    that the update failed, and may start another."""
    import socket
    import subprocess
    import sys

    from qa.server import UpdateState

    assert UpdateState.load(tmp_path).state == "idle"  # never updated over HTTP
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    UpdateState("running", started=1.0, host=socket.gethostname(), pid=int(gone.stdout)).save(
        tmp_path
    )
    left = UpdateState.load(tmp_path)
    assert left.state == "failed" and "stopped before it finished" in (left.error or "")
    assert "pid" not in left.as_dict() and "host" not in left.as_dict()
    UpdateState("running", started=1.0, host=socket.gethostname(), pid=os.getpid()).save(tmp_path)
    assert UpdateState.load(tmp_path).state == "running"


def test_the_page_is_served_with_a_strict_policy_and_writes_text_never_markup() -> None:
    html = (PAGE_DIR / "index.html").read_text(encoding="utf-8")
    assert "script-src 'self'" in html and "<script>" not in html
    script = (PAGE_DIR / "app.js").read_text(encoding="utf-8")
    # article text reaches the page through textContent only
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


def test_serve_refuses_another_host_without_a_token(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(QAError, match="without a token"):
        check_host("0.0.0.0", None)
    check_host("0.0.0.0", "t" * 20)
    check_host("127.0.0.1", None)
    code, _, err = run_qa(capsys, "serve", "--host", "0.0.0.0", "--index", str(tmp_path))
    assert code == 1 and "refusing to listen on 0.0.0.0 without a token" in err
    short = tmp_path / "token"
    short.write_text("abc\n")
    code, _, err = run_qa(capsys, "serve", "--token-file", str(short), "--index", str(tmp_path))
    assert code == 1 and "at least 16 characters" in err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def live_server(served: tuple[Any, Path]) -> Iterator[str]:
    """The app on a real uvicorn server in a thread, on a free port of this machine."""
    import socket
    import threading

    import uvicorn

    engine, corpus = served
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(engine, engine.index.index_dir, corpus=corpus)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs chromium and chromedriver (scripts/test installs them with apt where it can)",
)
def test_the_page_asks_opens_a_citation_and_keeps_hostile_text_inert(live_server: str) -> None:
    """In a real browser: ask, see the answer and its citations, open one in the viewer
    scrolled to the cited characters; the hostile article's <script>, <img onerror> and
    javascript: link stay text, its bidi control a visible mark."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(live_server + "/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: "articles in" in d.find_element(By.ID, "status").text)
        box = driver.find_element(By.ID, "question")
        box.send_keys("Who resigned as mayor of Springfield after 12 years?\n")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".turn .citations button"))
        labels = [b.text for b in driver.find_elements(By.CSS_SELECTOR, ".citations button")]
        hostile = [b for b in driver.find_elements(By.CSS_SELECTOR, ".citations button")
                   if "<script>" in b.text]  # fmt: skip
        assert hostile, labels
        hostile[0].click()
        wait.until(lambda d: d.find_element(By.ID, "viewer").is_displayed())
        body = driver.find_element(By.ID, "viewer-body")
        mark = body.find_element(By.TAG_NAME, "mark")
        assert mark.text and mark.text in HOSTILE_BODY
        assert driver.execute_script(
            "const r = arguments[0].getBoundingClientRect();"
            "return r.top >= 0 && r.bottom <= window.innerHeight;",
            mark,
        )
        shown = body.text
        assert '<a href="javascript:alert(1)">click here</a>' in shown
        assert '<img src=x onerror="alert(2)">' in shown and "<U+202E>" in shown
        assert driver.find_element(By.ID, "viewer-title").text == HOSTILE_TITLE
        # nothing of it became markup: no link, image or script but the page's own
        assert not driver.find_elements(
            By.CSS_SELECTOR, "#chat a, #chat img, #viewer a, #viewer img"
        )
        scripts = driver.find_elements(By.TAG_NAME, "script")
        assert [s.get_attribute("src").rsplit("/", 1)[-1] for s in scripts] == ["app.js"]
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018
        # a follow-up continues the conversation
        box.send_keys("And how many years was that?\n")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".turn")) == 2)
    finally:
        driver.quit()


def test_two_replicas_over_one_index_see_one_update(served: tuple[Any, Path]) -> None:
    """Replicas behind a load balancer: two servers (two engines) read one index; an update
    through one is seen by the other's next question, and either says how it goes."""
    from qa.engine import Engine

    engine, corpus = served
    index_dir = engine.index.index_dir
    admin = {"Authorization": "Bearer " + "a" * 20}
    one = client_for(served, admin_token="a" * 20)
    other_engine = Engine.open(index_dir, engine.encoder)
    try:
        other = TestClient(
            create_app(other_engine, index_dir, corpus=corpus, admin_token="a" * 20),
            raise_server_exceptions=False,
        )
        before = other.get("/status").json()["articles"]
        (corpus / "replica.txt").write_text(
            "Ferry service resumes\n\nThe Orkney ferry service resumed on Tuesday after a "
            "three-week strike by 140 crew members.\n",
            encoding="utf-8",
        )
        assert one.post("/update", headers=admin).status_code == 202
        # the update runs in `one`; the other replica answers for it
        for _ in range(300):
            state = other.get("/update", headers=admin).json()
            if state["state"] != "running":
                break
            time.sleep(0.1)
        assert state["state"] == "done", state
        assert state["report"]["added"] == 1, state
        assert one.get("/update", headers=admin).json() == state
        assert other.get("/status").json()["articles"] == before + 1
        answer = other.post(
            "/ask", json={"question": "How many crew members went on strike at the Orkney ferry?"}
        ).json()
        assert any("140 crew members" in a["text"] for a in answer["answers"]), answer
    finally:
        other_engine.close()


def test_serve_with_worker_processes_answers_and_stops_on_ctrl_c(
    served: tuple[Any, Path],
) -> None:
    """`qa serve --workers 2`: two processes, each with its own engine and half the cores,
    answer on one port; Ctrl+C stops them all."""
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    engine, _ = served
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "serve", "--index", str(engine.index.index_dir),
         "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{base}/status", timeout=2) as response:
                    assert json.loads(response.read())["articles"] >= 6
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
                time.sleep(0.5)
        request = urllib.request.Request(
            f"{base}/ask",
            data=json.dumps(
                {"question": "How much did TimeWarner's quarterly profits jump?"}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        for _ in range(4):
            with urllib.request.urlopen(request, timeout=60) as response:
                assert json.loads(response.read())["question"].startswith("How much")
        if Path(f"/proc/{server.pid}/task").is_dir():
            from qa.encoders.onnx_runtime import cores

            workers = [
                int(child)
                for task in Path(f"/proc/{server.pid}/task").iterdir()
                for child in (task / "children").read_text().split()
            ]
            shares = [
                line
                for child in workers
                for line in Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                if line.startswith(b"OMP_NUM_THREADS=")
            ]
            assert shares and set(shares) == {f"OMP_NUM_THREADS={max(1, cores() // 2)}".encode()}
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
