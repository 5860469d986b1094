"""The ``moe`` formula equals transformers' own sparse MoE blocks, and ``experts_read`` is the
expected number of distinct experts under uniform routing.

Each block (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE, DeepSeek-V2, DeepSeek-V3) is built from a small
config with ``experts_implementation="eager"`` and run on CPU with random weights and inputs, so the
routing is real and uneven: FlopCounterMode counts each hit expert's F.linear over the tokens that
chose it, and the total is T*top_k expert rows whatever the routing. (The default "grouped_mm" is
counted 0 by FlopCounterMode; "batched_mm" on meta counts the same as eager:
``test_batched_mm_on_meta_counts_the_same``.) Params and buffers are exact; the published full-size
layers are checked for params on meta.
"""

from __future__ import annotations

import itertools
import math
import warnings
from fractions import Fraction

import pytest
import sympy
import torch
from torch.utils.flop_counter import FlopCounterMode

from symcost import expr, registry

transformers = pytest.importorskip("transformers")

MOE = registry.get("moe")


def _block(module_path: str, cls: str, config_cls: str, device: str = "cpu", **config):
    module = __import__(f"transformers.models.{module_path}", fromlist=[cls])
    with warnings.catch_warnings(), torch.device(device):
        warnings.simplefilter("ignore")
        cfg = getattr(transformers, config_cls)(**config)
        block = getattr(module, cls)(cfg)
    return block.eval()


