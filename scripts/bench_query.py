"""Benchmark question answering latency and batch throughput (run by hand, not in CI).

    python scripts/bench_query.py [--corpus ../shared/data/bbc] [--index DIR] [--questions 300]

On an index of the corpus (built first if DIR holds none), prints:
- `ask` latency, warm, in one process, retrieval and reading included: p50, p95, mean
  (median of --runs passes over the same questions);
- retrieval alone (question in, ranked passages out) p50 and p95, for comparison with peers;
- `qa batch` throughput: questions/s of a whole `qa batch` command (a new process, start-up
  and model load included) and in-process.
The questions are the headlines of randomly chosen articles turned into questions
("What happened: <headline>?") plus their first sentence's key words, so they are about the
corpus without being copied from the answer sentence.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from qa.articles import load_corpus  # noqa: E402
from qa.encoders import load_encoder  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.evaluate import percentile  # noqa: E402
from qa.index import index_exists, sync_index  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "bbc"
TEMPLATES = [
    "What happened: {title}?",
    "Who is involved in {title}?",
    "When did {title} happen?",
    "How many people were affected by {title}?",
    "Why {title}?",
]


def make_questions(corpus: Path, count: int, seed: int) -> list[str]:
    """`count` questions about random articles of `corpus` (the same for the same seed)."""
    articles = load_corpus(corpus).articles
    rng = random.Random(seed)
    return [
        rng.choice(TEMPLATES).format(title=article.title)
        for article in rng.sample(articles, min(count, len(articles)))
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--index", type=Path, default=Path(tempfile.gettempdir()) / "qa-bench-bbc")
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    if not index_exists(args.index):
        print(f"building {args.index} from {args.corpus} ...", file=sys.stderr)
        encoder = load_encoder()
        sync_index(args.corpus, args.index, lambda _: encoder, full=True)
    questions = make_questions(args.corpus, args.questions, args.seed)

    engine = Engine.open(args.index)
    engine.warm_up()
    ask_p50, ask_p95, ask_mean, ret_p50, ret_p95 = [], [], [], [], []
    for _ in range(args.runs):
        latencies, retrieval = [], []
        for question in questions:
            started = time.perf_counter()
            engine.retriever.search(question, k=20)
            retrieval.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            engine.ask(question)
            latencies.append((time.perf_counter() - started) * 1000)
        ask_p50.append(percentile(latencies, 0.5))
        ask_p95.append(percentile(latencies, 0.95))
        ask_mean.append(statistics.fmean(latencies))
        ret_p50.append(percentile(retrieval, 0.5))
        ret_p95.append(percentile(retrieval, 0.95))
    engine.close()

    with tempfile.TemporaryDirectory() as tmp:
        qfile = Path(tmp) / "questions.txt"
        qfile.write_text("\n".join(questions) + "\n")
        batch_times = []
        for run in range(args.runs):
            out = Path(tmp) / f"answers-{run}.jsonl"
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "qa.cli", "batch", str(qfile), "--index", str(args.index),
                 "-o", str(out), "-q"],
                check=True,
                cwd=ROOT,
            )  # fmt: skip
            batch_times.append(time.perf_counter() - started)

    n = len(questions)
    print(f"index                        {args.index} ({args.corpus})")
    print(f"questions                    {n} (x {args.runs} runs; medians of the runs)")
    print(f"ask latency p50              {statistics.median(ask_p50):.1f} ms")
    print(f"ask latency p95              {statistics.median(ask_p95):.1f} ms")
    print(f"ask latency mean             {statistics.median(ask_mean):.1f} ms")
    print(f"retrieval only p50           {statistics.median(ret_p50):.1f} ms")
    print(f"retrieval only p95           {statistics.median(ret_p95):.1f} ms")
    print(f"ask in-process               {1000 / statistics.median(ask_mean):.1f} questions/s")
    batch = statistics.median(batch_times)
    print(f"qa batch (new process)       {n / batch:.1f} questions/s ({batch:.1f} s for {n})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
