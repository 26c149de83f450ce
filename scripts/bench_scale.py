"""Benchmark the store and search at scale, with a fast fake encoder (run by hand, not in CI).

    python scripts/bench_scale.py --articles 100000 [--work DIR] [--seed 0] [--keep]

Makes a synthetic corpus of N news-like articles (deterministic from --seed: sentences and
headlines of the BBC corpus recombined, each article made unique by a reference line, in
JSONL files of 1,000 articles), then measures, each step in its own process so that its
peak RSS is its own:
- build: `qa index build` from scratch (chunking, embedding, SQLite, FAISS), with the time
  of each stage;
- add: `index update` after a new file of 100 articles;
- no-op: `index update` with nothing changed;
- ask: retrieval (`Engine.search`: keyword + dense + re-ranking, no reader) p50 / p95 over
  200 questions, warm, and the process's peak RSS; and the overview an empty chat opens
  with (`Engine.overview`: article count, date range, latest headlines), median of 5;
- disk: the index folder, and the stored per-sentence vectors' cost per chunk.
The encoder is a fake so that the store and search are what is timed: 384-dimensional
vectors drawn around one of 2,048 topic vectors (the article's headline picks it), and per-
sentence vectors as the real encoder stores them (float16), so sizes are the real ones.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

BBC = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "bbc"
SHARD = 1000
DIMENSION = 384
TOPICS = 2048


class FakeEncoder:
    """The `Encoder` protocol, fast: no model. Vectors cluster by the headline's topic."""

    name = "bench/fake-384"
    backend = "fake"
    weights_sha256 = None
    dimension = DIMENSION
    max_word_pieces = 256

    def __init__(self) -> None:
        rng = np.random.default_rng(1)
        topics = rng.standard_normal((TOPICS, DIMENSION)).astype(np.float32)
        self.topics = topics / np.linalg.norm(topics, axis=1, keepdims=True)
        self.rng = np.random.default_rng(2)

    def load(self) -> None:
        pass

    def count_word_pieces(self, texts: list[str]) -> list[int]:
        return [len(text) // 4 + 2 for text in texts]

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        topic = [zlib.crc32(text.split(",", 1)[0].encode()) % TOPICS for text in texts]
        noise = self.rng.standard_normal((len(texts), DIMENSION)).astype(np.float32)
        vectors = self.topics[topic] + 0.05 * noise
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def encode(self, texts: Sequence[str], batch_size: int | None = None, progress=None):
        vectors = self._vectors(texts)
        if progress is not None:
            progress(len(texts))
        return vectors

    def encode_with_spans(self, texts, spans, batch_size=None, progress=None):
        vectors = self.encode(texts, batch_size, progress)
        return vectors, [
            np.repeat(v[None, :], max(1, len(s)), axis=0) for v, s in zip(vectors, spans)
        ]


def factory(_: Any) -> FakeEncoder:
    return FakeEncoder()


# --------------------------------------------------------------------------- corpus


def bbc_material() -> tuple[list[str], list[list[str]]]:
    titles, bodies = [], []
    for path in sorted(BBC.rglob("*.txt")):
        lines = path.read_text(encoding="latin-1").strip().splitlines()
        if not lines:
            continue
        sentences = re.split(r"(?<=[.!?])\s+", " ".join(line.strip() for line in lines[1:]))
        sentences = [s for s in sentences if len(s) > 30]
        if sentences:
            titles.append(lines[0].strip())
            bodies.append(sentences)
    return titles, bodies


def write_articles(folder: Path, start: int, count: int, seed: int, name: str) -> None:
    titles, bodies = bbc_material()
    everything = [s for body in bodies for s in body]
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed * 1_000_003 + start)
    for shard_start in range(start, start + count, SHARD):
        path = folder / f"{name}-{shard_start // SHARD:05d}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for number in range(shard_start, min(start + count, shard_start + SHARD)):
                base = rng.randrange(len(titles))
                own = bodies[base]
                sentences = rng.sample(own, min(len(own), rng.randint(6, 10)))
                sentences += rng.sample(everything, rng.randint(2, 5))
                rng.shuffle(sentences)
                day = 1 + number % 28
                sentences.append(
                    f"Archive reference {number} filed on 2005-{1 + number % 12:02d}-{day:02d}."
                )
                record = {
                    "id": f"a{number}",
                    "title": f"{titles[base]}, report {number}",
                    "date": f"2005-{1 + number % 12:02d}-{day:02d}",
                    "body": " ".join(sentences),
                }
                handle.write(json.dumps(record) + "\n")


# --------------------------------------------------------------------------- steps


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_sync(corpus: Path, index: Path, full: bool) -> dict[str, Any]:
    from qa.index import Progress, sync_index

    stages: dict[str, float] = {}
    since = time.perf_counter()
    stage = ""

    def progress(p: Progress) -> None:
        nonlocal since, stage
        now = time.perf_counter()
        if stage:
            stages[stage] = stages.get(stage, 0.0) + now - since
        since, stage = now, p.stage

    started = time.perf_counter()
    report = sync_index(corpus, index, factory, full=full, progress=progress, batch_size=1024)
    seconds = time.perf_counter() - started
    if stage:
        stages[stage] = stages.get(stage, 0.0) + time.perf_counter() - since
    return {
        "seconds": seconds,
        "stages": {k: round(v, 1) for k, v in stages.items()},
        "articles": report.article_count,
        "chunks": report.chunk_count,
        "embedded_chunks": report.embedded_chunks,
        "peak_rss_mb": peak_rss_mb(),
    }


