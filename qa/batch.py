"""`qa batch`: a file of questions in, one answer record per question out, in input order.

Input: plain text (one question a line; blank lines and `#` comments skipped), JSONL (objects
with `question` and optional `id`) or CSV (a `question` column, optional `id`), chosen by
extension (`.jsonl`/`.ndjson`, `.csv`, anything else is text). Output: JSONL, CSV or Markdown,
written and flushed record by record, so an interrupted batch keeps what it finished and
`--resume` skips the ids already in the output.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from qa.answers import answer_pieces, citation_date, confidence_words, not_found_message
from qa.dates import DateMention
from qa.errors import InputError
from qa.text import QUESTION_WORDS, file_lines, terminal_safe

FORMATS = ("jsonl", "csv", "md")


@dataclass(frozen=True)
class BatchQuestion:
    id: str
    question: str
    error: str | None = None
    """Set when the input line itself is unusable; the record is written with this error."""


def read_questions(path: Path) -> list[BatchQuestion]:
    """Questions from a text, JSONL or CSV file, in order, each with an id."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        questions = _read_jsonl(text)
        if questions and all(q.error for q in questions):
            # a JSONL of articles would otherwise fail line by line after the whole run
            raise InputError(f"{path}: not a question file ({questions[0].error}, and so on)")
        return _flag_duplicates(questions)
    if suffix == ".csv":
        return _flag_duplicates(_read_csv(text, path))
    questions = []
    for number, line in enumerate(file_lines(text), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            questions.append(BatchQuestion(f"q{number}", line))
    reason = _not_questions(text, [q.question for q in questions])
    if reason:
        raise InputError(
            f"{path}: not a question file ({reason}); give one question a line, or JSONL or "
            "CSV with a 'question' field"
        )
    return questions


_LONGEST_QUESTION = 300
"""Characters: a longer line is a paragraph of an article, not a question."""


_REQUESTS = frozenset("tell name list give find show explain describe".split())
"""First words of requests that are questions without a question mark ("Tell me about Ring")."""


def _looks_like_question(line: str) -> bool:
    first = line.split(maxsplit=1)[0].lower().strip("\"'“‘(") if line.split() else ""
    return len(line) <= _LONGEST_QUESTION and (
        line.rstrip().endswith("?") or first in QUESTION_WORDS or first in _REQUESTS
    )


def _not_questions(text: str, lines: list[str]) -> str | None:
    """Why a plain-text file is not one question a line (an article, a web page), or None:
    asking "---" and "title: ..." as questions helps nobody."""
    start = text.lstrip()
    if start.startswith("---") and re.match(r"---\s*\n(?:[\w-]+\s*:.*\n)+", start):
        return "it begins with front matter, as an article does"
    if start.startswith("<") and re.match(r"<(?:!doctype|html|\?xml|head|body)\b", start, re.I):
        return "it is an HTML or XML page"
    asked = sum(_looks_like_question(line) for line in lines)
    if lines and asked == 0:
        return "no line is a question"
    if asked < len(lines) / 2 and any(len(line) > _LONGEST_QUESTION for line in lines):
        return "its lines are paragraphs, as an article's are"
    return None


def _flag_duplicates(questions: list[BatchQuestion]) -> list[BatchQuestion]:
    """A repeated id gets an error record (it would make `--resume` skip the wrong question)."""
    seen: set[str] = set()
    flagged = []
    for item in questions:
        if item.id in seen and not item.error:
            item = BatchQuestion(item.id, item.question, f"duplicate id {item.id!r} in the input")
        seen.add(item.id)
        flagged.append(item)
    return flagged


def _read_jsonl(text: str) -> list[BatchQuestion]:
    questions = []
    for number, line in enumerate(file_lines(text), 1):
        if not line.strip():
            continue
        fallback = f"q{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            questions.append(BatchQuestion(fallback, "", f"line {number}: bad JSON ({exc.msg})"))
            continue
        except RecursionError:
            questions.append(BatchQuestion(fallback, "", f"line {number}: JSON nested too deeply"))
            continue
        if not isinstance(obj, dict):
            questions.append(BatchQuestion(fallback, "", f"line {number}: not a JSON object"))
            continue
        qid = str(obj.get("id")) if obj.get("id") not in (None, "") else fallback
        question = obj.get("question")
        if not isinstance(question, str) or not question.strip():
            questions.append(BatchQuestion(qid, "", f"line {number}: no 'question' text"))
            continue
        questions.append(BatchQuestion(qid, question.strip()))
    return questions


def _read_csv(text: str, path: Path) -> list[BatchQuestion]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _csv_questions(reader, path)
    except csv.Error as exc:
        # a cell over the csv module's limit (128 KiB), a NUL byte...: one line, not a trace
        raise InputError(f"{path}:{reader.line_num + 1}: not a usable CSV row ({exc})") from None


def _csv_questions(reader: csv.DictReader[str], path: Path) -> list[BatchQuestion]:
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "question" not in fields:
        raise InputError(f"{path}: CSV needs a 'question' column (found: {', '.join(fields)})")
    questions = []
    for number, row in enumerate(reader, 2):
        row = {(k or "").strip().lower(): (v or "") for k, v in row.items()}
        qid = row.get("id", "").strip() or f"q{number}"
        question = row.get("question", "").strip()
        if not question:
            questions.append(BatchQuestion(qid, "", f"row {number}: empty question"))
        else:
            questions.append(BatchQuestion(qid, question))
    return questions


def check_output(
    output: Path,
    question_file: Path,
    index_dirs: Sequence[Path],
    corpus_dirs: Sequence[Path] = (),
) -> bool:
    """Refuse an output path that would destroy an input: the question file itself, any
    file of an index (the store, the FAISS file, the manifest) or of a corpus (an article).
    Returns whether the output must be written in
    place: a device, a named pipe or a symbolic link is written to, never replaced by a
    renamed temporary file (`-o /dev/null` must stay the device, `-o >(wc -c)` a pipe)."""
    from qa.index import STORE_FILE

    target = output.resolve()
    if output.exists() and question_file.exists() and output.samefile(question_file):
        raise InputError(f"{output}: that is the question file; choose another output file")
    in_an_index = (target.parent / STORE_FILE).exists()
    if in_an_index or any(target.parent == d.resolve() for d in index_dirs):
        raise InputError(f"{output}: that is inside an index folder; choose another output file")
    if any(c.is_dir() and target.is_relative_to(c.resolve()) for c in corpus_dirs):
        raise InputError(
            f"{output}: that is inside the corpus folder (it would become an article or "
            "overwrite one); choose another output file"
        )
    return output.is_symlink() or (output.exists() and not output.is_file())


def drop_torn_tail(path: Path, fmt: str) -> int:
    """Cut a record left half-written by a crash off the end of an output file, so `--resume`
    appends after the last whole record (the torn question is asked again). Returns the bytes
    cut."""
    if not path.exists() or fmt not in ("jsonl", "csv"):
        return 0
    data = path.read_bytes()
    end = _last_record_end(data, quoted=fmt == "csv")
    if end == len(data):
        return 0
    with path.open("r+b") as handle:
        handle.truncate(end)
    return len(data) - end


def _last_record_end(data: bytes, quoted: bool) -> int:
    """Byte offset just after the last newline that ends a record (outside CSV quotes)."""
    if not quoted:
        return data.rfind(b"\n") + 1
    end = 0
    in_quotes = False
    for position, byte in enumerate(data):
        if byte == 0x22:  # '"': a doubled quote toggles twice, which is right
            in_quotes = not in_quotes
        elif byte == 0x0A and not in_quotes:
            end = position + 1
    return end


def written_ids(path: Path, fmt: str) -> dict[str, bool]:
    """Ids already in an existing output file (for --resume), each with whether its record
    is a failure. Every written id counts as done: asking a failed one again would append a
    second record with the same id."""
    if not path.exists():
        return {}
    if fmt == "md":
        raise InputError("--resume needs --format jsonl or csv (Markdown is not re-read)")
    text = path.read_text(encoding="utf-8", errors="replace")
    ids: dict[str, bool] = {}
    if fmt == "jsonl":
        for line in file_lines(text):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash: that question is asked again
            if isinstance(record, dict) and "id" in record:
                ids[str(record["id"])] = "error" in record
    else:
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames and list(reader.fieldnames) != CSV_FIELDS:
            raise InputError(
                f"{path}: its columns are not the ones this qa writes (another version?); "
                "resume into a new file"
            )
        for row in reader:
            if row.get("id"):
                ids[row["id"]] = bool(row.get("error"))
    return ids


CSV_FIELDS = [
    "id", "question", "not_found", "confidence", "answer", "span", "score", "title", "path",
    "published", "url", "paragraph", "char_start", "char_end", "citations", "reason", "error",
]  # fmt: skip


class Writer:
    """Writes records one at a time, flushing each."""

    def written_id(self, question_id: str) -> str:
        """How an id reads back from this writer's output (`written_ids`): CSV cells are made
        safe for spreadsheets."""
        return str(cell_safe(question_id)) if self.fmt == "csv" else question_id

    def __init__(self, handle: IO[str], fmt: str, header: bool) -> None:
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
        self.handle = handle
        self.fmt = fmt
        self.written = 0
        """Records written by this writer (not counting what a resumed file already held)."""
        self._csv = csv.DictWriter(handle, CSV_FIELDS) if fmt == "csv" else None
        if header and self._csv is not None:
            self._csv.writeheader()
        if header and fmt == "md":
            handle.write("# Answers\n\n")

    def write(self, record: dict[str, Any]) -> None:
        self.written += 1
        if self.fmt == "jsonl":
            self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif self._csv is not None:
            self._csv.writerow(_csv_row(record))
        else:
            self.handle.write(markdown_record(record))
        self.handle.flush()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell_safe(value: Any) -> Any:
    """A CSV cell that came from an article or a question, made inert: control characters
    shown as escapes, and a leading `=`, `+`, `-` or `@` (a formula to a spreadsheet) behind a
    `'`, as OWASP advises for CSV injection."""
    if not isinstance(value, str):
        return value
    value = terminal_safe(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_bool(value: Any) -> str:
    """`true` / `false` as spreadsheets and CSV readers in other languages expect; empty for
    a record without the field (an error record)."""
    return "" if value is None else ("true" if value else "false")


def _csv_row(record: dict[str, Any]) -> dict[str, Any]:
    answers = record.get("answers") or []
    top = answers[0] if answers else {}
    citation = (top.get("citations") or [{}])[0] if top else {}
    row = {
        "id": record.get("id"),
        "question": record.get("question"),
        "not_found": _csv_bool(record.get("not_found")),
        "confidence": record.get("confidence", ""),
        "answer": top.get("text", ""),
        "span": top.get("span") or "",
        "score": top.get("score", ""),
        "title": citation.get("title", ""),
        "path": citation.get("path", ""),
        "published": citation.get("published") or "",
        "url": citation.get("url") or "",
        "paragraph": citation.get("paragraph", ""),
        "char_start": citation.get("char_start", ""),
        "char_end": citation.get("char_end", ""),
        # the data `qa verify` checks: ASCII JSON, so every control character, line separator
        # and tab of a quote is a \u escape that decodes to the exact text (the columns people
        # read are escaped for display instead)
        "citations": json.dumps(top.get("citations", []), ensure_ascii=True) if top else "",
        "reason": record.get("reason", ""),
        "error": record.get("error", ""),
    }
    # the id too: an input's id is data like its question (--resume compares written ids)
    return {key: cell_safe(value) for key, value in row.items()}


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>-])")


