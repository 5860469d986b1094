"""The bundled transformer architectures equal HF ``transformers`` exactly.

Each file (GPT-2, BERT, ViT-B/16, Llama 2/3) is checked against the ``transformers`` model built from
a config with no weights, on the meta device (no memory, no data, nothing downloaded), counted with
FlopCounterMode on meta inputs: symcost's params must equal ``sum(p.numel() for p in
model.parameters())`` (tied weights once: ``parameters()`` yields a shared tensor once) and its FLOPs
must equal FlopCounterMode's total, at two or more shapes (batch 1 and 2, short and long sequences,
two image sizes). At one shape every layer with parameters or FLOPs must also name the HF modules with
the same parameters and FLOPs. The published parameter counts (torchvision's weights meta; transformers' models built from the published configs) and ViT-B/16's
FLOPs are checked against both. Closed forms: params and FLOPs are linear in ``n_layer``, with the
coefficients HF gives, and GPT-2's FLOPs are Megatron's forward formula (Narayanan et al. 2021, section 5.1).

Attention implementation: ``attn_implementation="sdpa"`` is chosen explicitly (it is the default).
On meta tensors FlopCounterMode counts SDPA as its two bmms, 2*B*H*S_q*S_kv*(D_qk + D_v), the full
square even under a causal mask, which is symcost's default. (On CPU tensors it would count 0: the
``_for_cpu`` kernel has no FLOP rule in torch 2.13.0's torch/utils/flop_counter.py.) "eager" computes q k^T and attn v as explicit
matmuls and counts the same; ``test_eager_attention_counts_the_same`` checks it.

Rotary embeddings (Llama): HF computes the cos/sin table with a small matmul of inv_freq and the
positions; FlopCounterMode does not count it (the model-level totals below equal symcost's with no
rotary term), and the rotation itself is elementwise (0).
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sympy
import torch
from torch.utils.flop_counter import FlopCounterMode

from symcost.compile import Result, evaluate, symbolic_totals
from tests.helpers import graph

transformers = pytest.importorskip("transformers")

ARCHS = Path(__file__).resolve().parent.parent / "archs"
META = torch.device("meta")
ATTENTION = "sdpa"


# --- HF reference models, from configs, on meta ---------------------------------------------------

# Each family: (config class, model class, {symcost variable: config field}, input builder).
LLAMA_2_7B = dict(
    vocab_size=32000,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
)


def _ids(b: int, s: int) -> dict[str, torch.Tensor]:
    return {"input_ids": torch.zeros(b, s, dtype=torch.long, device=META)}


FAMILIES: dict[str, tuple[str, str, dict[str, Any], Callable[..., dict[str, torch.Tensor]]]] = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {}, _ids),
    "bert": ("BertConfig", "BertModel", {}, _ids),
    "llama": ("LlamaConfig", "LlamaForCausalLM", LLAMA_2_7B, _ids),
    "vit": (
        "ViTConfig",
        "ViTForImageClassification",
        {"num_labels": 1000},
        lambda n, size: {"pixel_values": torch.empty(n, 3, size, size, device=META)},
    ),
}


@functools.cache
def hf_model(family: str, config: tuple[tuple[str, Any], ...]) -> torch.nn.Module:
    config_cls, model_cls, base, _ = FAMILIES[family]
    kwargs = base | dict(config)
    with warnings.catch_warnings(), torch.device(META):
        warnings.simplefilter("ignore")
        model = getattr(transformers, model_cls)(
            getattr(transformers, config_cls)(**kwargs, attn_implementation=ATTENTION)
        )
    return model.eval()


@functools.cache
def hf_counts(
    family: str, config: tuple[tuple[str, Any], ...], shape: tuple[int, int]
) -> tuple[int, int, dict[str, int]]:
    """(params, FlopCounterMode total, FLOPs per module name) of the HF model at ``shape``."""
    model = hf_model(family, config)
    inputs = FAMILIES[family][3](*shape)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**inputs)
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops(), per_module


# --- symcost -------------------------------------------------------------------------------------


def ours(arch: str, values: dict[str, int]) -> Result:
    return evaluate(graph(arch), values)


def shape_values(family: str, shape: tuple[int, int]) -> dict[str, int]:
    if family == "vit":
        return {"N": shape[0], "H": shape[1], "W": shape[1]}
    return {"B": shape[0], "S": shape[1]}


# (arch file, family, HF config beyond the family's base, symcost variables, shapes)
CASES = [
    ("gpt2", "gpt2", {}, {}, [(1, 128), (2, 1024), (3, 7)]),
    ("gpt2_medium", "gpt2", dict(n_embd=1024, n_layer=24, n_head=16), {}, [(1, 128), (2, 256)]),
    ("gpt2_large", "gpt2", dict(n_embd=1280, n_layer=36, n_head=20), {}, [(1, 64)]),
    ("gpt2_xl", "gpt2", dict(n_embd=1600, n_layer=48, n_head=25), {}, [(1, 64)]),
    ("bert_base", "bert", {}, {}, [(1, 128), (2, 512), (3, 9)]),
    (
        "bert_large",
        "bert",
        dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
        {},
        [(1, 128)],
    ),
    ("vit_b_16", "vit", {}, {}, [(1, 224), (2, 224)]),
    ("vit_b_16", "vit", dict(image_size=384), {}, [(1, 384)]),
    ("vit_b_16", "vit", dict(patch_size=32), {"patch": 32}, [(1, 224), (2, 224)]),
    ("llama", "llama", {}, {}, [(1, 128), (2, 1024)]),
    (
        "llama2_13b",
        "llama",
        dict(
            hidden_size=5120,
            intermediate_size=13824,
            num_hidden_layers=40,
            num_attention_heads=40,
            num_key_value_heads=40,
        ),
        {},
        [(1, 128), (2, 256)],
    ),
    (
        "llama2_70b",
        "llama",
        dict(
            hidden_size=8192,
            intermediate_size=28672,
            num_hidden_layers=80,
            num_attention_heads=64,
            num_key_value_heads=8,
        ),
        {},
        [(1, 64), (2, 128)],
    ),
    (
        "llama3_8b",
        "llama",
        dict(vocab_size=128256, intermediate_size=14336, num_key_value_heads=8),
        {},
        [(1, 128), (2, 512)],
    ),
]

POINTS = [
    pytest.param(
        arch,
        family,
        config,
        variables,
        shape,
        id=f"{arch}-{'-'.join(f'{k}{v}' for k, v in variables.items())}{shape[0]}x{shape[1]}",
    )
    for arch, family, config, variables, shapes in CASES
    for shape in shapes
]


@pytest.mark.parametrize(("arch", "family", "config", "variables", "shape"), POINTS)
def test_totals_equal_hf(arch, family, config, variables, shape):
    params, flops, _ = hf_counts(family, tuple(config.items()), shape)
    r = ours(arch, variables | shape_values(family, shape))
    assert r.totals["params"] == params, f"{arch} params at {shape}"
    assert r.totals["flops"] == flops, f"{arch} FLOPs at {shape}"


# --- the published numbers -----------------------------------------------------------------------

# transformers built from the published configs (sum(p.numel()), tied embeddings once) and torchvision's weights meta (torchvision
# vit_b_16 weights meta: num_params 86,567,656; _ops 17.564 GMACs = 35,127,656,448 FlopCounterMode
# FLOPs at 1x3x224x224).
PUBLISHED = {
    "gpt2": 124_439_808,
    "gpt2_medium": 354_823_168,
    "gpt2_large": 774_030_080,
    "gpt2_xl": 1_557_611_200,
    "bert_base": 109_482_240,
    "bert_large": 335_141_888,
    "vit_b_16": 86_567_656,
    "llama": 6_738_415_616,  # Llama-2-7B
    "llama2_13b": 13_015_864_320,
    "llama2_70b": 68_976_648_192,
    "llama3_8b": 8_030_261_248,
}


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_published_params(arch):
    assert ours(arch, {}).totals["params"] == PUBLISHED[arch]
    family, config = next((f, c) for a, f, c, v, _ in CASES if a == arch and not v)
    assert sum(p.numel() for p in hf_model(family, tuple(config.items())).parameters()) == PUBLISHED[arch]


def test_published_vit_flops():
    # torchvision vit_b_16: 17.564 GMACs x 2 = 35,127,656,448 FLOPs at 1x3x224x224 (torchvision/models/vision_transformer.py ViT_B_16_Weights meta)
    assert ours("vit_b_16", {}).totals["flops"] == 35_127_656_448
    assert hf_counts("vit", (), (1, 224))[1] == 35_127_656_448


def test_llama_2_70b_override_matches_file():
    # the sizes are reachable with --set as well as through the extends files
    sizes = {"d_model": 8192, "n_layer": 80, "n_head": 64, "n_kv_head": 8, "d_ff": 28672}
    assert ours("llama", sizes).totals == ours("llama2_70b", {}).totals
    assert ours("gpt2", {"d_model": 1600, "n_layer": 48, "n_head": 25}).totals["params"] == 1_557_611_200


# --- layer by layer ------------------------------------------------------------------------------


def _gpt2_names(path: str) -> list[str]:
    return [path]


def _bert_names(path: str) -> list[str]:
    if path.endswith(".attention"):  # one multi_head_attention: HF's self (q, k, v) and output.dense
        return [f"{path}.self", f"{path}.output.dense"]
    return [path]


VIT_NAMES = [
    (r"^conv_proj$", "vit.embeddings.patch_embeddings.projection"),
    (r"^class_token$", "vit.embeddings.cls_token"),
    (r"^encoder\.pos_embedding$", "vit.embeddings.position_embeddings"),
    (r"^encoder\.layers\.(\d+)\.ln_1$", r"vit.layers.\1.layernorm_before"),
    (r"^encoder\.layers\.(\d+)\.self_attention$", r"vit.layers.\1.attention"),
    (r"^encoder\.layers\.(\d+)\.ln_2$", r"vit.layers.\1.layernorm_after"),
    (r"^encoder\.layers\.(\d+)\.mlp\.0$", r"vit.layers.\1.mlp.fc1"),
    (r"^encoder\.layers\.(\d+)\.mlp\.3$", r"vit.layers.\1.mlp.fc2"),
    (r"^encoder\.ln$", "vit.layernorm"),
    (r"^heads\.head$", "classifier"),
]


def _vit_names(path: str) -> list[str]:
    for pattern, name in VIT_NAMES:
        if re.match(pattern, path):
            return [re.sub(pattern, name, path)]
    raise AssertionError(f"no HF module named for symcost layer {path}")


LAYERWISE = [
    ("gpt2", "gpt2", _gpt2_names, (2, 64)),
    ("bert_base", "bert", _bert_names, (2, 64)),
    ("vit_b_16", "vit", _vit_names, (2, 224)),
    ("llama3_8b", "llama", _gpt2_names, (2, 64)),
]


def assert_layers_equal(
    arch: str,
    values: dict[str, int],
    model: torch.nn.Module,
    per_module: dict[str, int],
    names: Callable[[str], list[str]],
) -> int:
    """Every symcost layer with parameters or FLOPs (one copy of a repeated block) equals the HF
    modules ``names`` gives for it; returns how many layers were checked."""
    owner = type(model).__name__
    params = dict(model.named_parameters())  # a tied weight appears once, under its first owner
    checked = 0
    for node in ours(arch, values).nodes:
        per_copy = {k: node.values[k] // node.count for k in ("params", "flops")}
        if not any(per_copy.values()) and node.tied_to is None:
            continue
        path = re.sub(r"\.(\d+)-\d+(?=\.|$)", r".\1", node.path, count=1)  # layers 0-11 stand for copy 0
        hf = names(path)
        hf_params = sum(p.numel() for name, p in params.items() for m in hf if name == m or name.startswith(f"{m}."))
        hf_flops = sum(per_module.get(f"{owner}.{m}", 0) for m in hf)
        assert (per_copy["params"], per_copy["flops"]) == (hf_params, hf_flops), f"{arch}: {path} vs HF {hf}"
        checked += 1
    return checked


@pytest.mark.parametrize(("arch", "family", "names", "shape"), LAYERWISE, ids=[c[0] for c in LAYERWISE])
def test_every_layer_equals_its_hf_modules(arch, family, names, shape):
    config = next(c for a, f, c, v, _ in CASES if a == arch and not v)
    model = hf_model(family, tuple(config.items()))
    _, _, per_module = hf_counts(family, tuple(config.items()), shape)
    assert assert_layers_equal(arch, shape_values(family, shape), model, per_module, names) >= 6


# --- decoding with a KV cache --------------------------------------------------------------------
#
# llama.yaml and gpt2.yaml keep a KV cache of ``ctx`` earlier tokens in every attention layer
# (multi_head_attention's kv_cache/past): a pass projects only its S new tokens and attends over
# ctx + S keys. HF's twin is one forward step with ``past_key_values``: a prompt of ctx tokens is run
# first, outside FlopCounterMode, with use_cache=True (on meta: the DynamicCache holds meta tensors of
# the right shapes), then the S new tokens are counted. No attention_mask, position_ids or
# cache_position is passed: HF derives cache_position (and GPT-2's and the rotary positions) from
# the cache's length, and the batch has no padding. The cache's concatenation is a copy, which
# FlopCounterMode counts 0; the attention's two bmms are 2*B*H*S*(ctx + S)*2*head_dim.

# Small sizes (HF config, the same sizes as symcost variables): two layers keep a step to milliseconds.
SMALL = {
    "llama": (
        dict(
            vocab_size=100,
            hidden_size=64,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,  # grouped-query: the cache holds 2 KV heads, the attention uses 4
        ),
        {"vocab": 100, "d_model": 64, "d_ff": 96, "n_layer": 2, "n_head": 4, "n_kv_head": 2},
    ),
    "gpt2": (
        # bos/eos inside the small vocabulary (GPT-2's 50256 draws a config warning)
        dict(vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=1024, bos_token_id=0, eos_token_id=0),
        {"vocab": 100, "d_model": 64, "n_layer": 2, "n_head": 4, "n_positions": 1024},
    ),
}


@functools.cache
def hf_decode_counts(family: str, b: int, ctx: int, s: int) -> tuple[int, dict[str, int], int, int]:
    """(FlopCounterMode total, FLOPs per module name, cache elements after the step, cached tokens
    after the step) of S new tokens per sequence over a KV cache of ctx tokens, at ``SMALL[family]``."""
    model = hf_model(family, tuple(SMALL[family][0].items()))
    past = None
    with torch.no_grad():
        if ctx:
            past = model(**_ids(b, ctx), use_cache=True).past_key_values
            assert past.get_seq_length() == ctx
        with FlopCounterMode(display=False) as counter:
            out = model(**_ids(b, s), past_key_values=past, use_cache=True)
    cache = out.past_key_values
    elements = sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    return counter.get_total_flops(), per_module, elements, cache.get_seq_length()


# (family, B, ctx, S): one token and three, over caches of 5 and 7 tokens; ctx = 0 is a prefill that
# fills an empty cache.
DECODE = [
    (family, b, ctx, s)
    for family in ("llama", "gpt2")
    for b, ctx, s in ((2, 5, 1), (2, 7, 1), (2, 5, 3), (2, 7, 3), (1, 7, 1), (2, 0, 3))
]


@pytest.mark.parametrize(("family", "b", "ctx", "s"), DECODE, ids=[f"{f}-B{b}-ctx{c}-S{s}" for f, b, c, s in DECODE])
def test_decode_with_kv_cache_equals_hf(family, b, ctx, s):
    flops, _, elements, tokens = hf_decode_counts(family, b, ctx, s)
    assert tokens == ctx + s  # HF really appended the S new tokens to the ctx cached ones
    r = ours(family, SMALL[family][1] | {"B": b, "S": s, "ctx": ctx})
    assert r.totals["flops"] == flops, f"{family} FLOPs at B={b}, ctx={ctx}, S={s}"
    assert r.totals["cache"] == elements, f"{family} KV cache elements at B={b}, ctx={ctx}, S={s}"
    # the cache is read, not re-projected: the step costs less than the same ctx + S tokens uncached
    if ctx:
        uncached = ours(family, SMALL[family][1] | {"B": b, "S": ctx + s})
        assert r.totals["flops"] < uncached.totals["flops"]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_decode_layers_equal_hf(family):
    """Layer by layer at one decode step (B = 2, ctx = 7, S = 1): each attention layer's FLOPs are its
    one-token projections plus attention over ctx + 1 keys, as HF's self_attn/attn module counts."""
    model = hf_model(family, tuple(SMALL[family][0].items()))
    _, per_module, _, _ = hf_decode_counts(family, 2, 7, 1)
    values = SMALL[family][1] | {"B": 2, "S": 1, "ctx": 7}
    assert assert_layers_equal(family, values, model, per_module, _gpt2_names) >= 6


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_decode_phase_equals_hf(family):
    """The files' ``decode`` phase (S = 1 over ctx = 4095 cached tokens for Llama, 1023 for GPT-2, its
    whole context) equals one HF step at the small sizes, FLOPs and cache size."""
    phase = graph(family).arch.phases["decode"].values
    s, ctx = int(phase["S"]), int(phase["ctx"])
    assert s == 1 and ctx == {"llama": 4095, "gpt2": 1023}[family]
    flops, _, elements, tokens = hf_decode_counts(family, 2, ctx, s)
    r = ours(family, SMALL[family][1] | {"B": 2, "S": s, "ctx": ctx})
    assert tokens == ctx + s
    assert (r.totals["flops"], r.totals["cache"]) == (flops, elements)


