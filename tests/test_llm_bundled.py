"""The bundled Hub models: each ``archs/NAME.yaml`` is the import of its published config
``archs/configs/NAME.json`` (written by ``scripts/gen_llm_archs.py``), and the dense language models
equal the model transformers builds from that config.

Checked for every bundled Hub model (dense, MoE, encoder-decoder): no drift (a fresh generation from the
stored config gives the same text). Mixtures of experts and encoder-decoders are compared with
transformers in tests/test_hf_moe.py and tests/test_hf_encdec.py. For the dense ones:
params exact against ``sum(p.numel())`` of the transformers model built from the same config on the
meta device (no weights, nothing downloaded; ~1 s even for 405B); and the published totals where the
Hub states them. The small models' forward FLOPs and Mistral-7B's decode step past its 4,096-token
window are compared with transformers on the meta device too (its own DynamicCache, eager attention).
The import itself (every model_type, small configs, decode over the model's own cache at many shapes)
is tested in tests/test_hf_import.py.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch

from symcost import bundled
from symcost.arch import load_path
from symcost.compile import evaluate
from symcost.shapes import build
from tests import hf_reference as ref
from tests.helpers import gen_archs

ROOT = Path(__file__).resolve().parent.parent


GEN = gen_archs()
NAMES = list(GEN.DENSE)


def config(name: str) -> dict:
    return json.loads((ROOT / "archs" / "configs" / f"{name}.json").read_text(encoding="utf-8"))


@functools.cache
def hf_model(name: str) -> torch.nn.Module:
    data = config(name)
    return ref.build(data, data["architectures"][0])


@functools.cache
def graph(name: str):
    return build(load_path(bundled.path("archs", name), f"archs/{name}.yaml"))


def ours(name: str, values: dict[str, int] | None = None):
    return evaluate(graph(name), values or {})


def test_every_stored_config_is_bundled():
    """One generator for every Hub model symcost bundles: each archs/configs/NAME.json is in its HUB
    (dense decoders, mixtures of experts, encoder-decoders, once each) and has its archs/NAME.yaml."""
    stored = {p.stem for p in (ROOT / "archs" / "configs").glob("*.json")}
    assert set(GEN.HUB) == stored
    assert len(GEN.HUB) == len(GEN.DENSE) + len(GEN.MOE) + len(GEN.ENCDEC)
    assert stored <= set(bundled.names("archs"))


@pytest.mark.parametrize("name", list(GEN.HUB))
def test_bundled_file_is_a_fresh_generation_of_its_config(name):
    """archs/NAME.yaml is what scripts/gen_llm_archs.py writes from archs/configs/NAME.json today: it
    drifts neither from its config nor from the importer (run the script to rewrite it)."""
    assert (ROOT / "archs" / f"{name}.yaml").read_text(encoding="utf-8") == GEN.bundled_yaml(name)


@pytest.mark.parametrize("name", NAMES)
def test_params_equal_transformers(name):
    assert ours(name).totals["params"] == sum(p.numel() for p in hf_model(name).parameters())


# Parameter counts the Hub shows for each model (the safetensors total of its weights). The Qwen model
# cards' rounded figures are not used: "7.61B" for Qwen2.5-7B's 7,615,616,512 and "32.5B" for
# Qwen2.5-32B's 32,763,876,352 are neither rounded nor truncated alike. Qwen2.5-0.5B's
# model page prints torchinfo's 630,167,424, which counts the tied lm_head (151,936 x 896 = 136,134,656)
# a second time: 630,167,424 - 136,134,656 = 494,032,768.
PUBLISHED = {
    "mistral_7b": 7_241_732_096,
    "qwen2_5_0_5b": 630_167_424 - 151_936 * 896,
    "gemma2_2b": 2_614_341_888,
    "gemma2_9b": 9_241_705_984,
    "gemma3_1b": 999_885_952,
    "phi3_mini": 3_821_079_552,
    "llama3_1_8b": 8_030_261_248,
    "llama3_1_70b": 70_553_706_496,
    "llama3_1_405b": 405_853_388_800,
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_params_equal_the_published_totals(name):
    assert ours(name).totals["params"] == PUBLISHED[name]


def test_llama3_1_8b_has_llama3_8b_s_sizes():
    """Llama 3.1 8B changes the context (131,072) and the rope scaling, not a parameter: the bundled
    llama3_8b (Llama 3, written by hand) and llama3_1_8b (imported) agree on params and FLOPs."""
    a = evaluate(graph("llama3_8b"), {"S": 4096})
    b = ours("llama3_1_8b", {"S": 4096})
    assert (a.totals["params"], a.totals["flops"]) == (b.totals["params"], b.totals["flops"])


def test_small_models_tie_their_embeddings():
    for name in ("qwen2_5_0_5b", "qwen2_5_1_5b", "qwen2_5_3b", "qwen3_0_6b", "gemma2_2b", "gemma3_1b"):
        assert config(name).get("tie_word_embeddings", True) is True, name
        assert hf_model(name).lm_head.weight is hf_model(name).model.embed_tokens.weight, name


@functools.cache
def hf_forward(name: str, b: int, s: int) -> int:
    return ref.forward(hf_model(name), input_ids=ref.ids(b, s))[0]


FORWARD = ["qwen2_5_0_5b", "qwen3_0_6b", "gemma3_1b", "gemma2_2b", "phi3_mini"]


@pytest.mark.parametrize("shape", [(1, 7), (2, 600)], ids=["1x7", "2x600"])
@pytest.mark.parametrize("name", FORWARD)
def test_forward_flops_equal_transformers(name, shape):
    b, s = shape
    assert ours(name, {"B": b, "S": s}).totals["flops"] == hf_forward(name, b, s)


@functools.cache
def hf_decode(name: str, b: int, ctx: int) -> tuple[int, int]:
    """(FLOPs of one new token over ctx cached ones, cache elements after the step), the cache filled
    by the model itself (meta tensors: shapes without data)."""
    flops, elements, _ = ref.decode_step(hf_model(name), b, ctx, 1)
    return flops, elements


@pytest.mark.parametrize("ctx", [4000, 5000])
def test_mistral_7b_decodes_past_its_window_as_transformers_does(ctx):
    """Mistral-7B-v0.1 keeps a 4,096-token window: past it each of the 32 layers caches window - 1 = 4,095
    tokens of 8 KV heads of 128, keys and values: 2 * 32 * 4095 * 8 * 128 = 268,369,920 elements."""
    flops, elements = hf_decode("mistral_7b", 1, ctx)
    r = ours("mistral_7b", {"B": 1, "S": 1, "ctx": ctx})
    assert r.totals["flops"] == flops
    assert r.totals["cache"] == elements
    if ctx > 4096:
        assert elements == 2 * 32 * 4095 * 8 * 128


def test_mistral_7b_decode_cost_stops_growing_at_the_window():
    """The decode phase (ctx = 32,767) costs what a step at ctx = 4,095 does: the window caps both."""
    decode = {k: int(v) for k, v in graph("mistral_7b").arch.phases["decode"].values.items()}
    assert decode == {"S": 1, "ctx": 32767}
    at_end, at_window = ours("mistral_7b", decode), ours("mistral_7b", {"S": 1, "ctx": 4095})
    assert at_end.totals["flops"] == at_window.totals["flops"]
    assert at_end.totals["cache"] == at_window.totals["cache"] == 2 * 32 * 4095 * 8 * 128
