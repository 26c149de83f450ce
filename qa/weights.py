"""`qa/weights.json`: the fitted weights, a typed record loaded strictly.

`scripts/fit_weights.py` writes the file from the *fit* half of SQuAD dev; it holds the
passage ranking weights, the reader's candidate weights, calibration, passages read and
abstention threshold, and the search settings the fit was made with (changing one of them
means fitting again). Feature names live here, shared by the code that computes the features
and the script that fits them. A missing or damaged file, a missing entry, or a weight for a
feature the code does not compute (a misspelling would silently weigh 0) is a `ModelError`
naming the file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from qa.answer_types import TYPE_FEATURES
from qa.errors import ModelError

WEIGHTS_FILE = Path(__file__).with_name("weights.json")

PASSAGE_FEATURES = (
    "dense", "bm25", "rrf", "sentence", "cover", "sentence_dense", "title", "doc_best",
)  # fmt: skip
"""What `qa.retrieval.Retriever.search` computes for each candidate passage, in this order."""
READER_FEATURES = (
    "margin", "lead", "span", "null", "passage", "prank", "dense",
    "q_missing", "names_missing", "numbers_missing", "alt_gap", *TYPE_FEATURES, "verify",
)  # fmt: skip
"""What `qa.extractor.candidate_features` computes for each span, in this order (`verify`, the
verifier's logit, only where it is weighed: it costs a model run)."""


@dataclass(frozen=True)
class SearchSettings:
    """Retrieval's hyper-parameters: candidates from each list, passages re-ranked, the
    reciprocal-rank-fusion constant and the title's BM25 weight (the text's is 1)."""

    dense_k: int = 50
    keyword_k: int = 50
    rerank_k: int = 30
    rrf_k: int = 60
    title_weight: float = 0.3


@dataclass(frozen=True)
class ReaderWeights:
    """The reader's candidate weights, Platt scaling, passages read, spans read in each
    passage and threshold."""

    weights: dict[str, float]
    platt: tuple[float, float]
    read_passages: int
    abstain: float
    spans: int = 1
    verify_top: int = 0
    """With the `verify` feature: the verifier reads the best `verify_top` proposals of the
    other features (0: all of them)."""
    first_read: int = 0
    """Passages read first, the rest only when no proposal among them reaches
    `read_on_below` (0: all `read_passages` at once)."""
    read_on_below: float = 1.0

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "reader weights") -> ReaderWeights:
        unknown = set(data.get("weights", {})) - {"bias", *READER_FEATURES}
        if unknown:
            raise ModelError(f"{where}: reader weights for unknown features {sorted(unknown)}")
        try:
            weights = cls(
                weights={k: float(v) for k, v in data["weights"].items()},
                platt=(float(data["platt"][0]), float(data["platt"][1])),
                read_passages=int(data["read_passages"]),
                abstain=float(data["abstain"]),
                spans=int(data.get("spans", 1)),
                verify_top=int(data.get("verify_top", 0)),
                first_read=int(data.get("first_read", 0)),
                read_on_below=float(data.get("read_on_below", 1.0)),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(f"{where}: the reader entry lacks or mangles {exc}") from None
        if weights.spans < 1:
            raise ModelError(f"{where}: the reader's spans must be 1 or more")
        if weights.first_read < 0:
            raise ModelError(f"{where}: the reader's first_read must be 0 (all) or more")
        if weights.verify_top < 0:
            raise ModelError(f"{where}: the reader's verify_top must be 0 (all) or more")
        return weights


UNFITTED_READER = ReaderWeights({"bias": -1.0, "margin": 0.5}, (1.0, 0.0), 5, 0.3)
"""For fitting from scratch (`scripts/fit_weights.py`), never used to answer."""
UNFITTED_PASSAGE = dict(zip(PASSAGE_FEATURES, (1.0, 0.5, 1.0, 1.0, 0.5, 1.0, 0.5, 0.5)))


@dataclass(frozen=True)
class Weights:
    passage: dict[str, float]
    reader: ReaderWeights
    search: SearchSettings
    fitted_on: str
    fitted_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "fitted_on": self.fitted_on,
            "fitted_at": self.fitted_at,
            "search": asdict(self.search),
            "passage": self.passage,
            "reader": {**asdict(self.reader), "platt": list(self.reader.platt)},
        }


def read_weights(path: Path) -> Weights:
    """The weights in `path`, checked (see the module docstring)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(
            f"{path}: cannot read the fitted weights ({exc.strerror or exc}); "
            "reinstall qa or run scripts/fit_weights.py"
        ) from None
    except ValueError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: not a JSON object")
    for key in ("passage", "reader", "search"):
        if not isinstance(data.get(key), dict):
            raise ModelError(f"{path}: needs a '{key}' entry")
    passage = data["passage"]
    unknown = set(passage) - set(PASSAGE_FEATURES)
    if unknown:
        raise ModelError(f"{path}: unknown passage features {sorted(unknown)}")
    fields = set(SearchSettings.__dataclass_fields__)
    if set(data["search"]) != fields:
        raise ModelError(f"{path}: 'search' needs exactly {sorted(fields)}")
    return Weights(
        passage={k: float(v) for k, v in passage.items()},
        reader=ReaderWeights.from_dict(data["reader"], str(path)),
        search=SearchSettings(**data["search"]),
        fitted_on=str(data.get("fitted_on", "")),
        fitted_at=str(data.get("fitted_at", "")),
    )


@lru_cache(maxsize=1)
def load_weights() -> Weights:
    """The shipped `qa/weights.json`, read once."""
    return read_weights(WEIGHTS_FILE)