# --- closed forms --------------------------------------------------------------------------------

N_LAYER = sympy.Symbol("n_layer", integer=True, positive=True)

LINEAR = [
    ("gpt2", "gpt2", "n_layer", (2, 32)),
    ("bert_base", "bert", "num_hidden_layers", (2, 32)),
    ("vit_b_16", "vit", "num_hidden_layers", (2, 224)),
    ("llama2_70b", "llama", "num_hidden_layers", (1, 32)),
]


@pytest.mark.parametrize(("arch", "family", "field", "shape"), LINEAR, ids=[c[0] for c in LINEAR])
def test_linear_in_n_layer(arch, family, field, shape):
    """symcost keeps n_layer symbolic: params and FLOPs are a + b*n_layer, and a and b are what HF
    gives with one and two layers (so every depth agrees, not only the published ones)."""
    config = next(c for a, f, c, v, _ in CASES if a == arch and not v)
    fixed = {
        name: var.default
        for name, var in graph(arch).arch.variables.items()
        if var.default is not None and var.default.is_number and name != "n_layer"
    }
    totals = symbolic_totals(graph(arch), fixed | shape_values(family, shape))
    one = hf_counts(family, tuple((config | {field: 1}).items()), shape)
    two = hf_counts(family, tuple((config | {field: 2}).items()), shape)
    for key, index in (("params", 0), ("flops", 1)):
        poly = sympy.Poly(sympy.expand(totals[key]), N_LAYER)
        assert poly.degree() == 1, f"{arch} {key} is not linear in n_layer: {totals[key]}"
        per_layer, rest = poly.all_coeffs()
        assert per_layer == two[index] - one[index], f"{arch} {key} per layer"
        assert rest == 2 * one[index] - two[index], f"{arch} {key} outside the layers"


