"""Encoder-decoders from a config.json (T5, Whisper) against the models transformers builds from it.

Small configs are built in transformers on the meta device (no weights, nothing downloaded) with
``attn_implementation="eager"`` (explicit matmuls, counted by FlopCounterMode as symcost's bmm and sdpa
count them). Checked: params (``sum(p.numel())``, tied weights once); forward FLOPs (encoder over S,
decoder over T) at two shapes; a decode step -- the model's own EncoderDecoderCache filled by a first
call over ctx decoder tokens, then T new tokens with ``encoder_outputs`` given -- its FLOPs (the
cross-attention keys and values are read from the cache, not projected) and the cache's elements
(self- and cross-attention) after the step. The bundled files are the published configs imported
(scripts/gen_llm_archs.py); their params equal transformers' on meta and the Hub's published totals.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from symcost import hf
from symcost.arch import load_path, load_text
from symcost.compile import evaluate
from symcost.errors import SymcostError
from symcost.shapes import build
from tests import hf_reference as ref
from tests.helpers import gen_archs
from tests.hf_reference import params

transformers = pytest.importorskip("transformers")

META = torch.device("meta")
ROOT = Path(__file__).resolve().parent.parent

SMALL: dict[str, dict[str, Any]] = {
    # T5 (v1.0): ReLU feed-forward, encoder and decoder of different depths, few buckets
    "t5": dict(
        model_type="t5", vocab_size=101, d_model=64, d_kv=16, d_ff=96, num_layers=2, num_decoder_layers=3,
        num_heads=4, relative_attention_num_buckets=8, feed_forward_proj="relu",
    ),
    # T5 v1.1 / FLAN-T5: gated-GELU, d_kv*num_heads != d_model, tie_word_embeddings false (no output scaling)
    "t5_gated": dict(
        model_type="t5", vocab_size=101, d_model=48, d_kv=20, d_ff=80, num_layers=2, num_heads=3,
        feed_forward_proj="gated-gelu", tie_word_embeddings=False,
    ),
    # Whisper: unbiased k_proj, encoder and decoder with their own heads and MLP sizes; 6 audio positions,
    # so transformers' encoder takes exactly 12 mel frames
    "whisper": dict(
        model_type="whisper", vocab_size=101, num_mel_bins=8, d_model=64, encoder_layers=2, decoder_layers=3,
        encoder_attention_heads=4, decoder_attention_heads=2, encoder_ffn_dim=96, decoder_ffn_dim=80,
        max_source_positions=6, max_target_positions=32, pad_token_id=0, bos_token_id=0, eos_token_id=0,
        decoder_start_token_id=0,
    ),
}  # fmt: skip

CLASSES = {"t5": "T5ForConditionalGeneration", "whisper": "WhisperForConditionalGeneration"}


def _model(config: dict[str, Any]) -> torch.nn.Module:
    return ref.build(config, CLASSES[config["model_type"]])


@functools.cache
def hf_model(key: str) -> torch.nn.Module:
    return _model(SMALL[key])


def _encoder_inputs(key: str, b: int, s: int) -> dict[str, torch.Tensor]:
    if SMALL[key]["model_type"] == "whisper":
        return {"input_features": torch.zeros(b, SMALL[key]["num_mel_bins"], s, device=META)}
    return {"input_ids": ref.ids(b, s)}


def _frames(key: str, s: int) -> int:
    """Whisper's encoder takes exactly 2*max_source_positions mel frames; T5 any number of tokens."""
    return 2 * SMALL[key]["max_source_positions"] if SMALL[key]["model_type"] == "whisper" else s


@functools.cache
def hf_forward(key: str, b: int, s: int, t: int) -> int:
    return ref.forward(hf_model(key), **_encoder_inputs(key, b, s), decoder_input_ids=ref.ids(b, t))[0]


@functools.cache
def hf_decode(key: str, b: int, s: int, ctx: int, t: int) -> tuple[int, int, int]:
    """(FLOPs of T new decoder tokens over ctx cached ones, cache elements after, tokens seen)."""
    model = hf_model(key)
    with torch.no_grad():
        first = model(**_encoder_inputs(key, b, s), decoder_input_ids=ref.ids(b, ctx), use_cache=True)
        cache = first.past_key_values
        assert isinstance(cache, transformers.EncoderDecoderCache) and cache.get_seq_length() == ctx
        with FlopCounterMode(display=False) as counter:
            out = model(encoder_outputs=(first.encoder_last_hidden_state,), decoder_input_ids=ref.ids(b, t),
                        cache=cache, use_cache=True)  # fmt: skip
    cache = out.past_key_values
    layers = [*cache.self_attention_cache.layers, *cache.cross_attention_cache.layers]
    elements = sum(layer.keys.numel() + layer.values.numel() for layer in layers)
    return counter.get_total_flops(), elements, cache.get_seq_length()


