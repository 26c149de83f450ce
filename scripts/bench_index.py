"""Benchmark index building and updating (run by hand, not in CI).

    python scripts/bench_index.py [--corpus ../shared/data/bbc] [--backend onnx-int8]
                                  [--runs 1] [--update-runs 5] [--no-raw]

Prints, for the corpus (copied to a temporary folder so it can be changed):
- articles, chunks, build seconds and chunks/s (`qa index build --backend B`, in this process);
- raw `SentenceTransformer.encode` (torch) chunks/s on the very same chunk texts, in this
  process, and the ratio build / raw (with the torch backend: the pipeline's overhead of
  reading, chunking, storing and FAISS; with an ONNX backend below 1 is the speed-up);
  --no-raw skips it (minutes on a large corpus);
- peak RSS and the index size on disk;
- seconds of `qa index update` (a new process each time, so start-up is included) after adding
  one article, and with nothing changed.
Every figure is the median of its runs.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from qa.chunking import embed_text  # noqa: E402
from qa.encoders import BACKENDS, DEFAULT_BACKEND, load_encoder  # noqa: E402
from qa.index import IndexReader, sync_index  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "bbc"


def qa_command(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "qa.cli", *args],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--runs", type=int, default=1, help="full builds (each minutes long)")
    parser.add_argument("--update-runs", type=int, default=5)
    parser.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND)
    parser.add_argument("--batch-size", type=int, default=None, help="[default: the backend's]")
    parser.add_argument(
        "--no-raw", action="store_true", help="skip the raw sentence-transformers baseline"
    )
    parser.add_argument(
        "--keep-index", type=Path, default=None, help="move the built index here at the end"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    corpus = work / "corpus"
    index = work / "index"
    shutil.copytree(args.corpus, corpus)
    encoder = load_encoder(None, args.backend)
    encoder.load()  # a first ONNX export (once per machine) is not part of a build
    factory = lambda existing: encoder  # noqa: E731 - one encoder for every run

    build_times, raw_times = [], []
    report = None
    for run in range(args.runs):
        started = time.perf_counter()
        report = sync_index(corpus, index, factory, full=True, batch_size=args.batch_size)
        build_times.append(time.perf_counter() - started)
        if args.no_raw:
            print(f"run {run + 1}: build {build_times[-1]:.1f} s")
            continue
        with IndexReader(index) as reader:
            texts = [
                embed_text(row[0], row[1][row[2] : row[3]])
                for row in reader.conn.execute(
                    "SELECT d.title, d.body, c.char_start, c.char_end FROM chunks c "
                    "JOIN documents d ON d.id = c.doc_id ORDER BY c.id"
                )
            ]
        # The baseline: sentence-transformers' own encode on the same texts (qa runs the
        # bundled model on plain torch, see qa/encoders/minilm.py).
        model = encoder.model  # type: ignore[attr-defined]
        started = time.perf_counter()
        model.encode(texts, batch_size=args.batch_size or 32, normalize_embeddings=True)
        raw_times.append(time.perf_counter() - started)
        print(f"run {run + 1}: build {build_times[-1]:.1f} s, raw encode {raw_times[-1]:.1f} s")
    assert report is not None
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = sum(p.stat().st_size for p in index.iterdir() if p.is_file())
    build_s = statistics.median(build_times)
    raw_s = statistics.median(raw_times) if raw_times else None

    add_times, noop_times = [], []
    seed = ROOT / "corpus" / "chosun" / "2016-11-01-nk-purges-military-officers.txt"
    for run in range(args.update_runs):
        text = seed.read_text(encoding="utf-8")
        # a new, distinct article each run
        (corpus / f"added-{run}.txt").write_text(f"Run {run}: {text}", encoding="utf-8")
        add_times.append(qa_command("index", "update", "--index", str(index), "-q"))
        noop_times.append(qa_command("index", "update", "--index", str(index), "-q"))

    print()
    print(f"corpus                       {args.corpus}")
    print(f"backend                      {args.backend}")
    print(f"articles                     {report.article_count:,}")
    print(f"chunks                       {report.chunk_count:,}")
    print(f"build seconds (median of {args.runs})  {build_s:.1f}")
    print(f"build chunks/s               {report.chunk_count / build_s:.1f}")
    if raw_s is not None:
        print(f"raw encode chunks/s          {report.chunk_count / raw_s:.1f}")
        print(f"build / raw encode (ratio)   {build_s / raw_s:.3f}")
    print(f"build seconds, each run      {', '.join(f'{t:.1f}' for t in build_times)}")
    print(f"peak RSS                     {peak_rss:,.0f} MiB")
    print(f"index size on disk           {size / 1024 / 1024:.1f} MiB")
    print(
        f"update, one article added    {statistics.median(add_times):.2f} s "
        f"(median of {args.update_runs}, new process each)"
    )
    print(
        f"update, nothing changed      {statistics.median(noop_times):.2f} s "
        f"(median of {args.update_runs}, new process each)"
    )
    if args.keep_index is not None:
        shutil.rmtree(args.keep_index, ignore_errors=True)
        shutil.move(str(index), str(args.keep_index))
        print(f"index kept in {args.keep_index} (its corpus copy is gone: query it, do not update)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
