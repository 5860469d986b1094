"""``symcost import hf`` for mixture-of-experts and latent-attention configs equals transformers.

For each model_type (mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v2, deepseek_v3) a small config,
shaped like the published ones (GQA, windows, shared experts, dense first layers, MLA with and without
q compression), is built in transformers with ``AutoModelForCausalLM.from_config``:

- on the meta device with ``experts_implementation="batched_mm"`` (every token's top_k experts as batched
  matmuls: FlopCounterMode counts them; the default "grouped_mm" is counted 0): params, forward FLOPs at
  three (B, S) shapes, and decode steps (S new tokens over a cache of ctx tokens that the model itself
  filled) with the FLOPs and the cache's elements after the step, past the sliding windows;
- on CPU with ``experts_implementation="eager"``, random weights and random token ids, so that routing is
  real and uneven (one F.linear per hit expert over the tokens that chose it): the same FLOPs, because
  the routed experts process exactly T*top_k token rows whatever the routing.

The published full-size configs (the bundled ones stored as archs/configs/NAME.json, from the Hub) are
checked for params on meta; tests/test_llm_bundled.py checks that the bundled archs/NAME.yaml equal a
fresh generation from them (scripts/gen_llm_archs.py).
"""

from __future__ import annotations

import functools
import json
import math
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import torch

from symcost import hf
from symcost.arch import load_path, load_text
from symcost.compile import evaluate
from symcost.shapes import build
from tests import hf_reference as ref
from tests.helpers import gen_archs
from tests.hf_reference import params

ROOT = Path(__file__).resolve().parent.parent

# --- small configs, one or more per model_type ---------------------------------------------------

SMALL: dict[str, dict[str, Any]] = {
    # Mixtral with a sliding window of 6 (Mixtral-8x7B has none; the decode steps go past this one)
    "mixtral": dict(
        model_type="mixtral", vocab_size=101, hidden_size=32, intermediate_size=24, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
        sliding_window=6, max_position_embeddings=64, rope_theta=1000000.0,
    ),
    # Qwen2-MoE: q/k/v biased, a gated shared expert, a dense layer (mlp_only_layers), and sliding layers
    # implied by use_sliding_window (layer 0: (0 + 1) % 2 and 0 < max_window_layers; layer 2 is past it)
    "qwen2_moe": dict(
        model_type="qwen2_moe", vocab_size=101, hidden_size=32, intermediate_size=40, moe_intermediate_size=16,
        shared_expert_intermediate_size=24, num_experts=6, num_experts_per_tok=4, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, mlp_only_layers=[1], use_sliding_window=True,
        sliding_window=5, max_window_layers=2, max_position_embeddings=64,
    ),
    # Qwen3-MoE: head_dim 12 (not 32/4), q/k norms, a MoE layer every second layer (decoder_sparse_step)
    "qwen3_moe": dict(
        model_type="qwen3_moe", vocab_size=101, hidden_size=32, intermediate_size=40, moe_intermediate_size=16,
        num_experts=8, num_experts_per_tok=3, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=12, decoder_sparse_step=2, norm_topk_prob=True, max_position_embeddings=64,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    ),
    # Qwen3-MoE with use_sliding_window: every layer keeps a window of 5 (Qwen3MoeAttention.sliding_window)
    "qwen3_moe_window": dict(
        model_type="qwen3_moe", vocab_size=101, hidden_size=32, intermediate_size=40, moe_intermediate_size=16,
        num_experts=4, num_experts_per_tok=2, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
        use_sliding_window=True, sliding_window=5, max_position_embeddings=64,
    ),
    # OLMoE: q_norm over 4*8 and k_norm over 2*8 (the whole projections), every MLP a MoE
    "olmoe": dict(
        model_type="olmoe", vocab_size=101, hidden_size=32, intermediate_size=16, num_experts=8,
        num_experts_per_tok=2, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=64, eos_token_id=100, pad_token_id=1,
    ),
    # DeepSeek-V2-Lite's shape: no q compression, one dense layer, two shared experts, softmax router
    "deepseek_v2": dict(
        model_type="deepseek_v2", vocab_size=101, hidden_size=32, intermediate_size=40, moe_intermediate_size=8,
        n_routed_experts=6, num_experts_per_tok=2, n_shared_experts=2, first_k_dense_replace=1,
        num_hidden_layers=3, num_attention_heads=4, q_lora_rank=None, kv_lora_rank=8, qk_nope_head_dim=6,
        qk_rope_head_dim=4, v_head_dim=5, topk_method="greedy", max_position_embeddings=64,
    ),
    # DeepSeek-V3's shape: q compression, group-limited sigmoid routing, one shared expert, biases
    "deepseek_v3": dict(
        model_type="deepseek_v3", vocab_size=101, hidden_size=32, intermediate_size=40, moe_intermediate_size=8,
        n_routed_experts=8, num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1,
        num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4, q_lora_rank=12, kv_lora_rank=8,
        qk_nope_head_dim=6, qk_rope_head_dim=4, v_head_dim=5, n_group=2, topk_group=1, attention_bias=True,
        max_position_embeddings=64,
    ),
}  # fmt: skip
KEYS = list(SMALL)


