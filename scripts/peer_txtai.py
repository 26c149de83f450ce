"""The txtai side of scripts/bench_peers.py; runs inside the peer's own virtual environment.

    python peer_txtai.py build MODEL DOCS.jsonl INDEX_DIR CONTENT
    python peer_txtai.py query INDEX_DIR QUESTIONS.json RUNS
    python peer_txtai.py squad MODEL PARAGRAPHS.jsonl QUESTIONS.json

It imports nothing from qa (qa is not installed there). Every mode prints one JSON object.
txtai runs as its documentation shows: `Embeddings(path=MODEL, hybrid=True, content=...)`,
i.e. dense vectors from the same sentence-transformers model plus its BM25 index, scores
fused by txtai; with CONTENT=1 it also stores the texts and returns passages with their text
(slower), with 0 it returns ids and scores only (its fastest search).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def embeddings(model: str, content: bool) -> Any:
    from txtai import Embeddings

    return Embeddings(path=model, method="sentence-transformers", hybrid=True, content=content)


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def build(model: str, docs_path: str, index_dir: str, content: str) -> dict:
    docs = read_jsonl(docs_path)
    started = time.perf_counter()
    index = embeddings(model, content == "1")
    index.index((doc["id"], doc["text"], None) for doc in docs)
    index.save(index_dir)
    return {"documents": len(docs), "build_s_in_process": time.perf_counter() - started}


def query(index_dir: str, questions_path: str, runs: int) -> dict:
    from txtai import Embeddings

    questions = json.loads(Path(questions_path).read_text(encoding="utf-8"))
    index = Embeddings()
    index.load(index_dir)
    index.search("warm up", 20)
    p50s, p95s = [], []
    for _ in range(runs):
        latencies = []
        for question in questions:
            started = time.perf_counter()
            index.search(question, 20)
            latencies.append((time.perf_counter() - started) * 1000)
        p50s.append(percentile(latencies, 0.5))
        p95s.append(percentile(latencies, 0.95))
    return {"p50_ms": statistics.median(p50s), "p95_ms": statistics.median(p95s)}


def squad(model: str, paragraphs_path: str, questions_path: str) -> dict:
    paragraphs = read_jsonl(paragraphs_path)
    questions = json.loads(Path(questions_path).read_text(encoding="utf-8"))
    index = embeddings(model, content=False)
    index.index((p["id"], p["text"], None) for p in paragraphs)
    hits = {1: 0, 5: 0, 20: 0}
    for item in questions:
        found = [result[0] for result in index.search(item["question"], 20)]
        for k in hits:
            hits[k] += item["paragraph"] in found[:k]
    total = max(1, len(questions))
    return {"questions": len(questions), **{f"recall@{k}": v / total for k, v in hits.items()}}


def main() -> int:
    mode, *args = sys.argv[1:]
    if mode == "build":
        result = build(*args)
    elif mode == "query":
        result = query(args[0], args[1], int(args[2]))
    elif mode == "squad":
        result = squad(*args)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