def step_ask(index: Path, questions: int, seed: int) -> dict[str, Any]:
    from qa.engine import Engine

    titles, _ = bbc_material()
    rng = random.Random(seed)
    templates = ["What happened: {}?", "Who is involved in {}?", "Why {}?", "When did {} happen?"]
    asked = [rng.choice(templates).format(rng.choice(titles).lower()) for _ in range(questions)]
    started = time.perf_counter()
    engine = Engine.open(index, encoder=FakeEncoder())
    engine.index.faiss  # noqa: B018 - loads it
    opened = time.perf_counter() - started
    engine.search(asked[0])  # warm
    times = []
    for question in asked:
        t = time.perf_counter()
        engine.search(question, k=20)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    overview = []
    for _ in range(5):
        t = time.perf_counter()
        engine.overview()
        overview.append((time.perf_counter() - t) * 1000)
    status = engine.status()
    engine.close()
    return {
        "open_seconds": opened,
        "p50_ms": statistics.median(times),
        "p95_ms": times[int(0.95 * (len(times) - 1))],
        "faiss": status["faiss"],
        "overview_ms": statistics.median(overview),
        "peak_rss_mb": peak_rss_mb(),
    }


def step_disk(index: Path) -> dict[str, Any]:
    import sqlite3

    files = {p.name: p.stat().st_size for p in index.iterdir() if p.is_file()}
    conn = sqlite3.connect(f"file:{index / 'store.sqlite'}?mode=ro", uri=True)
    vector, sentences = conn.execute(
        "SELECT avg(length(vector)), avg(coalesce(length(sentence_vectors), 0)) "
        "FROM chunks WHERE id % 50 = 0"
    ).fetchone()
    conn.close()
    return {
        "total_bytes": sum(files.values()),
        "files": files,
        "vector_bytes_per_chunk": vector,
        "sentence_vector_bytes_per_chunk": sentences,
    }


def run_step(args: argparse.Namespace, step: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--step", step, "--work", str(args.work),
               "--articles", str(args.articles), "--seed", str(args.seed)]  # fmt: skip
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the corpus and index")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    if args.step:
        corpus, index = args.work / "corpus", args.work / "index"
        if args.step == "build":
            result = step_sync(corpus, index, full=True)
        elif args.step in ("add", "noop"):
            result = step_sync(corpus, index, full=False)
        elif args.step == "ask":
            result = step_ask(index, args.questions, args.seed)
        else:
            result = step_disk(index)
        print(json.dumps(result))
        return 0

    temporary = args.work is None
    args.work = args.work or Path(tempfile.mkdtemp(prefix="qa-bench-scale-"))
    try:
        started = time.perf_counter()
        write_articles(args.work / "corpus", 0, args.articles, args.seed, "archive")
        print(f"corpus: {args.articles:,} articles in {time.perf_counter() - started:.0f} s",
              flush=True)  # fmt: skip
        results = {"build": run_step(args, "build")}
        print("build", json.dumps(results["build"]), flush=True)
        write_articles(args.work / "corpus", args.articles, 100, args.seed + 1, "added")
        results["add"] = run_step(args, "add")
        print("add", json.dumps(results["add"]), flush=True)
        results["noop"] = run_step(args, "noop")
        print("noop", json.dumps(results["noop"]), flush=True)
        results["ask"] = run_step(args, "ask")
        print("ask", json.dumps(results["ask"]), flush=True)
        results["disk"] = run_step(args, "disk")
        print("disk", json.dumps(results["disk"]), flush=True)
    finally:
        if temporary and not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)

    b, a, n, q, d = (results[k] for k in ("build", "add", "noop", "ask", "disk"))
    print(f"\n{args.articles:,} articles, {b['chunks']:,} chunks ({q['faiss']})")
    print(f"  build                {b['seconds']:8.1f} s  peak RSS {b['peak_rss_mb']:7.0f} MB  "
          f"stages {b['stages']}")  # fmt: skip
    print(f"  add 100 articles     {a['seconds']:8.1f} s  peak RSS {a['peak_rss_mb']:7.0f} MB  "
          f"({a['embedded_chunks']} chunks embedded; stages {a['stages']})")  # fmt: skip
    print(f"  no-op update         {n['seconds']:8.2f} s  peak RSS {n['peak_rss_mb']:7.0f} MB")
    print(f"  retrieval p50 / p95  {q['p50_ms']:6.1f} / {q['p95_ms']:.1f} ms  "
          f"peak RSS {q['peak_rss_mb']:7.0f} MB  (open {q['open_seconds']:.1f} s)")  # fmt: skip
    print(f"  chat overview        {q['overview_ms']:8.1f} ms")
    print(f"  disk                 {d['total_bytes'] / 2**30:8.2f} GiB  "
          f"vector {d['vector_bytes_per_chunk']:.0f} B/chunk, sentence vectors "
          f"{d['sentence_vector_bytes_per_chunk']:.0f} B/chunk")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