@functools.cache
def hf_model(key: str) -> torch.nn.Module:
    return ref.build(SMALL[key], experts="batched_mm")


@functools.cache
def hf_eager(key: str) -> torch.nn.Module:
    return ref.build(SMALL[key], device=torch.device("cpu"), experts="eager")


@functools.cache
def hf_forward(key: str, b: int, s: int) -> int:
    return ref.forward(hf_model(key), input_ids=ref.ids(b, s))[0]


@functools.cache
def hf_decode(key: str, b: int, ctx: int, s: int) -> tuple[int, int, int]:
    return ref.decode_step(hf_model(key), b, ctx, s)


@functools.cache
def ours_graph(key: str):
    return build(load_text(hf.to_yaml(SMALL[key], f"{key}/config.json"), f"{key}.yaml"))


def ours(key: str, values: dict[str, int]):
    return evaluate(ours_graph(key), values)


SHAPES = [(1, 5), (2, 12), (3, 1)]
# (B, ctx, S): one token over short and long caches (past the small windows), three tokens, a prompt
STEPS = [(2, 3, 1), (2, 9, 1), (1, 20, 1), (2, 9, 3), (2, 4, 2)]


@pytest.mark.parametrize("key", KEYS)
def test_params_equal_transformers(key):
    assert ours(key, {}).totals["params"] == params(hf_model(key))
    assert ours(key, {}).totals["buffers"] == sum(
        b.numel() for n, b in hf_model(key).named_buffers() if "e_score_correction_bias" in n
    )


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{b}x{s}" for b, s in SHAPES])
@pytest.mark.parametrize("key", KEYS)
def test_forward_flops_equal_transformers(key, shape):
    b, s = shape
    assert ours(key, {"B": b, "S": s}).totals["flops"] == hf_forward(key, b, s)


@pytest.mark.parametrize("step", STEPS, ids=[f"B{b}-ctx{c}-S{s}" for b, c, s in STEPS])
@pytest.mark.parametrize("key", KEYS)
def test_decode_step_equals_transformers(key, step):
    b, ctx, s = step
    flops, elements, seen = hf_decode(key, b, ctx, s)
    assert seen == ctx + s
    r = ours(key, {"B": b, "S": s, "ctx": ctx})
    assert r.totals["flops"] == flops, f"{key} FLOPs at B={b}, ctx={ctx}, S={s}"
    assert r.totals["cache"] == elements, f"{key} cache at B={b}, ctx={ctx}, S={s}"


@pytest.mark.parametrize("key", KEYS)
def test_eager_experts_with_real_routing_count_the_same(key):
    """CPU, random weights and ids: each hit expert runs on the tokens that chose it. The forward and a
    decode step count what batched_mm counts on meta, and what symcost counts."""
    model = hf_eager(key)
    torch.manual_seed(1)
    flops, _ = ref.forward(model, input_ids=ref.ids(2, 7, torch.device("cpu")))
    assert (
        flops == ref.forward(hf_model(key), input_ids=ref.ids(2, 7))[0] == ours(key, {"B": 2, "S": 7}).totals["flops"]
    )
    step, elements, _ = ref.decode_step(model, 2, 9, 1, torch.device("cpu"))
    assert (step, elements) == hf_decode(key, 2, 9, 1)[:2]