def _count(block: torch.nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        block(x)
    return counter.get_total_flops()


# (name, module, block class, config class, config, symcost attributes)
BLOCKS = [
    (
        "mixtral",
        "mixtral.modeling_mixtral",
        "MixtralSparseMoeBlock",
        "MixtralConfig",
        dict(hidden_size=16, intermediate_size=24, num_local_experts=8, num_experts_per_tok=2),
        dict(experts=8, top_k=2, d_ff=24),
    ),
    (
        "qwen2_moe",
        "qwen2_moe.modeling_qwen2_moe",
        "Qwen2MoeSparseMoeBlock",
        "Qwen2MoeConfig",
        dict(
            hidden_size=16,
            moe_intermediate_size=8,
            num_experts=6,
            num_experts_per_tok=4,
            shared_expert_intermediate_size=20,
            norm_topk_prob=False,
        ),
        dict(experts=6, top_k=4, d_ff=8, shared_ff=20, shared_gate=True, norm_topk=False),
    ),
    (
        "qwen3_moe",
        "qwen3_moe.modeling_qwen3_moe",
        "Qwen3MoeSparseMoeBlock",
        "Qwen3MoeConfig",
        dict(hidden_size=16, moe_intermediate_size=12, num_experts=8, num_experts_per_tok=3, norm_topk_prob=True),
        dict(experts=8, top_k=3, d_ff=12),
    ),
    (
        "olmoe",
        "olmoe.modeling_olmoe",
        "OlmoeSparseMoeBlock",
        "OlmoeConfig",
        dict(hidden_size=16, intermediate_size=8, num_experts=8, num_experts_per_tok=2),
        dict(experts=8, top_k=2, d_ff=8, norm_topk=False),
    ),
    (
        "deepseek_v2",
        "deepseek_v2.modeling_deepseek_v2",
        "DeepseekV2Moe",
        "DeepseekV2Config",
        dict(
            hidden_size=16,
            num_attention_heads=4,
            moe_intermediate_size=8,
            n_routed_experts=8,
            num_experts_per_tok=2,
            n_shared_experts=2,
        ),
        dict(experts=8, top_k=2, d_ff=8, shared_ff=16, norm_topk=False),
    ),
    (
        "deepseek_v3",
        "deepseek_v3.modeling_deepseek_v3",
        "DeepseekV3MoE",
        "DeepseekV3Config",
        dict(
            hidden_size=16,
            num_attention_heads=4,
            moe_intermediate_size=8,
            n_routed_experts=8,
            num_experts_per_tok=2,
            n_shared_experts=1,
            n_group=2,
            topk_group=1,
        ),
        dict(experts=8, top_k=2, d_ff=8, shared_ff=8, sigmoid_router=True, correction_bias=True),
    ),
]


@pytest.mark.parametrize(("name", "path", "cls", "config_cls", "config", "attrs"), BLOCKS, ids=[b[0] for b in BLOCKS])
@pytest.mark.parametrize(("b", "s"), [(1, 1), (2, 5), (3, 7)])
def test_moe_block_equals_transformers(name, path, cls, config_cls, config, attrs, b, s):
    torch.manual_seed(b * 100 + s)
    block = _block(path, cls, config_cls, experts_implementation="eager", **config)
    with torch.no_grad():
        for p in block.parameters():
            p.normal_()
    ours = MOE.evaluate(T=b * s, d=config["hidden_size"], **attrs)
    assert ours.flops == _count(block, torch.randn(b, s, config["hidden_size"]))
    assert ours.params == sum(p.numel() for p in block.parameters())
    assert ours.buffers == sum(x.numel() for x in block.buffers())


def test_routing_is_uneven_yet_the_count_is_exact():
    """With the same random block, the tokens per expert differ between inputs; the total does not."""
    _, path, cls, config_cls, config, attrs = BLOCKS[0]
    torch.manual_seed(0)
    block = _block(path, cls, config_cls, experts_implementation="eager", **config)
    with torch.no_grad():
        for p in block.parameters():
            p.normal_()
    loads = set()
    for seed in range(4):
        torch.manual_seed(seed)
        x = torch.randn(1, 9, 16)
        with torch.no_grad():
            _, _, index = block.gate(x.view(-1, 16))
        loads.add(tuple(torch.bincount(index.flatten(), minlength=8).tolist()))
        assert _count(block, x) == MOE.evaluate(T=9, d=16, **attrs).flops == 2 * 9 * (16 * 8 + 2 * 3 * 16 * 24)
    assert len(loads) > 1


def test_batched_mm_on_meta_counts_the_same():
    _, path, cls, config_cls, config, attrs = BLOCKS[2]  # Qwen3-MoE
    block = _block(path, cls, config_cls, device="meta", experts_implementation="batched_mm", **config)
    flops = _count(block, torch.empty(2, 5, 16, device="meta"))
    assert flops == MOE.evaluate(T=10, d=16, **attrs).flops


# Published full-size layers, params on meta (one MoE block each):
#   Mixtral-8x7B: router 8*4096 + 8 experts * 3*4096*14336 = 32,768 + 1,409,286,144 = 1,409,318,912
#   DeepSeek-V3: router 256*7168 + 256*3*7168*2048 + shared 3*7168*2048 = 11,320,164,352 (+ a 256-element buffer)
#   Qwen1.5-MoE-A2.7B (qwen2_moe): router 60*2048 + 60*3*2048*1408 + shared 3*2048*5632 + gate 2048
#     = 122,880 + 519,045,120 + 34,603,008 + 2,048 = 553,773,056
PUBLISHED = [
    (
        "mixtral.modeling_mixtral",
        "MixtralSparseMoeBlock",
        "MixtralConfig",
        dict(hidden_size=4096, intermediate_size=14336, num_local_experts=8, num_experts_per_tok=2),
        dict(d=4096, experts=8, top_k=2, d_ff=14336),
        1_409_318_912,
    ),
    (
        "deepseek_v3.modeling_deepseek_v3",
        "DeepseekV3MoE",
        "DeepseekV3Config",
        dict(
            hidden_size=7168,
            num_attention_heads=128,
            moe_intermediate_size=2048,
            n_routed_experts=256,
            num_experts_per_tok=8,
        ),
        dict(d=7168, experts=256, top_k=8, d_ff=2048, shared_ff=2048, sigmoid_router=True, correction_bias=True),
        11_320_164_352,
    ),
    (
        "qwen2_moe.modeling_qwen2_moe",
        "Qwen2MoeSparseMoeBlock",
        "Qwen2MoeConfig",
        dict(
            hidden_size=2048,
            moe_intermediate_size=1408,
            num_experts=60,
            num_experts_per_tok=4,
            shared_expert_intermediate_size=5632,
        ),
        dict(d=2048, experts=60, top_k=4, d_ff=1408, shared_ff=5632, shared_gate=True),
        553_773_056,
    ),
]


@pytest.mark.parametrize(("path", "cls", "config_cls", "config", "attrs", "params"), PUBLISHED)
def test_published_layer_params(path, cls, config_cls, config, attrs, params):
    block = _block(path, cls, config_cls, device="meta", **config)
    assert sum(p.numel() for p in block.parameters()) == params == MOE.evaluate(T=1, **attrs).params


# --- experts touched under uniform routing -----------------------------------------------------------


def _expected_distinct(e: int, k: int, t: int) -> Fraction:
    """The mean number of distinct experts over every way T tokens can each pick k of E (enumerated)."""
    choices = list(itertools.combinations(range(e), k))
    total = sum(len(set().union(*picks)) for picks in itertools.product(choices, repeat=t))
    return Fraction(total, len(choices) ** t)


@pytest.mark.parametrize(("e", "k", "t"), [(4, 1, 3), (4, 2, 3), (5, 2, 2), (6, 3, 3), (3, 3, 2), (6, 1, 4)])
def test_expected_distinct_experts_by_enumeration(e, k, t):
    mean = _expected_distinct(e, k, t)
    assert mean == e * (1 - Fraction(e - k, e) ** t)
    for size in (1, 7, 1000):
        got = expr.experts_read(*map(sympy.Integer, (e, k, t, size)))
        assert got == math.ceil(mean * size)


@pytest.mark.parametrize("t", [1, 2, 3, 10, 50, 64, 100, 150, 200, 500, 4096])
@pytest.mark.parametrize(("e", "k", "size"), [(8, 2, 176_160_768), (256, 8, 44_040_192), (60, 4, 1), (64, 1, 99)])
def test_experts_read_shortcut_is_exact(t, e, k, size):
    """The large-T shortcut (every expert, E*P) agrees with the exact power wherever both apply."""
    exact = math.ceil(size * e * (1 - Fraction(e - k, e) ** t))
    assert expr.experts_read(*map(sympy.Integer, (e, k, t, size))) == exact


def test_experts_read_stays_symbolic_and_is_fast_at_huge_t():
    t = sympy.Symbol("T", integer=True, positive=True)
    assert isinstance(expr.parse("experts_read(8, 2, T, 10)", {"T": t}), expr.experts_read)
    assert expr.experts_read(*map(sympy.Integer, (256, 8, 10**12, 44_040_192))) == 256 * 44_040_192


def test_decode_reads_grow_with_the_batch():
    """Mixtral's MoE layer at batch 1, 8 and 64 decode tokens: 2, 7.2 and ~8 experts' weights read."""
    values = dict(d=4096, experts=8, top_k=2, d_ff=14336)
    expert = 3 * 4096 * 14336
    fixed = lambda t: t * 4096 + 8 * 4096  # noqa: E731 - x and the router
    reads = {t: MOE.evaluate(T=t, **values).read - fixed(t) for t in (1, 8, 64)}
    assert reads[1] == 2 * expert
    assert reads[8] == expert * 58975 // 8192  # 8*(1 - (3/4)^8) = 58,975/8,192 experts
    assert 8 * expert - 16 < reads[64] < 8 * expert
    assert MOE.evaluate(T=1, all_experts_read=True, **values).read - fixed(1) == 8 * expert
