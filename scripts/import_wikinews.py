"""Convert the unflagged Wikinews articles of ../shared/data into the bundled corpus.

Re-runnable: the output is a pure function of the input (one JSONL file a year of
publication, records in input order, undated articles in `wikinews-undated.jsonl`), written
atomically, so running it twice changes nothing.

    python scripts/import_wikinews.py [--source ../shared/data/wikinews/wikinews.jsonl]
                                      [--out corpus/wikinews]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "wikinews" / "wikinews.jsonl"
DEFAULT_OUT = ROOT / "corpus" / "wikinews"


def convert(source: Path, out: Path) -> dict[str, int]:
    by_year: dict[str, list[str]] = {}
    skipped = 0
    with source.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("flags"):
                skipped += 1
                continue
            year = (record.get("date") or "")[:4] or "undated"
            kept = {
                "id": record["id"],
                "title": record["title"],
                "date": record.get("date"),
                "url": record["url"],
                "categories": record.get("categories") or [],
                "source": "Wikinews",
                "body": record["body"],
            }
            by_year.setdefault(year, []).append(json.dumps(kept, ensure_ascii=False))
    out.mkdir(parents=True, exist_ok=True)
    wanted = {f"wikinews-{year}.jsonl" for year in by_year}
    for stale in out.glob("wikinews-*.jsonl"):
        if stale.name not in wanted:
            stale.unlink()
    counts = {}
    for year, lines in sorted(by_year.items()):
        target = out / f"wikinews-{year}.jsonl"
        fd, tmp = tempfile.mkstemp(dir=out, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(tmp, target)
        counts[target.name] = len(lines)
    counts["skipped (flagged)"] = skipped
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if not args.source.is_file():
        print(f"import_wikinews: {args.source}: no such file", file=sys.stderr)
        return 1
    counts = convert(args.source, args.out)
    for name, count in counts.items():
        print(f"{name}: {count}")
    print(f"articles: {sum(v for k, v in counts.items() if k.endswith('.jsonl'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