def test_gpt2_flops_are_megatrons_forward_formula():
    """Megatron-LM (Narayanan et al. 2021, §5.1), forward only:
    24*B*s*l*h^2 + 4*B*s^2*l*h + 2*B*s*h*V, exactly symcost's closed form for GPT-2 (d_ff = 4h; biases
    are not FLOPs under FlopCounterMode's convention, and neither are norms, GELU or softmax). Megatron's
    formula has no KV cache (ctx = 0); over ctx cached tokens the attention term is 4*B*s*(s + ctx)*l*h:
    the projections and MLP stay at the s new tokens."""
    b, s, layers, h, v = sympy.symbols("B S n_layer d_model vocab", integer=True, positive=True)
    megatron = 24 * b * s * layers * h**2 + 4 * b * s**2 * layers * h + 2 * b * s * h * v
    assert sympy.expand(symbolic_totals(graph("gpt2"), {"ctx": 0})["flops"] - megatron) == 0
    flops = symbolic_totals(graph("gpt2"))["flops"]
    ctx = next(x for x in flops.free_symbols if x.name == "ctx")
    assert sympy.expand(flops - megatron - 4 * b * s * ctx * layers * h) == 0


def test_eager_attention_counts_the_same():
    """The choice of "sdpa" does not change the count: eager attention's two matmuls are the same bmms."""
    with torch.device(META):
        eager = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2, attn_implementation="eager")).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        eager(**_ids(2, 64))
    sdpa = hf_counts("gpt2", (("n_layer", 2),), (2, 64))[1]
    assert counter.get_total_flops() == sdpa == ours("gpt2", {"n_layer": 2, "B": 2, "S": 64}).totals["flops"]
