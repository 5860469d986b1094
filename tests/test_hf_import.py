"""``symcost import hf``: a config.json's model equals the one transformers builds from it.

For each supported model_type a small config (shaped like the published ones: GQA, biases, windows,
tied heads) is built in transformers on the meta device (no weights, nothing downloaded) with
``attn_implementation="eager"`` (explicit matmuls for q k^T and attn v; FlopCounterMode counts the same
two bmms as symcost's sdpa). Checked: params (``sum(p.numel())``, tied weights once) and forward FLOPs
at two or more (B, S) shapes; and a decode step, S new tokens over a KV cache of ctx tokens that the
model itself filled (a prompt of ctx tokens run first with ``use_cache=True``: the model's own
DynamicCache, with its sliding-window layers, holds meta tensors of the right shapes), its FLOPs and
the cache's elements after the step, including past a sliding window. The published full-size
configs (written below from their config.json files on the Hub) are checked for params.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import pytest
import torch

from symcost import hf
from symcost.arch import load_text
from symcost.compile import evaluate
from symcost.errors import SymcostError
from symcost.shapes import build
from tests import hf_reference as ref
from tests.hf_reference import params

# --- small configs, one per model_type, modeled on the published ones -----------------------------

SMALL: dict[str, dict[str, Any]] = {
    "llama": dict(
        model_type="llama", vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rope_theta=500000.0, max_position_embeddings=64,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 32},
    ),
    # Llama with every bias and no num_key_value_heads (multi-head attention, as older configs)
    "llama_bias": dict(
        model_type="llama", vocab_size=101, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
        num_attention_heads=3, attention_bias=True, mlp_bias=True, tie_word_embeddings=True,
        max_position_embeddings=64,
    ),
    # Mistral-7B-v0.1's shape: GQA and a sliding window (here 6 tokens: the decode checks go past it)
    "mistral": dict(
        model_type="mistral", vocab_size=101, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, sliding_window=6, max_position_embeddings=64,
        rope_theta=10000.0,
    ),
    # Qwen2.5: q/k/v biased, o not; tied head (0.5B); no window (use_sliding_window false)
    "qwen2": dict(
        model_type="qwen2", vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, use_sliding_window=False,
        sliding_window=32, max_window_layers=2, max_position_embeddings=64, rope_theta=1000000.0,
    ),
    # Qwen2 with use_sliding_window: layers from max_window_layers = 1 on keep a window of 5
    "qwen2_window": dict(
        model_type="qwen2", vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, use_sliding_window=True, sliding_window=5,
        max_window_layers=1, max_position_embeddings=64,
    ),
    # Qwen3: head_dim (24) not hidden/heads (16), q/k norms
    "qwen3": dict(
        model_type="qwen3", vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=24, tie_word_embeddings=True,
        max_position_embeddings=64, rope_theta=1000000.0,
    ),
    "gemma": dict(
        model_type="gemma", vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, head_dim=32, hidden_act="gelu",
        max_position_embeddings=64,
    ),
    # Gemma 2: sliding (window 5) and full layers alternate, soft-capping
    "gemma2": dict(
        model_type="gemma2", vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=24, sliding_window=5,
        final_logit_softcapping=30.0, attn_logit_softcapping=50.0, query_pre_attn_scalar=24,
        hidden_activation="gelu_pytorch_tanh", max_position_embeddings=64,
    ),
    # Gemma 3 (text): the 5:1 local/global pattern, stated as layer_types as newer configs do
    "gemma3_text": dict(
        model_type="gemma3_text", vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=7,
        num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=4,
        layer_types=["sliding_attention"] * 5 + ["full_attention", "sliding_attention"],
        max_position_embeddings=64, rope_theta=1000000.0, rope_local_base_freq=10000.0,
    ),
    # Phi-3-mini: fused projections, a window (2047 in the published config)
    "phi3": dict(
        model_type="phi3", vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, sliding_window=7, max_position_embeddings=64,
        pad_token_id=0, bos_token_id=1, eos_token_id=2,
    ),
    "gpt2": dict(
        model_type="gpt2", vocab_size=101, n_embd=64, n_layer=2, n_head=4, n_positions=64,
        bos_token_id=0, eos_token_id=0, activation_function="gelu_new",
    ),
    "bert": dict(
        model_type="bert", vocab_size=101, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=96, max_position_embeddings=64, type_vocab_size=2, pad_token_id=0,
    ),
}  # fmt: skip

CAUSAL = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "gpt2": "GPT2LMHeadModel",
    "bert": "BertModel",
}


def _model(config: dict[str, Any]) -> torch.nn.Module:
    return ref.build(config, CAUSAL[config["model_type"]])


@functools.cache
def hf_model(key: str) -> torch.nn.Module:
    return _model(SMALL[key])


@functools.cache
def hf_forward(key: str, b: int, s: int) -> int:
    return ref.forward(hf_model(key), input_ids=ref.ids(b, s))[0]


@functools.cache
def hf_decode(key: str, b: int, ctx: int, s: int) -> tuple[int, int, int]:
    """(FLOPs of S new tokens over ctx cached ones, cache elements after the step, tokens seen)."""
    return ref.decode_step(hf_model(key), b, ctx, s)


@functools.cache
def ours_graph(key: str):
    return build(load_text(hf.to_yaml(SMALL[key], f"{key}/config.json"), f"{key}.yaml"))


def ours(key: str, values: dict[str, int]):
    return evaluate(ours_graph(key), values)


KEYS = list(SMALL)
SHAPES = [(1, 5), (2, 12), (3, 1)]


@pytest.mark.parametrize("key", KEYS)
def test_params_equal_transformers(key):
    assert ours(key, {}).totals["params"] == params(hf_model(key))


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{b}x{s}" for b, s in SHAPES])
@pytest.mark.parametrize("key", KEYS)
def test_forward_flops_equal_transformers(key, shape):
    b, s = shape
    assert ours(key, {"B": b, "S": s}).totals["flops"] == hf_forward(key, b, s)


DECODERS = [k for k in KEYS if k != "bert"]
# (B, ctx, S): one token over short and long caches (past every small window), three tokens, one prompt
STEPS = [(2, 3, 1), (2, 9, 1), (1, 20, 1), (2, 9, 3), (2, 4, 2)]


@pytest.mark.parametrize("step", STEPS, ids=[f"B{b}-ctx{c}-S{s}" for b, c, s in STEPS])
@pytest.mark.parametrize("key", DECODERS)
def test_decode_step_equals_transformers(key, step):
    b, ctx, s = step
    flops, elements, seen = hf_decode(key, b, ctx, s)
    assert seen == ctx + s
    r = ours(key, {"B": b, "S": s, "ctx": ctx})
    assert r.totals["flops"] == flops, f"{key} FLOPs at B={b}, ctx={ctx}, S={s}"
    assert r.totals["cache"] == elements, f"{key} KV cache at B={b}, ctx={ctx}, S={s}"


@pytest.mark.parametrize("key", ["mistral", "llama"])
def test_decode_phase_is_one_token_over_the_context(key):
    phase = ours_graph(key).arch.phases["decode"].values
    assert (int(phase["S"]), int(phase["ctx"])) == (1, SMALL[key]["max_position_embeddings"] - 1)


def test_the_window_caps_the_cache():
    """Mistral's cache keeps window - 1 = 5 tokens per layer whatever the context; Llama's grows."""
    kv = 2 * SMALL["mistral"]["num_key_value_heads"] * 16 * SMALL["mistral"]["num_hidden_layers"]
    for ctx in (9, 20):
        assert ours("mistral", {"B": 1, "S": 1, "ctx": ctx}).totals["cache"] == 5 * kv
    assert (
        ours("llama", {"B": 1, "S": 1, "ctx": 20}).totals["cache"]
        > ours("llama", {"B": 1, "S": 1, "ctx": 9}).totals["cache"]
    )


# --- published full-size configs, params on meta ---------------------------------------------------

# From the config.json of each model on the Hub (the fields that size the model).
PUBLISHED: dict[str, dict[str, Any]] = {
    "Mistral-7B-v0.1": dict(
        architectures=["MistralForCausalLM"], model_type="mistral", vocab_size=32000, hidden_size=4096,
        intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
        max_position_embeddings=32768, sliding_window=4096, rope_theta=10000.0, rms_norm_eps=1e-05,
        tie_word_embeddings=False, hidden_act="silu", torch_dtype="bfloat16",
    ),
    "Qwen2.5-0.5B": dict(
        architectures=["Qwen2ForCausalLM"], model_type="qwen2", vocab_size=151936, hidden_size=896,
        intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
        max_position_embeddings=32768, max_window_layers=24, sliding_window=32768, use_sliding_window=False,
        rope_theta=1000000.0, tie_word_embeddings=True, hidden_act="silu", rms_norm_eps=1e-06,
    ),
    "Qwen2.5-7B": dict(
        architectures=["Qwen2ForCausalLM"], model_type="qwen2", vocab_size=152064, hidden_size=3584,
        intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
        max_position_embeddings=131072, max_window_layers=28, sliding_window=131072, use_sliding_window=False,
        rope_theta=1000000.0, tie_word_embeddings=False, hidden_act="silu", rms_norm_eps=1e-06,
    ),
    "gemma-2-2b": dict(
        architectures=["Gemma2ForCausalLM"], model_type="gemma2", vocab_size=256000, hidden_size=2304,
        intermediate_size=9216, num_hidden_layers=26, num_attention_heads=8, num_key_value_heads=4,
        head_dim=256, max_position_embeddings=8192, sliding_window=4096, query_pre_attn_scalar=256,
        final_logit_softcapping=30.0, attn_logit_softcapping=50.0, hidden_act="gelu_pytorch_tanh",
        hidden_activation="gelu_pytorch_tanh", rope_theta=10000.0, attention_bias=False,
    ),
    "Phi-3-mini-4k-instruct": dict(
        architectures=["Phi3ForCausalLM"], model_type="phi3", vocab_size=32064, hidden_size=3072,
        intermediate_size=8192, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
        max_position_embeddings=4096, original_max_position_embeddings=4096, sliding_window=2047,
        rope_theta=10000.0, rope_scaling=None, tie_word_embeddings=False, hidden_act="silu",
        pad_token_id=32000, bos_token_id=1, eos_token_id=32000,
    ),
    "Meta-Llama-3-8B": dict(
        architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=128256, hidden_size=4096,
        intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
        max_position_embeddings=8192, rope_theta=500000.0, attention_bias=False, hidden_act="silu",
        tie_word_embeddings=False, rms_norm_eps=1e-05,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_configs_params(name):
    config = PUBLISHED[name]
    graph = build(load_text(hf.to_yaml(config, f"{name}/config.json"), f"{name}.yaml"))
    assert evaluate(graph).totals["params"] == params(_model(config))


def test_published_mistral_decodes_past_its_window():
    """Mistral-7B-v0.1 at its full 32,768 context (the decode phase): each layer keeps 4,095 tokens of
    8 KV heads of 128, keys and values: 2*32*4095*8*128 elements per sequence."""
    text = hf.to_yaml(PUBLISHED["Mistral-7B-v0.1"], "config.json")
    graph = build(load_text(text, "mistral.yaml"))
    decode = graph.arch.phases["decode"].values
    r = evaluate(graph, {"B": 1, **{k: int(v) for k, v in decode.items()}})
    assert r.totals["cache"] == 2 * 32 * 4095 * 8 * 128


# --- files and the command line --------------------------------------------------------------------


def test_eval_reads_a_config_file_or_folder(tmp_path):
    from typer.testing import CliRunner

    from symcost.cli import app

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(SMALL["qwen2"]))
    runner = CliRunner()
    expected = f"{params(hf_model('qwen2')):,}"
    for arg in (str(folder / "config.json"), str(folder)):
        result = runner.invoke(app, ["eval", arg, "--set", "S=5", "--depth", "1"])
        assert result.exit_code == 0, result.output
        assert expected in result.output
    out = tmp_path / "model.yaml"
    result = runner.invoke(app, ["import", "hf", str(folder / "config.json"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert evaluate(build(load_text(out.read_text(), "model.yaml"))).totals["params"] == params(hf_model("qwen2"))


def _error(data: Any, tmp_path, name: str = "config.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    with pytest.raises(SymcostError) as info:
        hf.load(path)
    return str(info.value)


def test_unknown_model_type_lists_the_supported_ones(tmp_path):
    message = _error(SMALL["llama"] | {"model_type": "llamma"}, tmp_path)
    assert "unknown model_type 'llamma'" in message and "did you mean 'llama'" in message
    for kind in hf.SUPPORTED:
        assert kind in message


def test_not_json(tmp_path):
    assert "not a JSON config" in _error("model_type: llama\n", tmp_path)
    assert "JSON object" in _error("[1, 2]", tmp_path)


def test_missing_required_field_is_named(tmp_path):
    config = dict(SMALL["llama"])
    del config["hidden_size"]
    assert "needs 'hidden_size'" in _error(config, tmp_path)
    assert "'num_key_value_heads' must be a positive integer" in _error(
        SMALL["llama"] | {"num_key_value_heads": "8"}, tmp_path
    )


def test_device_files_and_fifos_are_refused(tmp_path):
    with pytest.raises(SymcostError, match="not a regular file"):
        hf.read_config("/dev/zero")
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    with pytest.raises(SymcostError, match="not a regular file"):
        hf.read_config(fifo)  # refused before it is opened: nothing blocks
    with pytest.raises(SymcostError, match="not a regular file"):
        hf.read_config(tmp_path)  # a folder whose config.json is the FIFO


def test_oversized_files_are_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(" " * (hf.MAX_BYTES + 1))
    with pytest.raises(SymcostError, match="at most"):
        hf.read_config(path)


def test_fields_that_change_cost_are_warned_about(capsys):
    hf.to_yaml(SMALL["llama"] | {"quantization_config": {"quant_method": "awq", "bits": 4}}, "q/config.json")
    hf.to_yaml(SMALL["llama"] | {"rope_scaling": {"rope_type": "spiral"}}, "r/config.json")
    hf.to_yaml(SMALL["qwen2_window"] | {"layer_types": ["full_attention", "linear_attention", "sliding_attention"]})
    err = capsys.readouterr().err
    assert "Warning: q/config.json: 'quantization_config'" in err and "awq" in err
    assert "weight bytes follow --weight-dtype" in err  # mixed precision sets the weights' format apart
    assert "'rope_scaling': unknown rope type 'spiral'" in err
    assert "'layer_types': unknown attention type 'linear_attention'" in err


def test_rope_parameters_and_rope_theta_read_alike():
    """transformers 5 writes rope_parameters where 4.x wrote rope_theta and rope_scaling: no count moves."""
    old = SMALL["llama"] | {"rope_theta": 500000.0}
    new = {k: v for k, v in SMALL["llama"].items() if k not in ("rope_theta", "rope_scaling")}
    new["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0}
    assert hf.to_yaml(old, "config.json") == hf.to_yaml(new, "config.json")


def test_other_heads_are_warned_about(capsys):
    hf.to_yaml(SMALL["qwen2"] | {"architectures": ["Qwen2ForSequenceClassification"]}, "c/config.json")
    assert (
        "'architectures': names Qwen2ForSequenceClassification; symcost writes Qwen2ForCausalLM"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize("key", KEYS)
def test_layers_carry_transformers_module_names(key):
    """Every layer with parameters or FLOPs is named as the transformers module that holds them, with
    the same parameters and FLOPs (one copy of a repeated layer stands for its first copy)."""
    inputs = {"input_ids": ref.ids(2, 5)}
    checked = ref.check_module_names(hf_model(key), inputs, ours(key, {"B": 2, "S": 5}).nodes, ref.sdpa_elsewhere)
    assert checked >= 6