@functools.cache
def _arch(key: str):
    return load_text(hf.to_yaml(SMALL[key], f"{key}/config.json"), f"{key}.yaml")


def ours(key: str, values: dict[str, int]):
    """A graph is built per ctx: the encoder's layers are chosen by 'when: ctx == 0'."""
    return evaluate(build(_arch(key), values), values)


KEYS = list(SMALL)


@pytest.mark.parametrize("key", KEYS)
def test_params_equal_transformers(key):
    assert ours(key, {}).totals["params"] == params(hf_model(key))


# (B, S, T): S is the encoder's tokens (Whisper: its fixed 12 mel frames), T the decoder's
SHAPES = [(1, 5, 3), (2, 9, 4)]


@pytest.mark.parametrize("shape", SHAPES, ids=[f"B{b}-S{s}-T{t}" for b, s, t in SHAPES])
@pytest.mark.parametrize("key", KEYS)
def test_forward_flops_equal_transformers(key, shape):
    b, s, t = shape
    s = _frames(key, s)
    assert ours(key, {"B": b, "S": s, "T": t}).totals["flops"] == hf_forward(key, b, s, t)


# (B, S, ctx, T): one token over short and longer caches, two tokens at once
STEPS = [(2, 5, 3, 1), (1, 7, 9, 1), (2, 4, 4, 2)]


@pytest.mark.parametrize("step", STEPS, ids=[f"B{b}-S{s}-ctx{c}-T{t}" for b, s, c, t in STEPS])
@pytest.mark.parametrize("key", KEYS)
def test_decode_step_equals_transformers(key, step):
    b, s, ctx, t = step
    s = _frames(key, s)
    flops, elements, seen = hf_decode(key, b, s, ctx, t)
    assert seen == ctx + t
    r = ours(key, {"B": b, "S": s, "T": t, "ctx": ctx})
    assert r.totals["flops"] == flops, f"{key} FLOPs at B={b}, S={s}, ctx={ctx}, T={t}"
    assert r.totals["cache"] == elements, f"{key} cache at B={b}, S={s}, ctx={ctx}, T={t}"


def test_decode_reads_the_cross_attention_cache_instead_of_projecting():
    """T5 small config, one token over 3 cached ones: the step has no encoder and no cross k/v projections.
    Per decoder layer, the cross-attention cache is keys and values of 4 heads of 16 over S = 5 encoder
    tokens: 2*5*4*16 = 640 elements; self-attention 2*(3 + 1)*4*16 = 512; 3 layers: 3*(640 + 512) = 3,456."""
    step = ours("t5", {"B": 1, "S": 5, "T": 1, "ctx": 3})
    paths = [node.path for node in step.nodes]
    assert not any(p.startswith("encoder.block") for p in paths)
    assert not any(p.endswith("EncDecAttention.k") or p.endswith("EncDecAttention.v") for p in paths)
    assert step.totals["cache"] == 3 * (640 + 512)


def test_whisper_takes_its_fixed_number_of_frames():
    with pytest.raises(SymcostError):
        ours("whisper", {"S": 10})


def test_bad_feed_forward_proj_is_refused():
    with pytest.raises(SymcostError, match="feed_forward_proj"):
        hf.to_yaml(SMALL["t5"] | {"feed_forward_proj": "double-gated-gelu"})
    with pytest.raises(SymcostError, match="unknown activation"):
        hf.to_yaml(SMALL["t5"] | {"feed_forward_proj": "gated-swoosh"})


# --- the bundled files: published configs -----------------------------------------------------------


# (archs/NAME.yaml is written by scripts/gen_llm_archs.py; tests/test_llm_bundled.py checks it is a fresh
# generation.) The Hub's published totals (each model page's safetensors parameter count, Hub repo in
# scripts/gen_llm_archs.py ENCDEC), to the digits the page shows: T5 60.5M and 223M; Whisper 37.8M, 72.6M,
# 242M, 764M and 1.54B.
PUBLISHED = {
    "t5_small": 60.5e6,
    "t5_base": 223e6,
    "whisper_tiny": 37.8e6,
    "whisper_base": 72.6e6,
    "whisper_small": 242e6,
    "whisper_medium": 764e6,
    "whisper_large_v3": 1.54e9,
}


# google/flan-t5-base's config.json (the fields that size the model): T5 v1.1's gated GELU and untied head
FLAN_T5_BASE = dict(
    architectures=["T5ForConditionalGeneration"], model_type="t5", d_ff=2048, d_kv=64, d_model=768,
    dense_act_fn="gelu_new", feed_forward_proj="gated-gelu", is_gated_act=True, num_decoder_layers=12, num_heads=12,
    num_layers=12, relative_attention_max_distance=128, relative_attention_num_buckets=32, tie_word_embeddings=False,
    vocab_size=32128, decoder_start_token_id=0, eos_token_id=1, pad_token_id=0,
)  # fmt: skip


