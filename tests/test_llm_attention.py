"""``multi_head_attention``'s sliding window, per-projection biases and score terms against
transformers and against brute-force counts.

- Sliding window: Mistral (every layer local) and Gemma 2 (local and global layers alternating),
  small configs on meta with eager attention: each layer's self_attn FLOPs (the masked square over
  the keys the sliding cache returns) and each layer's cache after the step equal the formula's, in
  prefill and in decode before, at and past the window.
- The exact visible pairs equal a brute-force count of (i, j) with j <= i and i - j < W.
- Per-projection biases: Qwen2 (q, k, v biased, o not) and Whisper (k unbiased) params exactly.
"""

from __future__ import annotations

import functools
import warnings

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from symcost import registry

transformers = pytest.importorskip("transformers")

MHA = registry.get("multi_head_attention")
META = torch.device("meta")

WINDOW = 4
FAMILIES = {
    "mistral": (
        "MistralForCausalLM",
        "MistralConfig",
        dict(
            vocab_size=50,
            hidden_size=32,
            intermediate_size=16,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            sliding_window=WINDOW,
        ),
        (WINDOW, WINDOW),
        dict(E=32, heads=4, kv_heads=2, head_dim=8, bias=False),
    ),
    "gemma2": (
        "Gemma2ForCausalLM",
        "Gemma2Config",
        dict(
            vocab_size=50,
            hidden_size=32,
            intermediate_size=16,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=6,
            sliding_window=WINDOW,
        ),
        (WINDOW, 0),  # layer 0 local (sliding), layer 1 global
        dict(E=32, heads=4, kv_heads=2, head_dim=6, bias=False, softcap=True),
    ),
}


@functools.cache
def _model(family: str) -> torch.nn.Module:
    cls, config_cls, config, _, _ = FAMILIES[family]
    with warnings.catch_warnings(), torch.device(META):
        warnings.simplefilter("ignore")
        cfg = getattr(transformers, config_cls)(**config, attn_implementation="eager")
        return getattr(transformers, cls)(cfg).eval()


def _ids(b: int, s: int) -> torch.Tensor:
    return torch.zeros(b, s, dtype=torch.long, device=META)


def _step(family: str, b: int, ctx: int, s: int) -> tuple[list[int], list[int]]:
    """(self_attn FLOPs per layer, cache elements per layer after the step) of S tokens over ctx cached."""
    model = _model(family)
    past = None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if ctx:
            past = model(input_ids=_ids(b, ctx), use_cache=True).past_key_values
        with FlopCounterMode(display=False) as counter:
            out = model(input_ids=_ids(b, s), past_key_values=past, use_cache=True)
    counts = counter.get_flop_counts()
    owner = type(model).__name__
    flops = [sum(counts[f"{owner}.model.layers.{i}.self_attn"].values()) for i in range(2)]
    caches = [layer.keys.numel() + layer.values.numel() for layer in out.past_key_values.layers]
    return flops, caches


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize(
    ("b", "ctx", "s"),
    [(1, 0, 3), (2, 0, 7), (2, 2, 1), (2, 3, 1), (2, 4, 1), (1, 9, 1), (2, 6, 2), (1, 2, 5)],
)
def test_sliding_window_equals_transformers(family, b, ctx, s):
    flops, caches = _step(family, b, ctx, s)
    windows, attrs = FAMILIES[family][3], FAMILIES[family][4]
    for layer, window in enumerate(windows):
        ours = MHA.evaluate(B=b, S_q=s, S_kv=s, causal=True, kv_cache=True, past=ctx, window=window, **attrs)
        assert ours.flops == flops[layer], f"{family} layer {layer} (window {window}) at B={b} ctx={ctx} S={s}"
        assert ours.cache == caches[layer], f"{family} layer {layer} cache at B={b} ctx={ctx} S={s}"


