"""Encoder choices that need no model: the int8 recipe by CPU, the backend by model."""

from __future__ import annotations

import pytest

from qa.encoders import SentenceTransformersEncoder, load_encoder
from qa.encoders.onnx_runtime import QuantConfig, quant_config
from qa.errors import ModelError


def test_quantisation_follows_the_cpu() -> None:
    vnni = quant_config(frozenset({"avx2", "avx512f", "avx512_vnni"}), "x86_64")
    assert vnni == QuantConfig("x86-vnni", reduce_range=False)
    # without VNNI, 7-bit weights avoid the u8s8 saturation of AVX2 / AVX-512
    assert quant_config(frozenset({"avx2"}), "x86_64").reduce_range
    assert quant_config(frozenset({"avx512f", "avx2"}), "x86_64").reduce_range
    assert quant_config(frozenset(), "x86_64").reduce_range
    assert not quant_config(frozenset({"asimd"}), "aarch64").reduce_range


def test_a_model_that_is_not_a_local_bert_runs_on_sentence_transformers_only() -> None:
    # a hub name is not a local folder: nothing is loaded or downloaded to decide
    assert isinstance(load_encoder("someone/some-model", "torch"), SentenceTransformersEncoder)
    with pytest.raises(ModelError, match="BERT mean-pooling models only"):
        load_encoder("someone/some-model", "onnx-int8")
