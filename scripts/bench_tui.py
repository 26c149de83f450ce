"""Time from launching the terminal UI to its first frame and to the first possible answer.

    python scripts/bench_tui.py [--index index] [--corpus corpus] [--runs 5]

Each run starts a fresh Python process (as `qa` does) that opens the app over the index with
Textual's headless driver, and reports, measured from just before the process was spawned:
- first frame: Textual's Ready event (the first screen has been composed and drawn);
- first possible answer: the model and the FAISS index are loaded and a question would be
  answered at once.
Prints the median of the runs. Needs a built index (`qa index build`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys, time
from pathlib import Path
from qa.tui.app import QAApp

class Timed(QAApp):
    def on_ready(self) -> None:
        print("frame", time.time(), flush=True)

    def _engine_ready(self, engine):
        super()._engine_ready(engine)
        print("answerable", time.time(), flush=True)
        self.exit()

    def on_worker_state_changed(self, event):
        super().on_worker_state_changed(event)
        if event.worker.error is not None:
            print("error", repr(event.worker.error), file=sys.stderr, flush=True)
            self.exit(return_code=1)

Timed(Path(sys.argv[1]), Path(sys.argv[2])).run(headless=True, size=(120, 40))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "index")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not (args.index / "store.sqlite").exists():
        print(f"bench_tui: no index in {args.index}; run qa index build first", file=sys.stderr)
        return 1
    frames, answers = [], []
    for _ in range(args.runs):
        started = time.time()
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.index), str(args.corpus)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
        )
        if child.returncode != 0:
            print(f"bench_tui: the app failed: {child.stderr.strip()[-500:]}", file=sys.stderr)
            return 1
        out = child.stdout
        stamps = dict(line.split() for line in out.splitlines() if line[:1].isalpha())
        frames.append(float(stamps["frame"]) - started)
        answers.append(float(stamps["answerable"]) - started)
    print(f"index                    {args.index}")
    print(f"launch -> first frame    {statistics.median(frames):.2f} s (median of {args.runs})")
    print(f"launch -> can answer     {statistics.median(answers):.2f} s (median of {args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
