"""Load on `qa serve` (run by hand, not in CI).

    python scripts/bench_serve.py [--corpus ../shared/data/bbc] [--seconds 60] [--clients 1,4,16]

Builds an index of the corpus less `--held-back` articles in a temporary folder, starts
`qa serve` on it (a separate process, as users run it), and for each number of clients asks
questions as fast as they come back for `--seconds`: requests/s, latency p50 / p95 / p99,
errors and the server's resident memory. Then the same with the most clients while the held
back articles are copied in and `POST /update` runs: every answer's citations must exist in
the index generation it was answered from (checked afterwards against the articles of the
updated index, which still holds every article the old one had). Last, the faults: a client
that disconnects in the middle of a batch, a request over the limits, and the server killed
with SIGKILL and started again (the index opens, answers, and is not left locked).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from qa.datasets import template_questions
from qa.evaluate import percentile

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "bbc"
ADMIN_TOKEN = "bench-admin-token-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def request(url: str, body: dict | None = None, token: str | None = None, timeout: float = 120):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as response:
        return response.status, json.loads(response.read() or b"null")


def start_server(
    index: Path, port: int, admin: Path, workers: int = 1, threads: int = 0
) -> subprocess.Popen[bytes]:
    """`qa serve` with `workers` processes, each of `threads` model threads (0: qa serve's
    own share, the cores divided among the workers)."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    process = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "serve", "--index", str(index), "--port", str(port),
         "--admin-token-file", str(admin), "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True,
    )  # fmt: skip
    for _ in range(600):
        try:
            request(f"http://127.0.0.1:{port}/status", timeout=2)
            return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if process.poll() is not None:
                said = process.stderr.read().decode()[-2000:] if process.stderr else ""
                raise SystemExit(f"qa serve ended: {said}") from None
            time.sleep(0.5)
    raise SystemExit("qa serve did not start in 5 minutes")


def rss_mib(pid: int) -> float:
    """Resident memory of the server and its worker processes."""
    total = 0
    for each in [pid, *children(pid)]:
        try:
            lines = Path(f"/proc/{each}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith("VmRSS:"))
    return total / 1024 if total else float("nan")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return [grand for child in found for grand in (child, *children(child))]


def load(base: str, questions: list[str], clients: int, seconds: float) -> dict:
    """`clients` threads asking in turn for `seconds`; latencies, errors, answers."""
    latencies: list[float] = []
    errors: list[str] = []
    answers: list[dict] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(number: int) -> None:
        asked = number
        while time.perf_counter() < stop:
            question = questions[asked % len(questions)]
            asked += clients
            started = time.perf_counter()
            try:
                status, record = request(f"{base}/ask", {"question": question})
                ok = status == 200
            except Exception as exc:  # counted, never fatal
                ok, record = False, {"error": repr(exc)}
            took = time.perf_counter() - started
            with lock:
                if ok:
                    latencies.append(took)
                    answers.append(record)
                else:
                    errors.append(str(record)[:200])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    begun = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begun
    ms = [x * 1000 for x in latencies]
    return {
        "clients": clients,
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": percentile(ms, 0.50) if ms else None,
        "p95": percentile(ms, 0.95) if ms else None,
        "p99": percentile(ms, 0.99) if ms else None,
        "errors": len(errors),
        "error_sample": errors[:3],
        "answers": answers,
    }


def row(result: dict, rss: float) -> str:
    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.0f}"

    return (
        f"| {result['clients']} | {result['rps']:.2f} | {f(result['p50'])} / {f(result['p95'])} / "
        f"{f(result['p99'])} ms | {result['errors']} | {rss:.0f} MiB |"
    )