def test_routing_is_real_on_cpu():
    """The eager references really route unevenly: tokens per expert differ from layer to layer."""
    model = hf_eager("mixtral")
    loads = []
    for layer in model.model.layers:
        x = torch.randn(1, 16, 32)
        with torch.no_grad():
            _, _, index = layer.mlp.gate(x.view(-1, 32))
        loads.append(tuple(torch.bincount(index.flatten(), minlength=4).tolist()))
    assert any(len(set(load)) > 1 for load in loads)


@pytest.mark.parametrize("key", KEYS)
def test_layers_carry_transformers_module_names(key):
    """Every layer with parameters or FLOPs is named as the transformers module holding them (the MoE
    block mlp: its gate, experts and shared experts; MLA's self_attn), with the same params and FLOPs."""
    inputs = {"input_ids": ref.ids(2, 5)}
    checked = ref.check_module_names(hf_model(key), inputs, ours(key, {"B": 2, "S": 5}).nodes, ref.sdpa_elsewhere)
    assert checked >= 6


def test_dense_and_sparse_layers_follow_the_config():
    """qwen2_moe: layer 1 is in mlp_only_layers; qwen3_moe: decoder_sparse_step 2 makes layer 1 the MoE one;
    DeepSeek: the first first_k_dense_replace layers are dense. As transformers builds them."""
    for key in ("qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3"):
        kinds = [type(layer.mlp).__name__.endswith("MLP") for layer in hf_model(key).model.layers]
        text = hf.to_yaml(SMALL[key])
        runs = re.findall(r"block: (\w+), name: model.layers, repeat: (\d+)", text)
        ours_kinds = [kind == "layer" for kind, count in runs for _ in range(int(count))]
        assert ours_kinds == kinds, key


def test_the_window_caps_the_cache():
    """Mixtral with a window of 6 keeps 5 tokens per layer: 2 layers * 2 (k, v) * 2 heads * 8 dims * 5."""
    for ctx in (9, 20):
        assert ours("mixtral", {"B": 1, "S": 1, "ctx": ctx}).totals["cache"] == 2 * 2 * 2 * 8 * 5


def test_mla_cache_is_the_latent_and_the_rotary_key():
    """DeepSeek caches kv_lora_rank + qk_rope_head_dim = 8 + 4 per token per layer, whatever the heads:
    3 layers * 2 sequences * 10 tokens * 12 = 720 (the decode step at ctx 9)."""
    assert ours("deepseek_v3", {"B": 2, "S": 1, "ctx": 9}).totals["cache"] == 3 * 2 * 10 * 12 == 720


# --- config variants that real Hub files use ---------------------------------------------------------


def test_expert_count_field_names_read_alike():
    """Mixtral: num_local_experts (its own) or num_experts (the attribute_map alias); DeepSeek:
    n_routed_experts (its own) or num_local_experts."""
    mixtral = {k: v for k, v in SMALL["mixtral"].items() if k != "num_local_experts"} | {"num_experts": 4}
    assert hf.to_yaml(mixtral) == hf.to_yaml(SMALL["mixtral"])
    v3 = {k: v for k, v in SMALL["deepseek_v3"].items() if k != "n_routed_experts"} | {"num_local_experts": 8}
    assert hf.to_yaml(v3) == hf.to_yaml(SMALL["deepseek_v3"])


def test_layer_types_present_or_implied_read_alike():
    """Qwen2-MoE configs from transformers 5 state layer_types; older ones imply them from
    use_sliding_window and max_window_layers."""
    stated = SMALL["qwen2_moe"] | {"layer_types": ["sliding_attention", "full_attention", "full_attention"]}
    assert hf.to_yaml(stated) == hf.to_yaml(SMALL["qwen2_moe"])
    assert hf_model("qwen2_moe").config.layer_types == stated["layer_types"]


def test_rope_parameters_and_rope_theta_read_alike():
    old = {k: v for k, v in SMALL["qwen3_moe"].items() if k != "rope_parameters"} | {"rope_theta": 1000000.0}
    assert hf.to_yaml(old) == hf.to_yaml(SMALL["qwen3_moe"])


