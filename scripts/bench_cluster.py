"""Benchmark embedding on Ray against embedding in process (run by hand, not in CI).

    python scripts/bench_cluster.py [--corpus ../shared/data/bbc] [--runs 3] [--articles N]

Builds the index of the corpus from scratch (default encoder: ONNX int8) in process, then
with `--engine ray` on a local Ray (started once, outside the timings, as a cluster is) with
1 and 2 workers, `--runs` times each, and prints for each the median whole-build time and
the embedding rate (chunks/s over the embedding stage, actor start-up and model loading
included), the ratio of each Ray build to the in-process one, and the rate per worker. From
that rate it projects the embedding time of a million articles (at this corpus's chunks per
article) on N nodes of this machine's size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from qa.encoders import encoder_factory
from qa.index import Progress, sync_index

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "bbc"


class EmbedClock:
    """A progress callback that times the embedding stage."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.end: float | None = None

    def __call__(self, progress: Progress) -> None:
        if progress.stage in ("model", "embed") and self.start is None:
            self.start = time.perf_counter()
        if progress.stage == "embed" and progress.total and progress.done == progress.total:
            self.end = time.perf_counter()

    @property
    def seconds(self) -> float:
        assert self.start is not None and self.end is not None
        return self.end - self.start


def build(corpus: Path, embedder: object | None) -> tuple[float, float, int]:
    """(whole build seconds, embedding seconds, chunks) of one build from scratch."""
    work = Path(tempfile.mkdtemp(prefix="qa-bench-cluster-"))
    try:
        clock = EmbedClock()
        started = time.perf_counter()
        report = sync_index(
            corpus, work / "index", encoder_factory(None), full=True, progress=clock,
            embedder=embedder,  # type: ignore[arg-type]
        )  # fmt: skip
        return time.perf_counter() - started, clock.seconds, report.embedded_chunks
    finally:
        shutil.rmtree(work, ignore_errors=True)


def subset(corpus: Path, articles: int, into: Path) -> Path:
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix in {".txt", ".md"})
    for path in files[:articles]:
        target = into / path.relative_to(corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--articles", type=int, default=0, help="use the first N files (0: all)")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="local Ray's CPUs")
    args = parser.parse_args()

    from qa.cluster import RayEmbedder, import_ray

    ray = import_ray()
    corpus = args.corpus
    temp = None
    if args.articles:
        temp = Path(tempfile.mkdtemp(prefix="qa-bench-corpus-"))
        corpus = subset(args.corpus, args.articles, temp)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    try:
        configs: list[tuple[str, object | None, int]] = [("in process", None, 0)]
        for workers in sorted({1, args.cpus}):
            configs.append((f"Ray, {workers} worker(s)", RayEmbedder(workers=workers), workers))
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _, _ in configs}
        for run in range(args.runs):  # interleaved: drift in the machine hits all alike
            for name, embedder, _ in configs:
                total, embed, chunks = build(corpus, embedder)
                results[name].append((total, embed, chunks))
                print(
                    f"run {run + 1} {name}: build {total:.1f} s, embedding {embed:.1f} s, "
                    f"{chunks / embed:.1f} chunks/s",
                    flush=True,
                )
    finally:
        ray.shutdown()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)

    chunks = results["in process"][0][2]
    articles = args.articles or sum(
        1 for p in args.corpus.rglob("*") if p.is_file() and p.suffix in {".txt", ".md"}
    )
    base_total = statistics.median(r[0] for r in results["in process"])
    base_rate = statistics.median(chunks / r[1] for r in results["in process"])
    print(f"in process: {base_rate:.1f} chunks/s")
    print(f"\n{articles:,} articles, {chunks:,} chunks; medians of {args.runs} runs")
    print(f"{'engine':<20} {'build s':>8} {'chunks/s':>9} {'build ratio':>12} {'per worker':>11}")
    node_rate = base_rate
    for name, _, workers in configs:
        total = statistics.median(r[0] for r in results[name])
        rate = statistics.median(chunks / r[1] for r in results[name])
        ratio = total / base_total
        each = rate / workers if workers else rate
        node_rate = rate  # the last config: one worker per CPU, a whole node's rate
        print(f"{name:<20} {total:>8.1f} {rate:>9.1f} {ratio:>11.2f}x {each:>11.1f}")
    million_chunks = 1_000_000 * chunks / articles
    print(
        f"\nprojection: 1,000,000 articles = {million_chunks / 1e6:.2f} M chunks at "
        f"{node_rate:.1f} chunks/s a node like this one ({args.cpus} workers):"
    )
    for nodes in (1, 4, 16, 64):
        hours = million_chunks / (node_rate * nodes) / 3600
        print(f"  {nodes:>3} node(s): {hours:6.2f} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
