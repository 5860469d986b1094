"""The attention parts: ``rotary``'s elementwise work is transformers' apply_rotary_pos_emb's,
``relative_position_bias`` plus ``multi_head_attention`` is T5's attention, and ``softcap`` is
Gemma 2's final capping.

The elementwise counts are checked with a dispatch mode that records the output elements of every
aten.mul, aten.add, aten.div and aten.tanh the transformers function runs (on meta tensors): these ops
are what FlopCounterMode counts as 0 and symcost puts in the elementwise totals.
"""

from __future__ import annotations

import warnings
from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from symcost import registry

transformers = pytest.importorskip("transformers")

META = torch.device("meta")


class ElementwiseOps(TorchDispatchMode):
    """Output elements per aten op name (mul, add, div, tanh, ...)."""

    def __init__(self):
        super().__init__()
        self.elements: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor):
            self.elements[func.overloadpacket.__name__] += out.numel()
        return out


@pytest.mark.parametrize(("b", "heads", "kv_heads", "s", "d"), [(1, 4, 4, 5, 8), (2, 8, 2, 3, 16)])
def test_rotary_is_apply_rotary_pos_emb(b, heads, kv_heads, s, d):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    q, k = torch.empty(b, heads, s, d, device=META), torch.empty(b, kv_heads, s, d, device=META)
    cos, sin = torch.empty(b, s, d, device=META), torch.empty(b, s, d, device=META)
    with ElementwiseOps() as ops:
        apply_rotary_pos_emb(q, k, cos, sin)
    rotary = registry.get("rotary")
    ours = [rotary.evaluate(batch=b * h, S=s, D=d) for h in (heads, kv_heads)]
    assert ops.elements["mul"] == sum(r.elementwise["mul"] for r in ours)
    assert ops.elements["add"] == sum(r.elementwise["add"] for r in ours)
    assert all(r.flops == 0 for r in ours)


def test_softcap_is_gemma2s_final_capping():
    cap, x = 30.0, torch.empty(2, 3, 50, device=META)
    with ElementwiseOps() as ops:  # Gemma2ForCausalLM.forward: logits / cap, tanh, * cap
        torch.tanh(x / cap) * cap
    ours = registry.get("softcap").evaluate(numel=300)
    assert ops.elements["div"] + ops.elements["mul"] == ours.elementwise["mul"] == 600
    assert ops.elements["tanh"] == ours.elementwise["activation"] == 300


def test_t5_attention_is_relative_bias_plus_attention():
    """T5-small's first self-attention owns the [32, 8] table; the others have none; no projection is biased."""
    from transformers.models.t5.modeling_t5 import T5Attention

    with warnings.catch_warnings(), torch.device(META):
        warnings.simplefilter("ignore")
        cfg = transformers.T5Config(d_model=512, d_kv=64, num_heads=8, relative_attention_num_buckets=32)
        first = T5Attention(cfg, has_relative_attention_bias=True)
        later = T5Attention(cfg, has_relative_attention_bias=False)
    mha = registry.get("multi_head_attention").evaluate(B=1, S_q=1, S_kv=1, E=512, heads=8, head_dim=64, bias=False)
    table = registry.get("relative_position_bias").evaluate(S_q=1, S_kv=1, buckets=32, heads=8)
    assert sum(p.numel() for p in later.parameters()) == mha.params == 4 * 512 * 512
    assert sum(p.numel() for p in first.parameters()) == mha.params + table.params == 4 * 512 * 512 + 256


def test_t5_compute_bias_shape_and_params():
    from transformers.models.t5.modeling_t5 import T5Attention

    with warnings.catch_warnings(), torch.device(META):
        warnings.simplefilter("ignore")
        attn = T5Attention(transformers.T5Config(num_heads=8), has_relative_attention_bias=True)
        bias = attn.compute_bias(5, 7, device=META)
    ours = registry.get("relative_position_bias").evaluate(S_q=5, S_kv=7, buckets=32, heads=8)
    assert tuple(bias.shape) == ours.outputs["bias"] == (1, 8, 5, 7)
    assert ours.params == attn.relative_attention_bias.weight.numel()
