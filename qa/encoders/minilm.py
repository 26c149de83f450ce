"""A small torch implementation of BERT-style sentence encoders (all-MiniLM-L6-v2).

Why: importing sentence-transformers pulls in transformers, about 4 s before the first vector
on this machine, which dominated `qa ask` and a one-article `qa index update`. This module
needs only torch, safetensors and tokenizers, and computes the same thing as the
sentence-transformers pipeline of the bundled model (BERT encoder, mean pooling over the
attention mask, L2 normalisation); a test checks it against sentence-transformers.

It handles local BERT models with `config.json`, `model.safetensors` and `tokenizer.json`
whose sentence-transformers modules are Transformer -> mean Pooling (-> Normalize); anything
else goes through sentence-transformers itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def supports(model_dir: Path) -> bool:
    """Whether `model_dir` is a plain BERT + mean-pooling model this module can run."""
    try:
        config = json.loads((model_dir / "config.json").read_text())
        modules = json.loads((model_dir / "modules.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    types = [m.get("type", "") for m in modules]
    return (
        config.get("model_type") == "bert"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and config.get("hidden_act") == "gelu"
        and (model_dir / "model.safetensors").is_file()
        and (model_dir / "tokenizer.json").is_file()
        and types[:2]
        == ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"]
        and all(t.endswith(".Normalize") for t in types[2:])
        and pooling.get("pooling_mode_mean_tokens") is True
        and not any(
            pooling.get(k)
            for k in (
                "pooling_mode_cls_token",
                "pooling_mode_max_tokens",
                "pooling_mode_mean_sqrt_len_tokens",
            )
        )
    )


class MiniLM:
    """BERT forward pass + mean pooling + normalisation, in eval mode, on the CPU."""

    def __init__(self, model_dir: Path, max_length: int) -> None:
        import torch
        from safetensors.torch import load_file

        self.torch = torch
        config = json.loads((model_dir / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        weights = load_file(str(model_dir / "model.safetensors"))
        # some exports prefix every name with "bert."
        self.w = {k.removeprefix("bert."): v.float() for k, v in weights.items()}
        self.tokenizer = load_tokenizer(model_dir, max_length)

    def _layer_norm(self, x: Any, name: str) -> Any:
        return self.torch.nn.functional.layer_norm(
            x, x.shape[-1:], self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps
        )

    def _linear(self, x: Any, name: str) -> Any:
        return self.torch.nn.functional.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def encode_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]] | None, batch_size: int
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """`encode_batch_spans` over `texts` in batches of `batch_size`."""
        return in_batches(self.encode_batch_spans, texts, spans, batch_size)

    def encode_batch_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]] | None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Embeddings of whole texts, and of character spans inside them (see `pool`)."""
        torch = self.torch
        functional = torch.nn.functional
        encodings = self.tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.float32)
        types = torch.tensor([e.type_ids for e in encodings], dtype=torch.long)
        batch, length = ids.shape
        with torch.inference_mode():
            w = self.w
            positions = torch.arange(length)
            x = (
                w["embeddings.word_embeddings.weight"][ids]
                + w["embeddings.position_embeddings.weight"][positions]
                + w["embeddings.token_type_embeddings.weight"][types]
            )
            x = self._layer_norm(x, "embeddings.LayerNorm")
            hidden = x.shape[-1]
            head = hidden // self.heads
            keep = (mask > 0)[:, None, None, :]  # attend to real tokens only
            for i in range(self.layers):
                p = f"encoder.layer.{i}"

                def split(t: Any) -> Any:
                    return t.view(batch, length, self.heads, head).transpose(1, 2)

                q = split(self._linear(x, f"{p}.attention.self.query"))
                k = split(self._linear(x, f"{p}.attention.self.key"))
                v = split(self._linear(x, f"{p}.attention.self.value"))
                # the fused kernel: several times faster than matmul + softmax on the CPU
                context = functional.scaled_dot_product_attention(q, k, v, attn_mask=keep)
                context = context.transpose(1, 2)
                context = context.reshape(batch, length, hidden)
                attended = self._linear(context, f"{p}.attention.output.dense")
                x = self._layer_norm(attended + x, f"{p}.attention.output.LayerNorm")
                inner = functional.gelu(self._linear(x, f"{p}.intermediate.dense"))
                x = self._layer_norm(self._linear(inner, f"{p}.output.dense") + x,
                                     f"{p}.output.LayerNorm")  # fmt: skip
        return pool(x.numpy(), encodings, spans)


BatchEncoder = Callable[
    [list[str], list[list[tuple[int, int]]] | None], tuple["np.ndarray", list["np.ndarray"]]
]


def in_batches(
    encode_batch: BatchEncoder,
    texts: list[str],
    spans: list[list[tuple[int, int]]] | None,
    batch_size: int,
    map_fn: Callable[..., Iterable[tuple[np.ndarray, list[np.ndarray]]]] = map,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """`encode_batch(texts, spans)` run on consecutive batches (through `map_fn`, which may
    run them in parallel but must keep their order), the results joined in input order."""
    import numpy as np

    starts = range(0, len(texts), batch_size)
    results = map_fn(
        encode_batch,
        [texts[i : i + batch_size] for i in starts],
        [None if spans is None else spans[i : i + batch_size] for i in starts],
    )
    vectors: list[np.ndarray] = []
    span_vectors: list[np.ndarray] = []
    for v, s in results:
        vectors.append(v)
        span_vectors.extend(s)
    return np.vstack(vectors), span_vectors


def load_tokenizer(model_dir: Path, max_length: int) -> Any:
    """The model's fast tokenizer, truncating at `max_length` and padding batches."""
    from tokenizers import Tokenizer

    config = json.loads((model_dir / "config.json").read_text())
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))
    return tokenizer


def pool(
    tokens: np.ndarray, encodings: list[Any], spans: list[list[tuple[int, int]]] | None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Mean pooling of contextual token vectors `tokens` (batch, length, hidden) over each
    text's real tokens, L2-normalised; and the same for each character span of `spans`.

    A span's vector is the normalised mean of the token vectors whose characters fall in the
    span ("late chunking"): one forward pass gives a vector for the chunk and for each of its
    sentences, at no extra model cost.
    """
    import numpy as np

    tokens = np.asarray(tokens, dtype=np.float32)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
    summed = np.einsum("blh,bl->bh", tokens, mask)
    pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
    pooled = _normalize(pooled)
    span_vectors: list[np.ndarray] = []
    if spans is None:
        return pooled, span_vectors
    for row, encoding in enumerate(encodings):
        if not spans[row]:
            span_vectors.append(np.zeros((0, tokens.shape[2]), dtype=np.float32))
            continue
        offsets = np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2)
        real = (np.array(encoding.special_tokens_mask) == 0) & (mask[row] > 0)
        bounds = np.array(spans[row], dtype=np.int64)
        member = (
            (offsets[None, :, 0] < bounds[:, 1:2])
            & (offsets[None, :, 1] > bounds[:, 0:1])
            & real[None, :]
        ).astype(np.float32)
        counts = member.sum(axis=1, keepdims=True)
        means = (member @ tokens[row]) / np.maximum(counts, 1.0)
        # a span with no token of its own (cannot happen for real sentences) falls back to
        # the whole text
        means = np.where(counts > 0, means, pooled[row][None, :])
        span_vectors.append(_normalize(means))
    return pooled, span_vectors


def _normalize(matrix: np.ndarray) -> np.ndarray:
    import numpy as np

    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
