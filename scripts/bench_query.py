"""Benchmark question answering latency and batch throughput (run by hand, not in CI).

    python scripts/bench_query.py [--corpus ../shared/data/bbc] [--index DIR] [--questions 300]
    python scripts/bench_query.py --against 311d29f [--questions 150]
    python scripts/bench_query.py --peer [--questions 100]

With `--against REF`, the same questions on the same index are asked of the code at git
REF (a temporary git worktree) and of this checkout, one question to each in turn in two
warm processes, so both meet the same machine at the same moments; `qa batch` runs alternate
too. It prints both, with the ratio of this checkout to REF.

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
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from qa.datasets import template_questions  # noqa: E402
from qa.encoders import load_encoder  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.evaluate import percentile  # noqa: E402
from qa.index import index_exists, sync_index  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "bbc"
WORKER = """
import sys, time
from pathlib import Path
from qa.engine import Engine
engine = Engine.open(Path(sys.argv[1]))
engine.warm_up()
print("ready", flush=True)
for line in sys.stdin:
    started = time.perf_counter()
    engine.ask(line.rstrip("\\n"))
    print(f"{(time.perf_counter() - started) * 1000:.3f}", flush=True)
"""


def against(ref: str, args: argparse.Namespace, questions: list[str]) -> int:
    """Interleaved latency and batch throughput of the code at `ref` and of this checkout."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "ref"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), ref],
            check=True,
        )
        try:
            roots = {ref: tree, "this checkout": ROOT}
            workers = {
                name: subprocess.Popen(
                    [sys.executable, "-c", WORKER, str(args.index)],
                    cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, text=True,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                )
                for name, root in roots.items()
            }  # fmt: skip
            for worker in workers.values():
                assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
            runs: dict[str, list[list[float]]] = {name: [] for name in workers}
            for _ in range(args.runs):
                latencies: dict[str, list[float]] = {name: [] for name in workers}
                for question in questions:
                    for name, worker in workers.items():
                        assert worker.stdin is not None and worker.stdout is not None
                        worker.stdin.write(" ".join(question.split()) + "\n")
                        worker.stdin.flush()
                        latencies[name].append(float(worker.stdout.readline()))
                for name in workers:
                    runs[name].append(latencies[name])
            for worker in workers.values():
                assert worker.stdin is not None
                worker.stdin.close()
                worker.wait()
            qfile = Path(tmp) / "questions.txt"
            qfile.write_text("\n".join(questions) + "\n")
            batch: dict[str, list[float]] = {name: [] for name in roots}
            for run in range(args.runs):
                for name, root in roots.items():
                    out = Path(tmp) / f"answers-{run}-{len(batch[name])}.jsonl"
                    started = time.perf_counter()
                    subprocess.run(
                        [sys.executable, "-m", "qa.cli", "batch", str(qfile), "--index",
                         str(args.index), "-o", str(out), "-q"],
                        check=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                    )  # fmt: skip
                    batch[name].append(time.perf_counter() - started)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
            )
    n = len(questions)
    figures = {
        name: {
            "ask p50 (ms)": statistics.median(percentile(r, 0.5) for r in runs[name]),
            "ask p95 (ms)": statistics.median(percentile(r, 0.95) for r in runs[name]),
            "qa batch (questions/s)": n / statistics.median(batch[name]),
        }
        for name in roots
    }
    print(f"index {args.index}; {n} questions x {args.runs} runs, interleaved; medians of runs")
    print(f"{'':26}{ref:>16}{'this checkout':>16}{'ratio':>8}")
    for key in figures[ref]:
        old, new = figures[ref][key], figures["this checkout"][key]
        print(f"{key:26}{old:16.1f}{new:16.1f}{new / old:8.2f}")
    return 0


def peer(args: argparse.Namespace, questions: list[str]) -> int:
    """`qa ask` against what a user would write instead: transformers'
    `pipeline("question-answering")` with the shipped reader's weights (dequantised, fp32
    torch) reading the same passages `qa` reads, its best span over them the answer. One
    question to each in turn, in this process; also how often the two best spans agree."""
    import torch
    from transformers import AutoTokenizer, BertForQuestionAnswering, pipeline

    from qa.encoders import bundled_model_dir
    from qa.reader_model import MAX_ANSWER_PIECES, MODEL_DIR, MODEL_NAME, dequantized_weights

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    model_dir = bundled_model_dir()
    model = BertForQuestionAnswering.from_pretrained(str(model_dir)).eval()
    state = {k: torch.tensor(v) for k, v in dequantized_weights(MODEL_DIR / MODEL_NAME).items()}
    model.load_state_dict({k: v for k, v in state.items() if k in model.state_dict()})
    reader = pipeline(
        "question-answering", model=model, tokenizer=AutoTokenizer.from_pretrained(str(model_dir))
    )
    engine = Engine.open(args.index)
    engine.warm_up()
    read = engine.extractor.read_passages
    times: dict[str, list[list[float]]] = {"qa ask": [], "transformers pipeline": []}
    agree = total = 0
    for run in range(args.runs):
        ours, theirs = [], []
        for question in questions:
            started = time.perf_counter()
            result = engine.ask(question)
            ours.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            passages = engine.search(question)
            contexts = [p.text for p in passages[:read]]
            with torch.inference_mode():
                found = reader(
                    question=[question] * len(contexts), context=contexts,
                    max_seq_len=engine.extractor.model.max_length,
                    doc_stride=engine.extractor.model.stride, max_answer_len=MAX_ANSWER_PIECES,
                )  # fmt: skip
            found = found if isinstance(found, list) else [found]
            theirs.append((time.perf_counter() - started) * 1000)
            if run == 0 and result.answers:
                best = max(found, key=lambda a: a["score"])
                total += 1
                agree += best["answer"].strip() == (result.answers[0].span or "").strip()
        times["qa ask"].append(ours)
        times["transformers pipeline"].append(theirs)
    engine.close()
    print(f"index {args.index}; {len(questions)} questions x {args.runs} runs, interleaved")
    print(f"{'':24}{'p50 (ms)':>10}{'p95 (ms)':>10}")
    figures = {}
    for name, runs in times.items():
        figures[name] = [statistics.median(percentile(r, q) for r in runs) for q in (0.5, 0.95)]
        print(f"{name:24}{figures[name][0]:10.1f}{figures[name][1]:10.1f}")
    ratio = [t / o for o, t in zip(figures["qa ask"], figures["transformers pipeline"])]
    print(f"{'pipeline / qa':24}{ratio[0]:10.2f}{ratio[1]:10.2f}")
    print(f"same best span as qa's answer: {agree} of {total} answered questions")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--index", type=Path, default=Path(tempfile.gettempdir()) / "qa-bench-bbc")
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--against", metavar="REF", default=None,
        help="also run the code at git REF, interleaved, and print the ratios",
    )  # fmt: skip
    parser.add_argument(
        "--peer", action="store_true",
        help="time transformers' question-answering pipeline with the same reader weights "
        "on the same passages, beside qa ask",
    )  # fmt: skip
    args = parser.parse_args()

    if not index_exists(args.index):
        print(f"building {args.index} from {args.corpus} ...", file=sys.stderr)
        encoder = load_encoder()
        sync_index(args.corpus, args.index, lambda _: encoder, full=True)
    questions = template_questions(args.corpus, args.questions, args.seed)
    if args.against:
        return against(args.against, args, questions)
    if args.peer:
        return peer(args, questions)

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
