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
from pathlib import Path
from typing import Any


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
        from tokenizers import Tokenizer

        self.torch = torch
        config = json.loads((model_dir / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        weights = load_file(str(model_dir / "model.safetensors"))
        # some exports prefix every name with "bert."
        self.w = {k.removeprefix("bert."): v.float() for k, v in weights.items()}
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))

    def _layer_norm(self, x: Any, name: str) -> Any:
        return self.torch.nn.functional.layer_norm(
            x, x.shape[-1:], self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps
        )

    def _linear(self, x: Any, name: str) -> Any:
        return self.torch.nn.functional.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def encode_batch_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]] | None
    ) -> tuple[Any, list[Any]]:
        """Embeddings of whole texts, and of character spans inside them.

        A span's vector is the normalised mean of the contextual token vectors whose
        characters fall in the span ("late chunking"): one forward pass gives a vector for
        the chunk and for each of its sentences, at no extra model cost.
        """
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
            summed = (x * mask[:, :, None]).sum(dim=1)
            pooled = summed / mask.sum(dim=1, keepdim=True).clamp(min=1e-9)
            pooled = functional.normalize(pooled, p=2, dim=1)
            span_vectors = []
            for row, encoding in enumerate(encodings):
                if spans is None:
                    break
                starts = torch.tensor([o[0] for o in encoding.offsets])
                ends = torch.tensor([o[1] for o in encoding.offsets])
                real = torch.tensor(encoding.special_tokens_mask) == 0
                real &= mask[row] > 0
                if not spans[row]:
                    span_vectors.append(torch.zeros((0, hidden)).numpy())
                    continue
                s = torch.tensor([a for a, _ in spans[row]])[:, None]
                e = torch.tensor([b for _, b in spans[row]])[:, None]
                member = ((starts[None, :] < e) & (ends[None, :] > s) & real[None, :]).float()
                counts = member.sum(dim=1, keepdim=True)
                # a span with no token of its own (cannot happen for real sentences) falls
                # back to the whole text
                means = (member @ x[row]) / counts.clamp(min=1.0)
                means = torch.where(counts > 0, means, pooled[row][None, :])
                span_vectors.append(
                    functional.normalize(means, p=2, dim=1).numpy().astype("float32")
                )
        return pooled.numpy().astype("float32", copy=False), span_vectors
