"""qa against txtai on the same machine, in one run (run by hand, not in CI).

    python scripts/bench_peers.py [--corpus ../shared/data/bbc] [--backends onnx-int8,torch]
                                  [--build-runs 3] [--questions 300] [--runs 3]
                                  [--squad-sample 1000]

The peer is txtai (`Embeddings` with the same bundled all-MiniLM-L6-v2 through
sentence-transformers, hybrid dense + BM25 search), installed on first use into its own
virtual environment under `.peers/` (git-ignored): torch==2.13.0 first (the local CPU build),
then txtai with the sentence-transformers and transformers versions it asks for.

Figures, printed with ratios (txtai / qa: above 1 means qa is faster or better):
- building an index of the corpus end to end: each `qa index build --backend B` and txtai's
  build + save, every one a new process timed from outside (interpreter start, imports and
  model load included); qa chunks articles into ~200-token passages, txtai indexes the
  articles' paragraphs (as it is usually fed); --build-runs rounds, each building every
  system once in turn (so a drift in the machine's speed hits all of them), medians reported
  with each round's ratios;
- retrieval, question in and ranked passages (with text) out, warm, in process: p50 / p95 of
  the same questions (medians of --runs passes); for qa that is `Retriever.search` (dense +
  BM25 + fusion + re-ranking, reading excluded, passages with text) on the index of the
  first backend; for txtai its hybrid `search`, ids and scores only unless --txtai-content
  (its fastest configuration is the one to beat);
- recall@5 on the same --squad-sample questions of SQuAD v1.1 dev: txtai over SQuAD's gold
  paragraphs, qa over its own chunks of the same articles (a hit: a passage holding the gold
  answer; for txtai, the question's own paragraph).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from qa.articles import load_corpus  # noqa: E402
from qa.datasets import (  # noqa: E402
    load_squad,
    select_questions,
    template_questions,
    write_corpus,
)
from qa.encoders import bundled_model_dir, encoder_factory, load_encoder  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.evaluate import evaluate, percentile  # noqa: E402
from qa.formats import split_paragraphs  # noqa: E402
from qa.index import sync_index  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "bbc"
DEFAULT_SQUAD = ROOT.parent / "shared" / "data" / "squad" / "dev-v1.1.json.zip"
PEERS = ROOT / ".peers"
TXTAI = "txtai==9.14.0"


def peer_python() -> Path:
    """The peer venv's python, made (once) if missing."""
    venv = PEERS / "txtai-venv"
    python = venv / "bin" / "python"
    stamp = venv / ".ready"
    if stamp.is_file():
        return python
    print(f"installing {TXTAI} into {venv} (once) ...", file=sys.stderr)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    # txtai 9.14 wants transformers 5: the peer gets the versions it asks for, in its own
    # environment (the model files are the same)
    subprocess.run([*pip, TXTAI, "sentence-transformers", "faiss-cpu"], check=True)
    subprocess.run([str(python), "-m", "pip", "check"], check=True)
    stamp.write_text(TXTAI + "\n")
    return python


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, check=True, env=env, stdout=subprocess.PIPE, text=True)
    return time.perf_counter() - started, done.stdout


def peer(python: Path, env: dict[str, str], *args: str) -> tuple[float, dict]:
    seconds, out = timed([str(python), str(ROOT / "scripts" / "peer_txtai.py"), *args], env)
    return seconds, json.loads(out.strip().splitlines()[-1])


