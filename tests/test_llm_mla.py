"""``multi_head_latent_attention`` equals transformers' DeepseekV3Attention and DeepseekV2Attention.

One-layer DeepSeek models built from small configs on the meta device with eager attention:
the self_attn module's FlopCounterMode count (its q, kv_a, kv_b and o projections and the two
attention matmuls, the full square) equals the formula's plain FLOPs in prefill and in a decode step
over a cache of ctx tokens; the cache transformers keeps is exactly the latent and the rotary key,
kv_lora_rank + qk_rope_head_dim per token; params are exact. The published attention layers are
checked for params. The absorbed computation has no transformers twin; its torch twin
(tests/builders_llm.py) checks it in test_formula_twins, and here it must give the same output
as the plain one on real numbers.
"""

from __future__ import annotations

import functools
import warnings

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from symcost import registry

from .builders_llm import LatentAttention

transformers = pytest.importorskip("transformers")

MLA = registry.get("multi_head_latent_attention")
META = torch.device("meta")

SMALL = dict(
    vocab_size=50,
    hidden_size=32,
    num_attention_heads=4,
    num_key_value_heads=4,
    num_hidden_layers=1,
    kv_lora_rank=8,
    qk_nope_head_dim=6,
    qk_rope_head_dim=4,
    v_head_dim=5,
    intermediate_size=16,
    moe_intermediate_size=8,
    n_routed_experts=4,
    num_experts_per_tok=2,
    first_k_dense_replace=1,
)
FAMILIES = {
    "v3": ("DeepseekV3ForCausalLM", "DeepseekV3Config", dict(q_lora_rank=12, n_group=1, topk_group=1)),
    "v3_bias": ("DeepseekV3ForCausalLM", "DeepseekV3Config", dict(q_lora_rank=12, attention_bias=True, n_group=1)),
    "v2_lite": ("DeepseekV2ForCausalLM", "DeepseekV2Config", dict(q_lora_rank=None)),
}


def _attrs(family: str) -> dict:
    extra = FAMILIES[family][2]
    return dict(
        E=32,
        heads=4,
        q_lora_rank=extra["q_lora_rank"] or 0,
        kv_lora_rank=8,
        qk_nope_head_dim=6,
        qk_rope_head_dim=4,
        v_head_dim=5,
        bias=extra.get("attention_bias", False),
    )


@functools.cache
def _model(family: str) -> torch.nn.Module:
    cls, config_cls, extra = FAMILIES[family]
    with warnings.catch_warnings(), torch.device(META):
        warnings.simplefilter("ignore")
        cfg = getattr(transformers, config_cls)(**SMALL, **extra, attn_implementation="eager")
        return getattr(transformers, cls)(cfg).eval()


def _ids(b: int, s: int) -> torch.Tensor:
    return torch.zeros(b, s, dtype=torch.long, device=META)


def _step(family: str, b: int, ctx: int, s: int) -> tuple[int, int]:
    """(self_attn FLOPs, cache elements after the step) of S tokens over a cache of ctx."""
    model = _model(family)
    past = None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if ctx:
            past = model(input_ids=_ids(b, ctx), use_cache=True).past_key_values
        with FlopCounterMode(display=False) as counter:
            out = model(input_ids=_ids(b, s), past_key_values=past, use_cache=True)
    name = f"{type(model).__name__}.model.layers.0.self_attn"
    flops = sum(counter.get_flop_counts()[name].values())
    layer = out.past_key_values.layers[0]
    return flops, layer.keys.numel() + layer.values.numel()


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize(("b", "ctx", "s"), [(1, 0, 7), (2, 0, 5), (2, 5, 1), (2, 7, 3), (1, 6, 1)])
def test_attention_equals_transformers(family, b, ctx, s):
    flops, cache = _step(family, b, ctx, s)
    ours = MLA.evaluate(B=b, S=s, causal=True, kv_cache=True, past=ctx, **_attrs(family))
    assert ours.flops == flops
    assert ours.cache == cache == b * (ctx + s) * (8 + 4)  # kv_lora_rank + qk_rope_head_dim per token


@pytest.mark.parametrize("family", list(FAMILIES))
def test_params_equal_transformers(family):
    attn = _model(family).model.layers[0].self_attn
    assert MLA.evaluate(B=1, S=1, **_attrs(family)).params == sum(p.numel() for p in attn.parameters())


# Published attention layers (params on meta):
#   DeepSeek-V3: 7168*1536 + 1536 + 1536*128*192 + 7168*576 + 512 + 512*128*256 + 128*128*7168 = 187,107,328
#   DeepSeek-V2-Lite: 2048*16*192 + 2048*576 + 512 + 512*16*256 + 16*128*2048 = 13,763,072
PUBLISHED = [
    (
        "DeepseekV3Config",
        "deepseek_v3.modeling_deepseek_v3",
        "DeepseekV3Attention",
        dict(),
        dict(E=7168, heads=128, q_lora_rank=1536),
        187_107_328,
    ),
    (
        "DeepseekV2Config",
        "deepseek_v2.modeling_deepseek_v2",
        "DeepseekV2Attention",
        dict(hidden_size=2048, num_attention_heads=16, num_key_value_heads=16, q_lora_rank=None),
        dict(E=2048, heads=16, q_lora_rank=0),
        13_763_072,
    ),
]


@pytest.mark.parametrize(("config_cls", "path", "cls", "config", "attrs", "params"), PUBLISHED)
def test_published_attention_params(config_cls, path, cls, config, attrs, params):
    module = __import__(f"transformers.models.{path}", fromlist=[cls])
    with warnings.catch_warnings(), torch.device(META):
        warnings.simplefilter("ignore")
        attn = getattr(module, cls)(getattr(transformers, config_cls)(**config), layer_idx=0)
    shared = dict(kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128)
    assert sum(p.numel() for p in attn.parameters()) == params == MLA.evaluate(B=1, S=1, **attrs, **shared).params


def test_absorbed_equals_plain_numerically():
    """The weight-absorbed computation is the same function: same weights, same output (CPU, float64)."""
    values = dict(
        E=16,
        heads=3,
        q_lora_rank=6,
        kv_lora_rank=5,
        qk_nope_head_dim=4,
        qk_rope_head_dim=2,
        v_head_dim=3,
        bias=True,
        causal=True,
        exact_causal=True,
    )
    torch.manual_seed(0)
    plain = LatentAttention(values | {"absorbed": False}, device=torch.device("cpu")).double()
    absorbed = LatentAttention(values | {"absorbed": True}, device=torch.device("cpu")).double()
    with torch.no_grad():
        for p in plain.parameters():
            p.normal_()
        absorbed.load_state_dict(plain.state_dict())
        x, past_c, past_rot = torch.randn(2, 3, 16), torch.randn(2, 4, 5), torch.randn(2, 4, 2)
        args = (x.double(), past_c.double(), past_rot.double())
        torch.testing.assert_close(plain(*args), absorbed(*args))


def test_absorbed_decode_is_cheaper():
    deepseek_v3 = dict(
        B=1,
        S=1,
        E=7168,
        heads=128,
        q_lora_rank=1536,
        kv_lora_rank=512,
        qk_nope_head_dim=128,
        qk_rope_head_dim=64,
        v_head_dim=128,
        kv_cache=True,
        past=4095,
    )
    plain, absorbed = (MLA.evaluate(**deepseek_v3, absorbed=a) for a in (False, True))
    assert plain.cache == absorbed.cache == 4096 * 576
    assert absorbed.macs * 91 < plain.macs