def test_fields_that_change_cost_are_warned_about(capsys):
    hf.to_yaml(SMALL["olmoe"] | {"clip_qkv": 8.0}, "o/config.json")
    hf.to_yaml(SMALL["deepseek_v2"] | {"mlp_bias": True, "moe_layer_freq": 2}, "d/config.json")
    hf.to_yaml(PUBLISHED["deepseek-ai/DeepSeek-V3"], "v3/config.json")
    err = capsys.readouterr().err
    assert "Warning: o/config.json: 'clip_qkv'" in err
    assert "'mlp_bias': biased expert MLPs are not modeled" in err
    assert "'moe_layer_freq': 2: transformers ignores it" in err
    assert "Warning: v3/config.json: 'quantization_config'" in err and "fp8" in err
    assert "--weight-dtype fp8" in err
    assert "'num_nextn_predict_layers': 1 multi-token prediction module(s)" in err


def test_moe_types_are_listed_as_supported(tmp_path):
    for kind in ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3"):
        assert kind in hf.SUPPORTED
    path = tmp_path / "config.json"
    path.write_text(json.dumps(SMALL["mixtral"] | {"model_type": "mixtrall"}))
    with pytest.raises(hf.ConfigError, match="did you mean 'mixtral'") as info:
        hf.load(path)
    assert "deepseek_v3" in str(info.value)


# --- the worst case, experts touched, the absorbed attention -------------------------------------------


def test_all_experts_read_is_the_worst_case():
    """Mixtral small, one token: 2 of 4 experts read per layer, or all 4 with all_experts_read=1; the
    difference is 2 layers * 2 experts * 3*32*24 weights."""
    one = ours("mixtral", {"B": 1, "S": 1, "ctx": 4}).totals["read"]
    worst = ours("mixtral", {"B": 1, "S": 1, "ctx": 4, "all_experts_read": 1}).totals["read"]
    assert worst - one == 2 * 2 * 3 * 32 * 24


def test_absorbed_attention_counts_fewer_flops_in_decode():
    """DeepSeek-V3 small, one token over 20 cached: the plain computation expands the 21 latents with
    kv_b_proj in every layer, the absorbed one does not. Per layer (B = 1, heads 4, keys 21, q = 1):
    plain kv_b 21*8*4*(6 + 5) = 7,392 + attention 4*21*(10 + 5) = 1,260; absorbed: q_nope into the
    latent 4*6*8 = 192 + scores and values 4*21*(12 + 8) = 1,680 + W_UV 4*8*5 = 160; 3 layers, 2 FLOPs per MAC."""
    plain = ours("deepseek_v3", {"B": 1, "S": 1, "ctx": 20}).totals["flops"]
    absorbed = ours("deepseek_v3", {"B": 1, "S": 1, "ctx": 20, "absorbed": 1}).totals["flops"]
    assert plain - absorbed == 3 * 2 * ((7392 + 1260) - (192 + 1680 + 160))


# --- published full-size configs ------------------------------------------------------------------------