def faults(
    base: str, port: int, index: Path, server: subprocess.Popen[bytes],
    start: Callable[[], subprocess.Popen[bytes]],
) -> list[str]:  # fmt: skip
    """A batch cut by its client, a request over the limits, SIGKILL and a restart
    (`start()` starts the server again as it was)."""
    notes = []
    # a client that goes away in the middle of a batch
    body = json.dumps({"questions": ["Who won?"] * 50}).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        sock.recv(200)
    status, _ = request(f"{base}/ask", {"question": "Who won the election?"})
    notes.append(f"after a client left mid-batch: /ask {status}")
    # over the limits
    try:
        request(f"{base}/ask", {"question": "x" * 2_000_000})
        notes.append("a 2 MB body was accepted (it should not be)")
    except urllib.error.HTTPError as exc:
        notes.append(f"a 2 MB body: {exc.code} {exc.read().decode()[:80]}")
    except (urllib.error.URLError, ConnectionError) as exc:
        # the server answered 413 and closed before the client had sent it all
        notes.append(f"a 2 MB body: refused before it was read ({exc})")
    # killed and started again
    # the whole process group: with --workers the worker processes die with their parent
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    again = start()
    status, record = request(f"{base}/ask", {"question": "Who won the election?"})
    notes.append(f"after SIGKILL and a restart: /ask {status}, {len(record['answers'])} answers")
    from qa.errors import IndexBusyError
    from qa.index import write_lock

    try:
        with write_lock(index):
            notes.append("the index's write lock is free (a writer can update it)")
    except IndexBusyError as exc:
        notes.append(f"the index is left locked: {exc}")
    again.terminate()
    again.wait(timeout=30)
    return notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--held-back", type=int, default=100)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="qa serve --workers")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="model threads a server process (0: the cores divided among the workers)",
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    from qa.encoders import load_encoder
    from qa.index import IndexReader, sync_index

    questions = template_questions(args.corpus, args.questions, args.seed)
    work = Path(tempfile.mkdtemp(prefix="qa-bench-serve-"))
    try:
        corpus = work / "corpus"
        shutil.copytree(args.corpus, corpus)
        files = sorted(p for p in corpus.rglob("*.txt") if p.name.upper() != "README.TXT")
        held = work / "held"
        for path in files[-args.held_back :]:
            target = held / path.relative_to(corpus)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
        index = work / "index"
        print(f"building the index of {len(files) - args.held_back} articles ...", file=sys.stderr)
        encoder = load_encoder()
        sync_index(corpus, index, lambda _: encoder, full=True)
        admin = work / "admin-token"
        admin.write_text(ADMIN_TOKEN + "\n")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        start = functools.partial(start_server, index, port, admin, args.workers, args.threads)
        server = start()
        threads = args.threads or "the cores / workers"
        print(f"qa serve --workers {args.workers}, model threads {threads}")
        print("| clients | requests/s | p50 / p95 / p99 | errors | server RSS |")
        print("| --- | --- | --- | --- | --- |")
        results = []
        for clients in counts:
            result = load(base, questions, clients, args.seconds)
            results.append(result)
            print(row(result, rss_mib(server.pid)), flush=True)
        # the same during an update that adds the held-back articles
        shutil.copytree(held, corpus, dirs_exist_ok=True)
        request(f"{base}/update", {}, token=ADMIN_TOKEN)
        during = load(base, questions, max(counts), args.seconds)
        for _ in range(600):
            _, state = request(f"{base}/update", token=ADMIN_TOKEN)
            if state["state"] != "running":
                break
            time.sleep(1)
        print(
            row(during, rss_mib(server.pid))
            + f" (during an update adding {args.held_back}: {state['state']})"
        )
        _, after = request(f"{base}/status")
        with IndexReader(index) as reader:
            known = {row[0] for row in reader.conn.execute("SELECT id FROM articles")}
        cited = {
            c["article_id"]
            for a in during["answers"]
            for ans in a["answers"]
            for c in ans["citations"]
        }
        missing = cited - known
        print(
            f"update: {state['state']}, {after['articles']} articles; {len(cited)} articles "
            f"cited during it, {len(missing)} of them missing from the index"
        )
        if len(results) > 1:
            ratio = results[-1]["rps"] / results[0]["rps"]
            print(f"{counts[-1]} clients / 1 client throughput: {ratio:.2f}x")
        for note in faults(base, port, index, server, start):
            print(f"- {note}")
        if server.poll() is None:
            server.terminate()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
