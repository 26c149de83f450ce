"""The answer verifier: what it reads of a proposal, the shipped file, and what it tells apart."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.chunking import split_sentences
from qa.errors import ModelError
from qa.verifier import (
    MAX_QUESTION_PIECES,
    MAX_SPAN_PIECES,
    MODEL_DIR,
    MODEL_NAME,
    SETTINGS_NAME,
    Verifier,
    pair_ids,
    proposal_parts,
)

TEXT = "Ring was founded in 2013. Amazon bought it for $1bn. The deal closed in April."
SENTENCES = [(0, 25), (26, 52), (53, 78)]


def test_a_proposal_is_read_with_the_sentence_before_its_own() -> None:
    assert split_sentences(TEXT) == SENTENCES
    start = TEXT.index("$1bn")
    before, span, after = proposal_parts(TEXT, SENTENCES, start, start + 4)
    assert before == "Ring was founded in 2013. Amazon bought it for "
    assert span == "$1bn"
    assert after == "."
    # in the first sentence there is no sentence before it
    before, span, after = proposal_parts(TEXT, SENTENCES, 20, 24)
    assert (before, span, after) == ("Ring was founded in ", "2013", ".")
    # a span over two sentences takes both, and the rest of the second
    before, span, after = proposal_parts(TEXT, SENTENCES, 20, 32)
    assert (before, span, after) == ("Ring was founded in ", "2013. Amazon", " bought it for $1bn.")


def test_long_inputs_keep_the_span_and_the_words_nearest_it() -> None:
    ids = {"cls": 101, "sep": 102, "open": 1, "close": 2}
    question = list(range(1000, 1100))
    before = list(range(2000, 2300))
    span = list(range(3000, 3050))
    after = list(range(4000, 4100))
    row, second = pair_ids(question, before, span, after, ids, 128)
    assert len(row) == 128
    assert row[0] == 101 and row[-1] == 102
    assert second == MAX_QUESTION_PIECES + 2 and row[second - 1] == 102
    opened, closed = row.index(1), row.index(2)
    assert row[opened + 1 : closed] == span[:MAX_SPAN_PIECES]
    assert row[opened - 1] == before[-1]  # the word just before the span is kept
    assert row[closed + 1] == after[0]
    short, _ = pair_ids([5], [6], [7], [8], ids, 128)
    assert short == [101, 5, 102, 6, 1, 7, 2, 8, 102]


def copy_model(tmp_path: Path) -> Path:
    target = tmp_path / "verifier"
    shutil.copytree(MODEL_DIR, target)
    return target


def test_a_missing_or_damaged_verifier_is_a_clear_error(tmp_path: Path) -> None:
    folder = copy_model(tmp_path)
    path = folder / MODEL_NAME
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="the verifier model is damaged"):
        Verifier.load(folder)
    path.unlink()
    with pytest.raises(ModelError, match=f"{MODEL_NAME}: the verifier model is missing"):
        Verifier.load(folder)
    (folder / SETTINGS_NAME).unlink()
    with pytest.raises(ModelError, match=f"{SETTINGS_NAME}: the verifier's settings are missing"):
        Verifier.load(folder)


@pytest.mark.model
def test_the_verifier_prefers_the_sentence_that_states_the_thing_asked() -> None:
    verifier = Verifier.load()
    text = (
        "The mine near Copiapo collapsed on Monday. Rescuers said 12 miners died in the "
        "accident. One of them, Juan Perez, was 24 years old."
    )
    sentences = split_sentences(text)
    question = "How many miners died in the Copiapo mine accident?"
    toll = text.index("12")
    age = text.index("24")
    right, wrong = verifier.logits(
        question,
        [
            proposal_parts(text, sentences, toll, toll + 2),
            proposal_parts(text, sentences, age, age + 2),
        ],
    )
    assert right > wrong


def test_the_verifier_reads_the_best_proposals_and_is_weighed_in() -> None:
    from qa.extractor import AnswerExtractor, Candidate
    from qa.retrieval import Passage
    from qa.weights import load_weights

    shipped = load_weights().reader
    assert "verify" in shipped.weights and shipped.verify_top == 3

    class Stub:
        def __init__(self) -> None:
            self.read: list[tuple[str, str, str]] = []

        def logits(self, question: str, proposals: list) -> list[float]:
            self.read += proposals
            return [4.0 - i for i in range(len(proposals))]

    stub = Stub()
    reader = AnswerExtractor(None, verifier=stub)  # type: ignore[arg-type]
    proposals = []
    for rank in range(5):
        text = f"Ring was sold to span{rank}."
        end = 100 + len(text)
        passage = Passage(rank, rank, 1, 1.0, 100, end, text, "T", ((100, end),))
        start = 100 + text.index("span")
        features = {"margin": 5.0 - rank}
        candidate = Candidate(passage, start, start + 5, 100, end, text, features)
        candidate.logit = 5.0 - rank
        proposals.append(candidate)
    reader._verify("Who?", proposals[::-1])
    assert [p[1] for p in stub.read] == ["span0", "span1", "span2"]  # the 3 best, best first
    assert stub.read[0] == ("Ring was sold to ", "span0", ".")
    assert [c.features["verify"] for c in proposals] == [4.0, 3.0, 2.0, 2.0, 2.0]
    weight = reader.weights["verify"]
    assert proposals[0].logit - proposals[1].logit > 1.0 * weight  # the verifier counts


def test_the_training_script_runs_end_to_end_on_a_few_questions(tmp_path: Path) -> None:
    """`scripts/train_verifier.py` on 3 questions of each source, on the CPU: proposals,
    training, export, the check; what it writes loads as a verifier."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_verifier.py"), "--work",
         str(tmp_path / "work"), "--out", str(out), "--sample-each", "3"],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "verifier int8 AUROC" in result.stderr
    verifier = Verifier.load(out)
    (logit,) = verifier.logits("Who?", [("", "Ring", " was bought.")])
    assert isinstance(logit, float)