def test_decode_past_the_window_is_constant():
    """Past the window, a decode step's attention and cache stop growing (Mistral-7B: W = 4096)."""
    mistral = dict(B=1, S_q=1, S_kv=1, E=4096, heads=32, kv_heads=8, head_dim=128, bias=False, causal=True)
    at = {ctx: MHA.evaluate(**mistral, kv_cache=True, past=ctx, window=4096, exact_causal=True) for ctx in (5000, 9000)}
    assert at[5000].flops == at[9000].flops and at[5000].cache == at[9000].cache == 2 * 4095 * 1024
    unwindowed = MHA.evaluate(**mistral, kv_cache=True, past=9000, exact_causal=True)
    assert unwindowed.flops > at[9000].flops and unwindowed.cache == 2 * 9001 * 1024


def _visible(past: int, s: int, window: int) -> int:
    """Pairs (i, j) with j <= i and i - j < W, for queries at positions past .. past + s - 1."""
    return sum(1 for i in range(past, past + s) for j in range(i + 1) if i - j < window)


@pytest.mark.parametrize("window", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("past", [0, 1, 4, 9])
@pytest.mark.parametrize("s", [1, 2, 6, 11])
def test_exact_window_pairs_by_enumeration(window, past, s):
    ours = MHA.evaluate(
        B=1, S_q=s, S_kv=s, E=1, heads=1, head_dim=1, bias=False, causal=True, exact_causal=True,
        kv_cache=bool(past), past=past, window=window,
    )  # fmt: skip
    # per visible pair: q k^T and attention-times-v, head_dim = 1 each; the 4 projections are 1 MAC per row
    assert ours.macs - 4 * s == 2 * _visible(past, s, window)


def test_exact_pairs_without_a_window_are_the_triangle():
    ours = MHA.evaluate(B=1, S_q=5, S_kv=5, E=1, heads=1, head_dim=1, causal=True, exact_causal=True)
    assert ours.macs - 20 == 2 * _visible(0, 5, 10**6) == 2 * 15


# --- per-projection biases --------------------------------------------------------------------------


def test_qwen2_attention_params():
    """Qwen2: q, k and v biased, o not (Qwen2.5-0.5B: 896 wide, 14 heads of 64, 2 KV heads)."""
    from transformers.models.qwen2.modeling_qwen2 import Qwen2Attention

    with warnings.catch_warnings(), torch.device(META):
        warnings.simplefilter("ignore")
        cfg = transformers.Qwen2Config(hidden_size=896, num_attention_heads=14, num_key_value_heads=2)
        attn = Qwen2Attention(cfg, layer_idx=0)
    ours = MHA.evaluate(B=1, S_q=1, S_kv=1, E=896, heads=14, kv_heads=2, head_dim=64, bias_o=False)
    # 896*896 + 896 + 2*(896*128 + 128) + 896*896 = 1,836,160 (the all-biased count would be 896 more)
    assert ours.params == sum(p.numel() for p in attn.parameters()) == 1_836_160


def test_whisper_attention_params():
    """Whisper: k_proj has no bias (whisper-tiny: 384 wide, 6 heads)."""
    from transformers.models.whisper.modeling_whisper import WhisperAttention

    with torch.device(META):
        attn = WhisperAttention(embed_dim=384, num_heads=6)
    ours = MHA.evaluate(B=1, S_q=1, S_kv=1, E=384, heads=6, head_dim=64, bias_k=False)
    # 4*384*384 + 3*384 = 590,976
    assert ours.params == sum(p.numel() for p in attn.parameters()) == 590_976


def test_bias_flags_default_to_bias():
    common = dict(B=1, S_q=3, S_kv=3, E=8, heads=2, head_dim=4)
    assert MHA.evaluate(**common).params == MHA.evaluate(**common, bias_q=1, bias_k=1, bias_v=1, bias_o=1).params
    assert MHA.evaluate(**common, bias=False).params == 4 * 64
    assert MHA.evaluate(**common, bias=False, bias_k=True).params == 4 * 64 + 8