def test_flan_t5_base_params_equal_transformers():
    """Gated GELU at full size: three 768 x 2048 matrices per feed-forward block where t5-base has two of
    768 x 3072, the same 4,718,592 weights, so the same total as t5-base (transformers 5 ties the head)."""
    total = evaluate(build(load_text(hf.to_yaml(FLAN_T5_BASE, "flan-t5-base/config.json"), "flan.yaml"))).totals
    assert total["params"] == params(_model(FLAN_T5_BASE)) == 222_903_552


@pytest.mark.parametrize("name", list(gen_archs().ENCDEC))
def test_bundled_params_equal_transformers_and_the_hub(name):
    config = json.loads((ROOT / "archs" / "configs" / f"{name}.json").read_text())
    total = evaluate(build(load_path(ROOT / "archs" / f"{name}.yaml"))).totals["params"]
    assert total == params(_model(config))
    assert float(f"{total:.3g}") == PUBLISHED[name]


@pytest.mark.parametrize("key", KEYS)
def test_layers_carry_transformers_module_names(key):
    """Every layer with parameters, and every projection with FLOPs, is named as the transformers module
    that holds them, with the same parameters and FLOPs (a repeated layer's copy stands for its first)."""
    b, s, t = 2, _frames(key, 5), 3
    inputs = {**_encoder_inputs(key, b, s), "decoder_input_ids": ref.ids(b, t)}
    nodes = ours(key, {"B": b, "S": s, "T": t}).nodes
    checked = ref.check_module_names(hf_model(key), inputs, nodes, _own_flops)
    assert checked >= 10


def _own_flops(node) -> bool:
    """bmm and sdpa: counted in the attention module; a projection's FLOPs are its own module's."""
    return node.op in ("linear", "conv1d")


# --- CLIP ViT-B/32: both towers and the logits ---------------------------------------------------------

# openai/clip-vit-base-patch32's config.json: the sizes that differ from CLIPTextConfig's and
# CLIPVisionConfig's defaults (text 512 wide, 8 heads, MLP 2048; vision 768 wide, 12 heads, MLP 3072,
# patch 32), projection_dim 512
CLIP_B32 = dict(
    text_config=dict(hidden_size=512, intermediate_size=2048, num_attention_heads=8, num_hidden_layers=12),
    vision_config=dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
                       patch_size=32, image_size=224),
    projection_dim=512,
)  # fmt: skip


@functools.cache
def clip_model() -> torch.nn.Module:
    cfg = transformers.CLIPConfig(**CLIP_B32)
    for part in (cfg, cfg.text_config, cfg.vision_config):
        part._attn_implementation = "eager"
    with warnings.catch_warnings(), torch.device(META):
        warnings.simplefilter("ignore")
        return transformers.CLIPModel(cfg).eval()


@functools.cache
def clip_ours():
    return build(load_path(ROOT / "archs" / "clip_vit_b_32.yaml"))


def test_clip_params_and_buffers_equal_transformers():
    model = clip_model()
    totals = evaluate(clip_ours()).totals
    assert totals["params"] == params(model) == 151_277_313  # the Hub's openai/clip-vit-base-patch32: 151M
    assert totals["buffers"] == sum(b.numel() for b in model.buffers())


@pytest.mark.parametrize("shape", [(1, 1, 77), (3, 2, 12)], ids=["default", "B3-N2-S12"])
def test_clip_flops_equal_transformers(shape):
    """B images of 224x224 against N texts of S tokens: both towers and the N x B logits."""
    b, n, s = shape
    flops, _ = ref.forward(clip_model(), input_ids=ref.ids(n, s), pixel_values=torch.zeros(b, 3, 224, 224, device=META))
    assert evaluate(clip_ours(), {"B": b, "N": n, "S": s}).totals["flops"] == flops


def test_other_heads_are_warned_about(capsys):
    """A config naming an encoder-only or classification head is costed as the generation model, loudly."""
    hf.to_yaml(SMALL["t5"] | {"architectures": ["T5EncoderModel"]}, "enc/config.json")
    hf.to_yaml(SMALL["whisper"] | {"architectures": ["WhisperForAudioClassification"]}, "cls/config.json")
    err = capsys.readouterr().err
    assert "'architectures': names T5EncoderModel; symcost writes T5ForConditionalGeneration" in err
    assert "names WhisperForAudioClassification; symcost writes WhisperForConditionalGeneration" in err
