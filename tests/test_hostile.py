"""Hostile input: what comes from articles or questions is data in every output file."""

from __future__ import annotations

import csv
import io

from qa.batch import Writer, markdown_record

EVIL = '=HYPERLINK("http://evil.example","x") \x1b]52;c;cHduZWQ=\x07 \u202e'
RECORD = {
    "id": "q1",
    "question": "+cmd|' /C calc'!A0 \x1b[2J?",
    "not_found": False,
    "confidence": 0.9,
    "answers": [
        {
            "text": EVIL + " said <script>alert(1)</script> ![img](http://x/y.png)",
            "span": "=HYPERLINK",
            "span_start": 0,
            "score": 0.9,
            "citations": [
                {
                    "article_id": "a",
                    "title": "@SUM(1+1) [link](javascript:alert(1))",
                    "path": "-evil.txt",
                    "published": None,
                    "url": "javascript:alert(1)",
                    "paragraph": 1,
                    "char_start": 0,
                    "char_end": 10,
                    "quote": "<img src=x onerror=alert(1)>\nnext line",
                }
            ],
        }
    ],
    "related": [],
}


def write(fmt: str) -> str:
    handle = io.StringIO()
    Writer(handle, fmt, header=True).write(RECORD)
    return handle.getvalue()


def test_csv_cells_are_never_formulas_or_control_sequences() -> None:
    rows = list(csv.DictReader(io.StringIO(write("csv"))))
    row = rows[0]
    for key in ("question", "answer", "span", "title", "path"):
        assert not row[key].startswith(("=", "+", "-", "@")), key
        assert "\x1b" not in row[key] and "\x07" not in row[key] and "\u202e" not in row[key]
    assert row["answer"].startswith("'=HYPERLINK") and "\\x1b]52" in row["answer"]
    assert row["id"] == "q1"


def test_markdown_output_is_literal() -> None:
    text = markdown_record(RECORD)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "<script>" not in text and "<img" not in text and "&lt;script&gt;" in text
    assert "![img]" not in text and "\\!\\[img\\]" in text
    assert "](javascript:" not in text and "<javascript:" not in text
    assert "[link](" not in text and "address: javascript:alert" in text
    # the quote stays one blockquote line, and the span is still emphasised by us
    assert "> &lt;img src=x onerror=alert\\(1\\)&gt; next line" in text
    assert "1. **=HYPERLINK**" in text