def markdown_safe(text: str) -> str:
    """Text from an article or a question as literal Markdown: control characters shown as
    escapes, HTML as entities (no `<script>`, no `<img>`), Markdown syntax backslash-escaped
    (no links, images or emphasis of its own), one line."""
    text = terminal_safe(" ".join(str(text).split()))
    text = html.escape(text, quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def markdown_record(record: dict[str, Any], first_citation: int = 1) -> str:
    """One answer record as Markdown; citations are numbered from `first_citation` (a chat
    export numbers them through the conversation, as the chat does)."""
    lines = [
        f"## {markdown_safe(str(record.get('id')))}: {markdown_safe(record.get('question') or '')}",
        "",
    ]
    query = record.get("query")
    if query and query != record.get("question"):
        lines += [f"_Searched: {markdown_safe(query)}_", ""]
    if record.get("error"):
        lines.append(f"**Error:** {markdown_safe(record['error'])}")
    elif record.get("not_found"):
        lines.append(f"_{markdown_safe(not_found_message(record.get('reason')))}_")
        for number, citation in enumerate(record.get("related", []), first_citation):
            lines.append(f"- related [{number}] {_md_citation(citation)}")
    else:
        number = first_citation - 1
        for index, answer in enumerate(record.get("answers", []), 1):
            before, span, after = answer_pieces(
                answer["text"], answer.get("span"), answer.get("span_start")
            )
            text = markdown_safe(before)
            if span:
                # the quote stays exact: spaces around the highlight only where it has them
                text = (
                    f"{_markdown_piece(before)}**{markdown_safe(span)}**{_markdown_piece(after)}"
                ).strip()
            if isinstance(answer.get("score"), int | float):
                text += f" _({confidence_words(float(answer['score']))})_"
            lines.append(f"{index}. {text}")
            if answer.get("dates"):
                when = "; ".join(DateMention.from_dict(d).describe() for d in answer["dates"])
                lines.append(f"   - when: {markdown_safe(when)}")
            for citation in answer["citations"]:
                number += 1
                lines.append(f"   - [{number}] {_md_citation(citation)}")
                lines.append(f"     > {markdown_safe(citation['quote'])}")
    return "\n".join(lines) + "\n\n"


def _markdown_piece(text: str) -> str:
    """`markdown_safe` of a piece of a sentence, keeping one space where it begins or ends
    with whitespace (which `markdown_safe` trims)."""
    if not text.strip():
        return " " if text else ""
    lead = " " if text[:1].isspace() else ""
    trail = " " if text[-1:].isspace() else ""
    return f"{lead}{markdown_safe(text)}{trail}"


def _md_citation(citation: dict[str, Any]) -> str:
    date = markdown_safe(citation_date(citation))
    where = markdown_safe(f"{citation['path']}:{citation['paragraph']}")
    url = str(citation.get("url") or "")
    # only web addresses become links (never javascript: or data:), and only clean ones
    if re.fullmatch(r"https?://[^\s<>\"'`]+", url):
        shown_url = f" <{url}>"
    else:
        shown_url = f" — address: {markdown_safe(url)}" if url else ""
    chars = f"chars {citation['char_start']}-{citation['char_end']}"
    return f"{markdown_safe(citation['title'])} — {date} — {where} ({chars}){shown_url}"


def answer_record(question_id: str, question: str, ask: Callable[[str], Any]) -> dict[str, Any]:
    """One question's record as a batch gives it: its result under its id, or an `error`
    when asking failed (one bad question never stops a batch)."""
    try:
        result = ask(question)
    except Exception as exc:
        return {"id": question_id, "question": question, "error": f"{exc}"}
    return {"id": question_id, **result.as_dict()}


def run_batch(
    questions: list[BatchQuestion],
    ask: Callable[[str], Any],
    writer: Writer,
    skip: set[str],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Answer each question not in `skip` (ids as `writer` writes them); returns (answered,
    failed)."""
    answered = failed = 0
    todo = [q for q in questions if writer.written_id(q.id) not in skip]
    for number, item in enumerate(todo, 1):
        record: dict[str, Any]
        if item.error:
            record = {"id": item.id, "question": item.question, "error": item.error}
        else:
            record = answer_record(item.id, item.question, ask)
        if "error" in record:
            failed += 1
        else:
            answered += 1
        writer.write(record)
        if progress is not None:
            progress(number, len(todo))
    return answered, failed