# The config.json of each model on the Hub (auto_map, the remote-code pointers, left out). The four that
# symcost bundles are also stored as archs/configs/NAME.json (their public copies: archs/configs/README.md).
PUBLISHED: dict[str, dict[str, Any]] = {
    "mistralai/Mixtral-8x7B-v0.1": {
        "architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
        "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
        "max_position_embeddings": 32768, "model_type": "mixtral", "num_attention_heads": 32,
        "num_experts_per_tok": 2, "num_hidden_layers": 32, "num_key_value_heads": 8, "num_local_experts": 8,
        "output_router_logits": False, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0,
        "router_aux_loss_coef": 0.02, "sliding_window": None, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.36.0.dev0", "use_cache": True, "vocab_size": 32000,
    },
    "Qwen/Qwen1.5-MoE-A2.7B": {
        "architectures": ["Qwen2MoeForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
        "intermediate_size": 5632, "max_position_embeddings": 8192, "max_window_layers": 21,
        "model_type": "qwen2_moe", "num_attention_heads": 16, "num_hidden_layers": 24, "num_key_value_heads": 16,
        "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.39.0.dev0", "use_cache": True,
        "use_sliding_window": False, "vocab_size": 151936, "decoder_sparse_step": 1, "moe_intermediate_size": 1408,
        "shared_expert_intermediate_size": 5632, "num_experts_per_tok": 4, "num_experts": 60,
        "norm_topk_prob": False, "output_router_logits": False, "router_aux_loss_coef": 0.001,
    },
    "Qwen/Qwen3-30B-A3B": {
        "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 151643, "decoder_sparse_step": 1, "eos_token_id": 151645, "head_dim": 128,
        "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 6144,
        "max_position_embeddings": 40960, "max_window_layers": 48, "mlp_only_layers": [], "model_type": "qwen3_moe",
        "moe_intermediate_size": 768, "norm_topk_prob": True, "num_attention_heads": 32, "num_experts": 128,
        "num_experts_per_tok": 8, "num_hidden_layers": 48, "num_key_value_heads": 4, "output_router_logits": False,
        "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001,
        "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.51.0", "use_cache": True, "use_sliding_window": False, "vocab_size": 151936,
    },
    "allenai/OLMoE-1B-7B-0924": {
        "architectures": ["OlmoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "clip_qkv": None,
        "eos_token_id": 50279, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
        "intermediate_size": 1024, "max_position_embeddings": 4096, "model_type": "olmoe", "norm_topk_prob": False,
        "num_attention_heads": 16, "num_experts": 64, "num_experts_per_tok": 8, "num_hidden_layers": 16,
        "num_key_value_heads": 16, "output_router_logits": False, "pad_token_id": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": None, "rope_theta": 10000.0, "router_aux_loss_coef": 0.01, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.43.0.dev0", "use_cache": True, "vocab_size": 50304,
    },
    "deepseek-ai/DeepSeek-V2-Lite": {
        "architectures": ["DeepseekV2ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "aux_loss_alpha": 0.001, "bos_token_id": 100000, "eos_token_id": 100001, "first_k_dense_replace": 1,
        "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 10944,
        "kv_lora_rank": 512, "max_position_embeddings": 163840, "model_type": "deepseek_v2",
        "moe_intermediate_size": 1408, "moe_layer_freq": 1, "n_group": 1, "n_routed_experts": 64,
        "n_shared_experts": 2, "norm_topk_prob": False, "num_attention_heads": 16, "num_experts_per_tok": 6,
        "num_hidden_layers": 27, "num_key_value_heads": 16, "pretraining_tp": 1, "q_lora_rank": None,
        "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "rms_norm_eps": 1e-06,
        "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707, "mscale_all_dim": 0.707,
                         "original_max_position_embeddings": 4096, "type": "yarn"},
        "rope_theta": 10000, "routed_scaling_factor": 1.0, "scoring_func": "softmax", "seq_aux": True,
        "tie_word_embeddings": False, "topk_group": 1, "topk_method": "greedy", "torch_dtype": "bfloat16",
        "transformers_version": "4.33.1", "use_cache": True, "v_head_dim": 128, "vocab_size": 102400,
    },
    "deepseek-ai/DeepSeek-V3": {
        "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 0, "eos_token_id": 1, "ep_size": 1, "first_k_dense_replace": 3,
        "hidden_act": "silu", "hidden_size": 7168, "initializer_range": 0.02, "intermediate_size": 18432,
        "kv_lora_rank": 512, "max_position_embeddings": 163840, "model_type": "deepseek_v3",
        "moe_intermediate_size": 2048, "moe_layer_freq": 1, "n_group": 8, "n_routed_experts": 256,
        "n_shared_experts": 1, "norm_topk_prob": True, "num_attention_heads": 128, "num_experts_per_tok": 8,
        "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1,
        "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
        "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                "weight_block_size": [128, 128]},
        "rms_norm_eps": 1e-06,
        "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                         "original_max_position_embeddings": 4096, "type": "yarn"},
        "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid",
        "tie_word_embeddings": False, "topk_group": 4, "topk_method": "noaux_tc", "torch_dtype": "bfloat16",
        "transformers_version": "4.46.3", "use_cache": True, "v_head_dim": 128, "vocab_size": 129280,
    },
}  # fmt: skip

# bundled archs/NAME.yaml <- archs/configs/NAME.json <- the Hub repository (scripts/gen_llm_archs.py)
BUNDLED = gen_archs().MOE


def _published_graph(repo: str):
    return build(load_text(hf.to_yaml(PUBLISHED[repo], f"{repo}/config.json"), "published.yaml"))


@pytest.mark.parametrize("repo", list(PUBLISHED))
def test_published_configs_params(repo):
    model = ref.build(PUBLISHED[repo], experts="batched_mm")
    assert evaluate(_published_graph(repo)).totals["params"] == params(model)


# Published totals, by hand from the configs:
#   Mixtral-8x7B: per layer attention 4096*(4096 + 2*1024 + 4096) = 41,943,040, norms 8,192, router 8*4096
#   = 32,768, experts 8*3*4096*14336 = 1,409,286,144: 1,451,270,144; x32 = 46,440,644,608; + embed and
#   lm_head 2*32000*4096 = 262,144,000 + norm 4,096 = 46,702,792,704 ("46.7B total").
#   Active per token: 6 of 8 experts idle in 32 layers: 46,702,792,704 - 32*6*176,160,768 = 12,879,925,248.
#   DeepSeek-V3: 671,026,404,352 ("671B total", without the 14B multi-token-prediction module the Hub
#   checkpoint adds); active: 248 of 256 routed experts (3*7168*2048 = 44,040,192 each) idle in 58 MoE
#   layers: 671,026,404,352 - 58*248*44,040,192 = 37,552,282,624 ("37B activated").
# (total, active, weights of one routed expert, idle experts per MoE layer, MoE layers, published figures)
TOTALS = {
    "mistralai/Mixtral-8x7B-v0.1": (46_702_792_704, 12_879_925_248, 176_160_768, 6, 32, ("46.7", "12.9")),
    "deepseek-ai/DeepSeek-V3": (671_026_404_352, 37_552_282_624, 44_040_192, 248, 58, ("671", "37")),
}


@pytest.mark.parametrize("repo", list(TOTALS))
def test_published_totals(repo):
    """Mixtral: "46.7B total parameters, 12.9B per token" (Mistral AI's announcement); DeepSeek-V3:
    "671B total parameters with 37B activated for each token" (its technical report)."""
    total, active, expert, idle, layers, (total_b, active_b) = TOTALS[repo]
    assert evaluate(_published_graph(repo)).totals["params"] == total
    assert total - layers * idle * expert == active
    digits = 1 if "." in total_b else 0
    assert f"{total / 1e9:.{digits}f}".rstrip("0").rstrip(".") == total_b.rstrip("0").rstrip(".")
    assert (f"{active / 1e9:.1f}" if "." in active_b else str(int(active / 1e9))) == active_b


def test_mixtral_layer_arithmetic():
    """The per-layer figures in the comment above, from the config alone."""
    d, kv, ff, e, vocab = 4096, 8 * 128, 14336, 8, 32000
    layer = d * (d + 2 * kv + d) + 2 * d + e * d + e * 3 * d * ff
    assert layer == 1_451_270_144
    assert 32 * layer + 2 * vocab * d + d == TOTALS["mistralai/Mixtral-8x7B-v0.1"][0]


@pytest.mark.parametrize("name", list(BUNDLED))
def test_stored_configs_are_the_published_ones(name):
    stored = json.loads((ROOT / "archs" / "configs" / f"{name}.json").read_text())
    assert stored == PUBLISHED[BUNDLED[name]]


@pytest.mark.parametrize("name", list(BUNDLED))
def test_bundled_archs_params_equal_the_published_configs(name):
    graph = build(load_path(ROOT / "archs" / f"{name}.yaml"))
    assert evaluate(graph).totals["params"] == evaluate(_published_graph(BUNDLED[name])).totals["params"]


def test_mixtral_decode_reads_the_experts_a_batch_touches():
    """Mixtral-8x7B, one decode step over 4,095 cached tokens: at B = 1 every MoE layer reads 2 of its 8
    experts; at B = 64 the expected distinct experts are 8*(1 - (3/4)^64), all but 8*(3/4)^64 = 8.1e-8 of
    one expert (14.3 weights short of all 8, rounded up to a whole weight: 1,409,286,130); the worst case
    (all_experts_read) reads all 8 at any batch."""
    graph = build(load_path(ROOT / "archs" / "mixtral_8x7b.yaml"))
    expert = 3 * 4096 * 14336

    def moe_read(b: int, worst: int = 0) -> int:
        r = evaluate(graph, {"B": b, "S": 1, "ctx": 4095, "all_experts_read": worst})
        node = next(n for n in r.nodes if n.path.endswith(".mlp"))
        return node.values["read"] // node.count - b * 4096 - 8 * 4096  # less x and the router

    assert moe_read(1) == 2 * expert
    assert moe_read(64) == math.ceil(8 * expert * (1 - Fraction(3, 4) ** 64)) == 1_409_286_130
    assert moe_read(1, worst=1) == moe_read(64, worst=1) == 8 * expert