def qa_retrieval(index: Path, questions: list[str], runs: int) -> tuple[float, float]:
    engine = Engine.open(index)
    engine.warm_up()
    for question in questions[:10]:
        engine.retriever.search(question, k=20)
    p50s, p95s = [], []
    for _ in range(runs):
        latencies = []
        for question in questions:
            started = time.perf_counter()
            engine.retriever.search(question, k=20)
            latencies.append((time.perf_counter() - started) * 1000)
        p50s.append(percentile(latencies, 0.5))
        p95s.append(percentile(latencies, 0.95))
    engine.close()
    return statistics.median(p50s), statistics.median(p95s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--squad", type=Path, default=DEFAULT_SQUAD)
    parser.add_argument("--backends", default="onnx-int8,torch")
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3, help="passes over the questions")
    parser.add_argument(
        "--build-runs", type=int, default=3, help="rounds of builds (each system once a round)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--squad-sample", type=int, default=1000)
    parser.add_argument("--skip-squad", action="store_true")
    parser.add_argument(
        "--txtai-content",
        action="store_true",
        help="txtai stores and returns the passage texts (content=True; slower searches)",
    )
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    python = peer_python()
    model = str(bundled_model_dir())
    work = Path(tempfile.mkdtemp(prefix="qa-peers-"))
    try:
        articles = load_corpus(args.corpus).articles
        docs = work / "paragraphs.jsonl"
        with docs.open("w", encoding="utf-8") as handle:
            for article in articles:
                # the title as a paragraph of its own, as txtai would be fed (and as the
                # 12,772 BBC "paragraphs" of the issue's own txtai measurement count them)
                paragraphs = [article.title, *split_paragraphs(article.body)]
                for number, paragraph in enumerate(paragraphs):
                    record = {"id": f"{article.id}#{number}", "text": paragraph}
                    handle.write(json.dumps(record) + "\n")
        paragraph_count = sum(1 for _ in docs.open(encoding="utf-8"))
        questions = template_questions(args.corpus, args.questions, args.seed)
        questions_file = work / "questions.json"
        questions_file.write_text(json.dumps(questions))

        for backend in backends:
            # the one-time ONNX export (cached per machine) is not part of a build
            load_encoder(None, backend).load()
        builds: dict[str, list[float]] = {backend: [] for backend in backends}
        txtai_builds: list[float] = []
        content = "1" if args.txtai_content else "0"
        for round_ in range(1, args.build_runs + 1):
            for backend in backends:
                print(f"round {round_}: qa index build --backend {backend} ...", file=sys.stderr)
                target = work / f"qa-{backend}"
                shutil.rmtree(target, ignore_errors=True)  # every build starts from nothing
                seconds, _ = timed(
                    [sys.executable, "-m", "qa.cli", "index", "build", "--corpus",
                     str(args.corpus), "--index", str(target), "--backend", backend, "-q"],
                    env,
                )  # fmt: skip
                builds[backend].append(seconds)
            print(f"round {round_}: txtai build ...", file=sys.stderr)
            shutil.rmtree(work / "txtai", ignore_errors=True)
            seconds, built = peer(
                python, env, "build", model, str(docs), str(work / "txtai"), content
            )
            txtai_builds.append(seconds)

        print("retrieval latency ...", file=sys.stderr)
        qa_p50, qa_p95 = qa_retrieval(work / f"qa-{backends[0]}", questions, args.runs)
        _, txtai_query = peer(
            python, env, "query", str(work / "txtai"), str(questions_file), str(args.runs)
        )

        recall: dict[str, float] = {}
        if not args.skip_squad:
            print("SQuAD recall@5 ...", file=sys.stderr)
            squad = load_squad(args.squad)
            sample = select_questions(squad, "all", args.squad_sample, seed=0)
            corpus_dir = write_corpus(squad, work / "squad-corpus").parent
            sync_index(corpus_dir, work / "qa-squad", encoder_factory(None, backends[0]), full=True)
            engine = Engine.open(work / "qa-squad")
            engine.warm_up()
            recall["qa"] = float(evaluate(engine, squad, sample)["recall@5"])
            engine.close()
            paragraphs_file = work / "squad-paragraphs.jsonl"
            with paragraphs_file.open("w", encoding="utf-8") as handle:
                for a, contexts in enumerate(squad.paragraphs):
                    for p, context in enumerate(contexts):
                        handle.write(json.dumps({"id": f"{a}:{p}", "text": context}) + "\n")
            squad_questions = work / "squad-questions.json"
            squad_questions.write_text(
                json.dumps(
                    [{"question": q.question, "paragraph": f"{q.article}:{q.paragraph}"}
                     for q in sample]
                )
            )  # fmt: skip
            _, txtai_squad = peer(
                python, env, "squad", model, str(paragraphs_file), str(squad_questions)
            )
            recall["txtai"] = float(txtai_squad["recall@5"])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    first = backends[0]
    txtai_build = statistics.median(txtai_builds)
    median = {backend: statistics.median(times) for backend, times in builds.items()}
    print()
    print(f"corpus                         {args.corpus} ({len(articles):,} articles)")
    print(f"txtai documents                {built['documents']:,} paragraphs ({paragraph_count:,})")
    print(f"builds: median of {args.build_runs} round(s); per round in brackets")

    def each(values: list[float], fmt: str) -> str:
        return "[" + ", ".join(format(v, fmt) for v in values) + "]"

    for backend in backends:
        print(
            f"qa build, {backend:<10}           {median[backend]:7.1f} s "
            f"{each(builds[backend], '.1f')}   "
            f"txtai / qa {txtai_build / median[backend]:.2f}x "
            f"{each([t / q for t, q in zip(txtai_builds, builds[backend])], '.2f')}   "
            f"{backend} / {first} {median[backend] / median[first]:.2f}x "
            f"{each([b / f for b, f in zip(builds[backend], builds[first])], '.2f')}"
        )
    print(f"txtai build                    {txtai_build:7.1f} s {each(txtai_builds, '.1f')}")
    print(
        f"retrieval p50 / p95, qa ({first})  {qa_p50:.1f} / {qa_p95:.1f} ms   "
        f"txtai {txtai_query['p50_ms']:.1f} / {txtai_query['p95_ms']:.1f} ms   "
        f"txtai / qa {txtai_query['p50_ms'] / qa_p50:.2f}x (p50), "
        f"{txtai_query['p95_ms'] / qa_p95:.2f}x (p95)"
    )
    if recall:
        print(
            f"SQuAD v1.1 recall@5 ({args.squad_sample} q)  qa {recall['qa']:.3f}   "
            f"txtai {recall['txtai']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
