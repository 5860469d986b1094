"""A Hugging Face ``config.json`` as an architecture: the importer behind ``symcost import hf``.

An importer is a front door: it writes the YAML a person would write for the model that
``transformers`` builds from the config (its module names, its sizes as the variables' defaults),
and everything else is symcost as usual. ``symcost eval path/to/config.json`` imports to YAML text
in memory and evaluates that. Only the local file is read, with :mod:`json`: no network, no weights.

>>> text = to_yaml({"model_type": "llama", "vocab_size": 32000, "hidden_size": 4096,
...                 "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32})
>>> from symcost.arch import load_text
>>> from symcost.compile import evaluate
>>> from symcost.shapes import build
>>> evaluate(build(load_text(text, "llama.yaml"))).totals["params"]  # Llama-2-7B
6738415616

Decoders get the variables ``B`` (batch), ``S`` (tokens in this pass) and ``ctx`` (tokens already in
the KV cache) and the phases ``prefill`` and ``decode``, as ``archs/llama.yaml`` has them. Their
attention is written from parts (q/k/v projections with their own bias flags, head views,
``kv_cache`` layers for the keys and values, ``sdpa``, the output projection), so that per-projection
biases (Qwen2), fused projections (Phi-3), norms on q and k (Qwen3, Gemma 3) and sliding-window
caches (Mistral, Gemma 2/3, Phi-3) are exact. Mixture-of-experts MLPs (Mixtral, Qwen2/3-MoE, OLMoE,
DeepSeek) are ``moe`` layers and DeepSeek's attention a ``multi_head_latent_attention`` layer, each named
as the transformers module it stands for (``mlp``, ``self_attn``); dense first layers are their own block.

Each supported ``model_type`` is one function from the config to a :class:`Decoder` (or, for
encoders, to YAML text directly): adding a type is adding one function to :data:`IMPORTERS`.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Location, SymcostError, did_you_mean
from .yamlwrite import Lines as _Lines
from .yamlwrite import scalar as _scalar
from .yamlwrite import text as _text

#: The largest config file read (published configs are a few kB; Phi-3's longrope lists ~10 kB).
MAX_BYTES = 1 << 20

#: Model types whose formulas are still being written: an error names them apart.
PENDING: tuple[str, ...] = ()

#: Rope types: none changes a count (the rotation is elementwise, 0 FLOPs under FlopCounterMode).
KNOWN_ROPE = ("default", "linear", "dynamic", "yarn", "longrope", "llama3", "su", "proportional")

#: transformers' ACT2FN names -> symcost's activation formulas (each 1 elementwise op per element).
ACTIVATIONS = {
    "silu": "silu",
    "swish": "silu",
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "quick_gelu": "quick_gelu",
    "relu": "relu",
    "tanh": "tanh",
}


class ConfigError(SymcostError):
    """A config.json symcost cannot read or does not know."""


# --- reading the file ----------------------------------------------------------------------------


def config_path(arg: str | os.PathLike[str]) -> Path | None:
    """The config file an argument names: a ``.json`` file, or a folder holding ``config.json``;
    None for anything else (an architecture file or a bundled name)."""
    path = Path(arg)
    if path.suffix == ".json":
        return path
    if path.is_dir() and (path / "config.json").exists():
        return path / "config.json"
    return None


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed JSON object of a local config file. Refuses anything but a regular file of at most
    :data:`MAX_BYTES` (a FIFO, ``/dev/zero`` or a folder without config.json would block or never end)."""
    path = Path(path)
    loc = Location(str(path))
    if path.is_dir():
        path = path / "config.json"
        loc = Location(str(path))
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"cannot read the config: {exc.strerror}", loc) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError("not a regular file: a config.json must be a file", loc)
    if info.st_size > MAX_BYTES:
        raise ConfigError(f"{info.st_size:,} bytes: a config.json is at most {MAX_BYTES:,}", loc)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ConfigError(f"cannot read the config: {exc.strerror}", loc) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped after the stat
            raise ConfigError("not a regular file: a config.json must be a file", loc)
        raw = handle.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"more than {MAX_BYTES:,} bytes: a config.json is at most {MAX_BYTES:,}", loc)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"not a JSON config: {exc}", loc) from None
    except RecursionError:
        raise ConfigError("not a JSON config: nested too deeply", loc) from None
    if not isinstance(data, dict):
        raise ConfigError(f"a config.json holds a JSON object, not {type(data).__name__}", loc)
    return data


def load(path: str | os.PathLike[str], shown: str | None = None) -> Any:
    """The architecture (:class:`symcost.arch.Arch`) a config file describes, via its YAML."""
    from .arch import load_text

    file = config_path(path) or Path(path)
    shown = shown or str(file)
    return load_text(to_yaml(read_config(file), shown), shown)


def write(path: str | os.PathLike[str], output: str | os.PathLike[str] | None = None) -> str:
    """Import ``path`` and write the YAML to ``output`` (if given); return the text."""
    file = config_path(path) or Path(path)
    text = to_yaml(read_config(file), str(file))
    if output is not None:
        from .files import write_atomic

        write_atomic(output, text, inputs=[file])
    return text


def warn(source: str, field_name: str, message: str) -> None:
    """A loud warning on stderr naming the config field: symcost does not model what it changes."""
    from .formats import terminal_text

    # a config's text (a model name, a field's value) cannot drive the terminal
    print(terminal_text(f"Warning: {source}: '{field_name}': {message}"), file=sys.stderr)


# --- the config ----------------------------------------------------------------------------------


class Config:
    """A config dict with typed, located reads: a missing required field is an error naming it."""

    def __init__(self, data: dict[str, Any], source: str) -> None:
        self.data = data
        self.source = source
        self.model_type = str(data.get("model_type"))

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.data.get(key)
        return default if value is None else value

    def size(self, key: str, default: int | None = None, *aliases: str) -> int:
        """A positive integer field (or its first present alias), else ``default``; required if None."""
        for name in (key, *aliases):
            value = self.data.get(name)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ConfigError(f"'{name}' must be a positive integer, got {value!r}", Location(self.source))
                return value
        if default is None:
            raise ConfigError(
                f"model_type '{self.model_type}' needs '{key}' (a positive integer), which the config lacks",
                Location(self.source),
            )
        return default

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"'{key}' must be true or false, got {value!r}", Location(self.source))
        return value

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"'{key}' must be a positive number, got {value!r}", Location(self.source))
        return float(value)

    def activation(self, *keys: str, default: str) -> str:
        key = next((k for k in keys if self.has(k)), keys[0])
        name = self.get(key, default)
        if name not in ACTIVATIONS:
            raise ConfigError(
                f"'{key}': unknown activation {name!r}{did_you_mean(str(name), ACTIVATIONS)}; "
                f"symcost knows {', '.join(ACTIVATIONS)}",
                Location(self.source),
            )
        return ACTIVATIONS[name]

    def warn(self, key: str, message: str) -> None:
        warn(self.source, key, message)


# --- decoders ------------------------------------------------------------------------------------


@dataclass
class Decoder:
    """A decoder-only causal LM, as transformers' *ForCausalLM builds it: what one importer reads."""

    model_type: str
    model_class: str
    vocab: int
    d_model: int
    n_layer: int
    n_head: int
    n_kv_head: int
    head_dim: int
    d_ff: int
    max_positions: int
    windows: list[int]  # per layer: the sliding window, 0 for full attention
    act: str = "silu"
    q_bias: bool = False
    k_bias: bool = False
    v_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False  # RMSNorm over head_dim on q and k (Qwen3, Gemma 3)
    sandwich: bool = False  # Gemma 2/3: norms before and after attention and MLP
    embed_scale: float | None = None  # Gemma: embeddings times sqrt(d_model)
    fused: bool = False  # Phi-3: qkv_proj and gate_up_proj
    final_softcap: float | None = None
    attn_softcap: float | None = None
    tie: bool = False
    notes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    qk_norm_full: bool = False  # OLMoE: RMSNorm over the whole q and k projections, before the head view
    moe: Moe | None = None  # mixture-of-experts MLPs, on the layers moe.sparse marks
    mla: Mla | None = None  # multi-head latent attention (DeepSeek-V2/V3) instead of q/k/v projections


def _sizes(c: Config, *, head_dim: int | None = None, tie: bool = False, max_positions: int = 4096) -> dict[str, Any]:
    """The fields every decoder config has (transformers' names), with the config classes' defaults."""
    d_model = c.size("hidden_size")
    n_head = c.size("num_attention_heads")
    n_kv = c.size("num_key_value_heads", n_head)  # missing: multi-head attention (older configs)
    if n_head % n_kv:
        raise ConfigError(f"num_key_value_heads {n_kv} must divide num_attention_heads {n_head}", Location(c.source))
    implied = head_dim if head_dim is not None else d_model // n_head
    _rope(c)
    if c.has("quantization_config"):
        method = c.get("quantization_config", {})
        method = method.get("quant_method", "?") if isinstance(method, dict) else "?"
        c.warn(
            "quantization_config",
            f"the weights are quantized ({method}); symcost counts the dense model's params and FLOPs, "
            "and weight bytes follow --weight-dtype (default: --dtype), not the quantization: "
            "give the checkpoint's format, e.g. --weight-dtype fp8 or int4",
        )
    return dict(
        vocab=c.size("vocab_size"),
        d_model=d_model,
        n_layer=c.size("num_hidden_layers"),
        n_head=n_head,
        n_kv_head=n_kv,
        head_dim=c.size("head_dim", implied),
        d_ff=c.size("intermediate_size"),
        max_positions=c.size("max_position_embeddings", max_positions),
        tie=c.flag("tie_word_embeddings", tie),
    )


def _rope(c: Config) -> None:
    """rope_theta or rope_parameters / rope_scaling (any transformers version): no count depends on
    them, but an unknown rope type is warned about."""
    for key in ("rope_parameters", "rope_scaling"):
        spec = c.get(key)
        if not isinstance(spec, dict):
            continue
        specs = [v for v in spec.values() if isinstance(v, dict)] or [spec]  # Gemma 3: one per layer type
        for one in specs:
            kind = one.get("rope_type", one.get("type", "default"))
            if kind not in KNOWN_ROPE:
                c.warn(key, f"unknown rope type {kind!r}: symcost counts rotary embeddings as elementwise work of "
                            "0 FLOPs whatever their type; check that this one adds no layers")  # fmt: skip


def _layer_windows(c: Config, n_layer: int, window: int | None, default_types: Callable[[int], str]) -> list[int]:
    """Per layer, its sliding window (0: full attention), from ``layer_types`` if the config has it,
    else as the config class implies them."""
    types = c.get("layer_types")
    if types is not None:
        if not isinstance(types, list) or len(types) != n_layer:
            raise ConfigError(f"'layer_types' must list one type per layer ({n_layer})", Location(c.source))
    else:
        types = [default_types(i) for i in range(n_layer)]
    windows = []
    for kind in types:
        if kind == "sliding_attention" and window:
            windows.append(window)
        elif kind in ("full_attention", "sliding_attention"):
            windows.append(0)
        else:
            c.warn("layer_types", f"unknown attention type {kind!r}: costed as full attention")
            windows.append(0)
    return windows


def _window(c: Config, key: str = "sliding_window") -> int | None:
    if not c.has(key):
        return None
    w = c.size(key)
    if w < 2:
        raise ConfigError(f"'{key}' must be at least 2, got {w}", Location(c.source))
    return w


def llama(c: Config) -> Decoder:
    """LlamaForCausalLM (Llama 2, Llama 3.x): attention_bias on all four projections, mlp_bias."""
    s = _sizes(c)
    bias = c.flag("attention_bias", False)
    return Decoder(
        "llama", "LlamaForCausalLM", **s, windows=[0] * s["n_layer"], act=c.activation("hidden_act", default="silu"),
        q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias, mlp_bias=c.flag("mlp_bias", False),
        sources=["transformers LlamaForCausalLM (models/llama/modeling_llama.py)"],
    )  # fmt: skip


def mistral(c: Config) -> Decoder:
    """MistralForCausalLM: Llama's layers without biases; every layer's cache keeps a sliding window
    of sliding_window (4096 for Mistral-7B-v0.1; null from v0.2 on)."""
    if c.has("layer_types"):
        c.warn(
            "layer_types",
            "MistralConfig ignores layer_types (transformers warns likewise): every layer follows sliding_window",
        )
    s = _sizes(c, max_positions=4096 * 32)
    window = _window(c) if "sliding_window" in c.data else 4096  # MistralConfig's default
    return Decoder(
        "mistral", "MistralForCausalLM", **s, windows=[window or 0] * s["n_layer"],
        act=c.activation("hidden_act", default="silu"),
        sources=["transformers MistralForCausalLM (models/mistral/modeling_mistral.py)",
                 "Jiang et al. 2023, Mistral 7B (sliding window attention)"],
    )  # fmt: skip


def _qwen_windows(c: Config, n_layer: int) -> list[int]:
    """Qwen2/Qwen3: a window only with use_sliding_window, on the layers from max_window_layers on."""
    window = _window(c) if c.flag("use_sliding_window", False) else None
    start = c.size("max_window_layers", 28) if window else 0
    return _layer_windows(
        c, n_layer, window, lambda i: "sliding_attention" if window and i >= start else "full_attention"
    )


def qwen2(c: Config) -> Decoder:
    """Qwen2ForCausalLM (Qwen2, Qwen2.5): q, k and v projections biased, o not."""
    s = _sizes(c, max_positions=32768)
    return Decoder(
        "qwen2", "Qwen2ForCausalLM", **s, windows=_qwen_windows(c, s["n_layer"]),
        act=c.activation("hidden_act", default="silu"), q_bias=True, k_bias=True, v_bias=True,
        sources=["transformers Qwen2ForCausalLM (models/qwen2/modeling_qwen2.py): q/k/v_proj bias=True, o_proj bias=False"],
    )  # fmt: skip


def qwen3(c: Config) -> Decoder:
    """Qwen3ForCausalLM (dense): RMSNorm on q and k per head, attention_bias on all four projections."""
    s = _sizes(c, head_dim=128, max_positions=32768)
    bias = c.flag("attention_bias", False)
    return Decoder(
        "qwen3", "Qwen3ForCausalLM", **s, windows=_qwen_windows(c, s["n_layer"]),
        act=c.activation("hidden_act", default="silu"), q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias,
        qk_norm=True,
        sources=["transformers Qwen3ForCausalLM (models/qwen3/modeling_qwen3.py): q_norm and k_norm over head_dim"],
    )  # fmt: skip


_GEMMA_NOTE = (
    "Gemma's RMSNorm multiplies by (1 + weight): the same parameters as torch's RMSNorm, and the added 1 "
    "(d_model adds per call) is not counted."
)


def gemma(c: Config) -> Decoder:
    """GemmaForCausalLM: embeddings scaled by sqrt(d_model), GeGLU (tanh GELU), tied lm_head."""
    s = _sizes(c, head_dim=256, tie=True, max_positions=8192)
    bias = c.flag("attention_bias", False)
    act = c.activation("hidden_act", "hidden_activation", default="gelu_pytorch_tanh")
    act = "gelu_tanh" if act == "gelu" else act  # GemmaConfig turns the legacy "gelu" into the tanh approximation
    return Decoder(
        "gemma", "GemmaForCausalLM", **s, windows=[0] * s["n_layer"], act=act,
        q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias, embed_scale=math.sqrt(s["d_model"]),
        notes=[_GEMMA_NOTE], sources=["transformers GemmaForCausalLM (models/gemma/modeling_gemma.py)"],
    )  # fmt: skip


def gemma2(c: Config) -> Decoder:
    """Gemma2ForCausalLM: sliding and full layers alternate, four norms per layer, soft-capped logits."""
    s = _sizes(c, head_dim=256, tie=True, max_positions=8192)
    window = _window(c) if "sliding_window" in c.data else 4096
    windows = _layer_windows(
        c, s["n_layer"], window, lambda i: "sliding_attention" if (i + 1) % 2 else "full_attention"
    )
    bias = c.flag("attention_bias", False)
    final = c.number("final_logit_softcapping") if "final_logit_softcapping" in c.data else 30.0
    attn = c.number("attn_logit_softcapping") if "attn_logit_softcapping" in c.data else 50.0
    return Decoder(
        "gemma2", "Gemma2ForCausalLM", **s, windows=windows,
        act=c.activation("hidden_activation", default="gelu_pytorch_tanh"),
        q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias, sandwich=True, embed_scale=math.sqrt(s["d_model"]),
        final_softcap=final, attn_softcap=attn, notes=[_GEMMA_NOTE],
        sources=["transformers Gemma2ForCausalLM (models/gemma2/modeling_gemma2.py)",
                 "Gemma Team 2024, Gemma 2 (local-global attention, logit soft-capping)"],
    )  # fmt: skip


def gemma3_text(c: Config) -> Decoder:
    """Gemma3ForCausalLM (text): Gemma 2's layout with q/k norms and five local layers per global one."""
    s = _sizes(c, head_dim=256, tie=True, max_positions=131072)
    if c.flag("use_bidirectional_attention", False):
        c.warn("use_bidirectional_attention", "bidirectional attention is not modeled: costed as causal")
    window = _window(c) if "sliding_window" in c.data else 4096
    pattern = c.size("sliding_window_pattern", 6)
    windows = _layer_windows(
        c, s["n_layer"], window, lambda i: "sliding_attention" if (i + 1) % pattern else "full_attention"
    )
    bias = c.flag("attention_bias", False)
    return Decoder(
        "gemma3_text", "Gemma3ForCausalLM", **s, windows=windows,
        act=c.activation("hidden_activation", default="gelu_pytorch_tanh"),
        q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias, qk_norm=True, sandwich=True,
        embed_scale=math.sqrt(s["d_model"]), final_softcap=c.number("final_logit_softcapping"),
        attn_softcap=c.number("attn_logit_softcapping"), notes=[_GEMMA_NOTE],
        sources=["transformers Gemma3ForCausalLM (models/gemma3/modeling_gemma3.py)"],
    )  # fmt: skip


def phi3(c: Config) -> Decoder:
    """Phi3ForCausalLM: fused qkv_proj and gate_up_proj; the cache keeps sliding_window if set."""
    s = _sizes(c, max_positions=4096)
    window = _window(c)
    return Decoder(
        "phi3", "Phi3ForCausalLM", **s, windows=[window or 0] * s["n_layer"],
        act=c.activation("hidden_act", default="silu"), fused=True,
        sources=["transformers Phi3ForCausalLM (models/phi3/modeling_phi3.py): qkv_proj, gate_up_proj"],
    )  # fmt: skip


# --- mixture of experts and latent attention ---------------------------------------------------


@dataclass
class Moe:
    """The sparse MLPs of a mixture-of-experts decoder (formulas/moe.yaml), as the config sizes them."""

    experts: int  # routed experts E
    top_k: int  # experts per token
    d_expert: int  # each routed expert's intermediate size
    sparse: list[bool]  # per layer: a MoE MLP (else the dense MLP of intermediate_size)
    shared_ff: int = 0  # the shared experts' intermediate size (0: none)
    shared_gate: bool = False  # Qwen2-MoE: sigmoid gate on the shared expert
    sigmoid_router: bool = False  # DeepSeek-V3
    correction_bias: bool = False  # DeepSeek-V3's e_score_correction_bias buffer
    norm_topk: bool = True  # renormalized top-k weights (elementwise only)


@dataclass
class Mla:
    """DeepSeek's multi-head latent attention (formulas/multi_head_latent_attention.yaml)."""

    q_lora_rank: int  # 0: a plain q_proj
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    bias: bool = False  # attention_bias


def _sparse_layers(c: Config, n_layer: int) -> list[bool]:
    """Qwen2-MoE/Qwen3-MoE: a MoE MLP unless the layer is in mlp_only_layers, every decoder_sparse_step
    layers ((i + 1) % step == 0), as Qwen2MoeDecoderLayer decides."""
    only = c.get("mlp_only_layers", [])
    if not isinstance(only, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in only):
        raise ConfigError("'mlp_only_layers' must list layer indices", Location(c.source))
    step = c.size("decoder_sparse_step", 1)
    return [i not in only and (i + 1) % step == 0 for i in range(n_layer)]


def _moe_sources(*extra: str) -> list[str]:
    return [*extra, "Shazeer et al. 2017, Outrageously Large Neural Networks (sparsely-gated mixture of experts)"]


def mixtral(c: Config) -> Decoder:
    """MixtralForCausalLM: Mistral's attention (a sliding window if set), every MLP a MoE of
    num_local_experts SwiGLU experts of intermediate_size, top num_experts_per_tok (renormalized)."""
    s = _sizes(c, max_positions=4096 * 32)
    window = _window(c)
    experts = c.size("num_local_experts", 8, "num_experts")
    moe = Moe(experts, c.size("num_experts_per_tok", 2), s["d_ff"], [True] * s["n_layer"])
    return Decoder(
        "mixtral", "MixtralForCausalLM", **s, windows=[window or 0] * s["n_layer"],
        act=c.activation("hidden_act", default="silu"), moe=moe,
        sources=_moe_sources("transformers MixtralForCausalLM (models/mixtral/modeling_mixtral.py): "
                             "MixtralSparseMoeBlock (gate, experts)", "Jiang et al. 2024, Mixtral of Experts"),
    )  # fmt: skip


def qwen2_moe(c: Config) -> Decoder:
    """Qwen2MoeForCausalLM (Qwen1.5-MoE, Qwen2-MoE): Qwen2's attention (qkv_bias), MoE MLPs with a
    sigmoid-gated shared expert, dense MLPs on mlp_only_layers."""
    s = _sizes(c, max_positions=32768)
    use = c.flag("use_sliding_window", False)
    window = _window(c) if use else None
    start = c.size("max_window_layers", 28)
    windows = _layer_windows(
        c, s["n_layer"], window,
        lambda i: "sliding_attention" if (i + 1) % 2 and i < start and use else "full_attention",
    )  # fmt: skip
    bias = c.flag("qkv_bias", True)
    moe = Moe(
        c.size("num_experts", 60, "num_local_experts"), c.size("num_experts_per_tok", 4),
        c.size("moe_intermediate_size", 1408), _sparse_layers(c, s["n_layer"]),
        shared_ff=c.size("shared_expert_intermediate_size", 5632), shared_gate=True,
        norm_topk=c.flag("norm_topk_prob", False),
    )  # fmt: skip
    return Decoder(
        "qwen2_moe", "Qwen2MoeForCausalLM", **s, windows=windows, act=c.activation("hidden_act", default="silu"),
        q_bias=bias, k_bias=bias, v_bias=bias, moe=moe,
        sources=_moe_sources("transformers Qwen2MoeForCausalLM (models/qwen2_moe/modeling_qwen2_moe.py): "
                             "Qwen2MoeSparseMoeBlock (gate, experts, shared_expert, shared_expert_gate)"),
    )  # fmt: skip


def qwen3_moe(c: Config) -> Decoder:
    """Qwen3MoeForCausalLM (Qwen3-30B-A3B, Qwen3-235B-A22B): Qwen3's attention (q/k norms per head),
    MoE MLPs without shared experts; with use_sliding_window every layer keeps the window."""
    s = _sizes(c, max_positions=32768)
    window = _window(c) if c.flag("use_sliding_window", False) else None
    bias = c.flag("attention_bias", False)
    moe = Moe(
        c.size("num_experts", 128, "num_local_experts"), c.size("num_experts_per_tok", 8),
        c.size("moe_intermediate_size", 768), _sparse_layers(c, s["n_layer"]),
        norm_topk=c.flag("norm_topk_prob", False),
    )  # fmt: skip
    return Decoder(
        "qwen3_moe", "Qwen3MoeForCausalLM", **s, windows=[window or 0] * s["n_layer"],
        act=c.activation("hidden_act", default="silu"), q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias,
        qk_norm=True, moe=moe,
        sources=_moe_sources("transformers Qwen3MoeForCausalLM (models/qwen3_moe/modeling_qwen3_moe.py): "
                             "Qwen3MoeSparseMoeBlock (gate, experts), q_norm and k_norm over head_dim"),
    )  # fmt: skip


def olmoe(c: Config) -> Decoder:
    """OlmoeForCausalLM (OLMoE-1B-7B): RMSNorm over the whole q and k projections, every MLP a MoE of
    num_experts experts of intermediate_size."""
    s = _sizes(c, max_positions=4096)
    if c.has("clip_qkv"):
        c.warn("clip_qkv", "q, k and v are clamped: elementwise work symcost does not count (no FLOPs change)")
    bias = c.flag("attention_bias", False)
    moe = Moe(
        c.size("num_experts", 64, "num_local_experts"), c.size("num_experts_per_tok", 8), s["d_ff"],
        [True] * s["n_layer"], norm_topk=c.flag("norm_topk_prob", False),
    )  # fmt: skip
    return Decoder(
        "olmoe", "OlmoeForCausalLM", **s, windows=[0] * s["n_layer"], act=c.activation("hidden_act", default="silu"),
        q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias, qk_norm_full=True, moe=moe,
        sources=_moe_sources("transformers OlmoeForCausalLM (models/olmoe/modeling_olmoe.py): OlmoeSparseMoeBlock; "
                             "q_norm over num_attention_heads*head_dim, k_norm over num_key_value_heads*head_dim",
                             "Muennighoff et al. 2024, OLMoE: Open Mixture-of-Experts Language Models"),
    )  # fmt: skip


def _deepseek(c: Config, v3: bool) -> Decoder:
    """DeepseekV2ForCausalLM / DeepseekV3ForCausalLM: MLA attention; the first first_k_dense_replace
    layers have a dense MLP (intermediate_size), the others a MoE of n_routed_experts experts of
    moe_intermediate_size plus n_shared_experts shared ones."""
    s = _sizes(c, max_positions=4096 if v3 else 2048)
    if "q_lora_rank" in c.data and c.data["q_lora_rank"] is None:
        q_lora = 0  # DeepSeek-V2-Lite: a plain q_proj
    else:
        q_lora = c.size("q_lora_rank", 1536)
    mla = Mla(
        q_lora, c.size("kv_lora_rank", 512), c.size("qk_nope_head_dim", 128), c.size("qk_rope_head_dim", 64),
        c.size("v_head_dim", 128), c.flag("attention_bias", False),
    )  # fmt: skip
    first_dense = c.get("first_k_dense_replace", 3 if v3 else 0)
    if isinstance(first_dense, bool) or not isinstance(first_dense, int) or first_dense < 0:
        raise ConfigError(f"'first_k_dense_replace' must be a whole number, got {first_dense!r}", Location(c.source))
    freq = c.get("moe_layer_freq", 1)
    if freq != 1:
        c.warn("moe_layer_freq", f"{freq!r}: transformers ignores it (every layer from first_k_dense_replace "
                                 "on is a MoE layer), and so does symcost")  # fmt: skip
    if c.flag("mlp_bias", False):
        c.warn("mlp_bias", "biased expert MLPs are not modeled: the MoE layers are costed without biases")
    mtp = c.get("num_nextn_predict_layers", c.get("num_mtp_layers", 0))
    if mtp:
        c.warn("num_nextn_predict_layers", f"{mtp} multi-token prediction module(s): transformers does not build "
                                           "them for *ForCausalLM and symcost does not count them")  # fmt: skip
    moe = Moe(
        c.size("n_routed_experts", 256 if v3 else 64, "num_local_experts", "num_experts"),
        c.size("num_experts_per_tok", 8 if v3 else None),
        c.size("moe_intermediate_size", 2048 if v3 else 1407),
        [i >= first_dense for i in range(s["n_layer"])],
        shared_ff=c.size("moe_intermediate_size", 2048 if v3 else 1407) * c.size("n_shared_experts", 1 if v3 else 2),
        sigmoid_router=v3, correction_bias=v3, norm_topk=v3 and c.flag("norm_topk_prob", True),
    )  # fmt: skip
    kind, cls = ("deepseek_v3", "DeepseekV3ForCausalLM") if v3 else ("deepseek_v2", "DeepseekV2ForCausalLM")
    module = "DeepseekV3MoE (gate, experts, shared_experts)" if v3 else "DeepseekV2Moe (gate, experts, shared_experts)"
    paper = (
        "DeepSeek-AI 2024, DeepSeek-V3 Technical Report"
        if v3
        else "DeepSeek-AI 2024, DeepSeek-V2: A Strong, Economical, and Efficient Mixture-of-Experts Language Model"
    )
    return Decoder(
        kind, cls, **s, windows=[0] * s["n_layer"], act=c.activation("hidden_act", default="silu"), moe=moe, mla=mla,
        sources=_moe_sources(f"transformers {cls} (models/{kind}/modeling_{kind}.py): {module}, "
                             f"{cls.replace('ForCausalLM', 'Attention')} (multi-head latent attention)", paper),
    )  # fmt: skip


def deepseek_v2(c: Config) -> Decoder:
    """DeepseekV2ForCausalLM (DeepSeek-V2, -V2-Lite): softmax router, n_shared_experts shared experts."""
    return _deepseek(c, v3=False)


def deepseek_v3(c: Config) -> Decoder:
    """DeepseekV3ForCausalLM (DeepSeek-V3, R1): sigmoid router with e_score_correction_bias."""
    return _deepseek(c, v3=True)


def _block_name(sparse: bool) -> str:
    return "moe_layer" if sparse else "layer"


def _moe_mla_summary(m: Decoder, params_note: str) -> str:
    parts = [f"{m.model_class} from config.json: d_model {m.d_model}, {m.n_layer} layers"]
    if m.moe:
        e = m.moe
        dense = e.sparse.count(False)
        shared = f" + shared {e.shared_ff}" if e.shared_ff else ""
        parts.append(
            (f", {dense} dense (d_ff {m.d_ff}) and {m.n_layer - dense} MoE" if dense else ", each MoE")
            + f" ({e.experts} experts of {e.d_expert}, top {e.top_k}{shared})"
        )
    if m.mla:
        a = m.mla
        parts.append(
            f", latent attention: {m.n_head} heads, q_lora {a.q_lora_rank}, kv_lora {a.kv_lora_rank}, "
            f"qk {a.qk_nope_head_dim} + {a.qk_rope_head_dim}, v {a.v_head_dim}"
        )
    else:
        parts.append(f", {m.n_head} heads ({m.n_kv_head} KV) of {m.head_dim}")
    parts.append(f", vocab {m.vocab}; lm_head {params_note}")
    return "".join(parts)


def _moe_mla_doc(m: Decoder) -> str:
    text = ""
    if m.moe:
        text += (
            " The MLP of the MoE layers is a mixture of experts (formulas/moe.yaml): a router, top_k of n_expert "
            "routed experts per token" + (" and the shared experts" if m.moe.shared_ff else "") + "."
        )
    if m.mla:
        text += (
            " Attention is multi-head latent attention (formulas/multi_head_latent_attention.yaml): its cache "
            "keeps kv_lora_rank + qk_rope_head_dim elements per token per layer."
        )
    return text


def _moe_mla_notes(m: Decoder) -> list[str]:
    notes = []
    if m.moe:
        notes.append(
            "FLOPs count each token's top_k routed experts (plus the router and the shared experts): the routed "
            "experts process exactly T*top_k token rows whatever the routing. params count every expert (the "
            "total parameters). Memory read counts the experts the T = B*S tokens touch: the expected distinct "
            "experts under uniform routing, E*(1 - (1 - top_k/E)^T) (experts_read), exactly top_k at T = 1; "
            "--set all_experts_read=1 reads every expert (the worst case)."
        )
        dense = m.moe.sparse.count(False)
        if dense:
            notes.append(
                f"{dense} of the {m.n_layer} layers have a dense MLP (first_k_dense_replace, mlp_only_layers or "
                "decoder_sparse_step): the runs of dense and MoE layers are listed one by one, so the layer "
                "count is not a variable."
            )
    if m.mla:
        notes.append(
            "The KV cache keeps the latent (kv_lora_rank) and the rotary key (qk_rope_head_dim) of every token "
            "in every layer, as transformers' cache does. Attention is counted as transformers computes it: "
            "kv_b_proj expands every cached latent each step (absorbed 0); --set absorbed=1 counts the "
            "weight-absorbed computation (scores and values in the latent), which never expands the cache."
        )
    return notes


def _moe_mla_variables(m: Decoder) -> list[tuple[str, int, str, int | None]]:
    out: list[tuple[str, int, str, int | None]] = []
    if m.moe:
        e = m.moe
        out += [
            ("n_expert", e.experts, "routed experts (num_local_experts, num_experts, n_routed_experts)", None),
            ("top_k", e.top_k, "experts each token is routed to (num_experts_per_tok)", None),
            ("d_expert", e.d_expert, "intermediate size of each routed expert", None),
        ]
        if e.shared_ff:
            out.append(("d_shared", e.shared_ff, "intermediate size of the shared experts, all together", None))
        out.append(("all_experts_read", 0, "1: read every expert's weights (the worst case); 0: the expected "
                                           "distinct experts under uniform routing", 0))  # fmt: skip
    if m.mla:
        a = m.mla
        if a.q_lora_rank:
            out.append(("q_lora_rank", a.q_lora_rank, "rank of the query compression (q_lora_rank)", None))
        out += [
            ("kv_lora_rank", a.kv_lora_rank, "rank of the key/value latent (kv_lora_rank)", None),
            ("qk_nope_head_dim", a.qk_nope_head_dim, "per-head query/key dims without rotary", None),
            ("qk_rope_head_dim", a.qk_rope_head_dim, "per-head rotary dims, and the shared rotary key's width", None),
            ("v_head_dim", a.v_head_dim, "per-head value dims", None),
            ("absorbed", 0, "1: the weight-absorbed attention; 0: transformers' (kv_b_proj expands the cache)", 0),
        ]
    return out


def _moe_mlp(out: _Lines, m: Decoder, ind: int) -> None:
    """The sparse MLP, one ``moe`` layer named as transformers' block (gate, experts, shared experts)."""
    assert m.moe is not None
    e = m.moe
    spec: dict[str, Any] = dict(op="moe", name="mlp", experts="n_expert", top_k="top_k", d_ff="d_expert")
    if e.shared_ff:
        spec["shared_ff"] = "d_shared"
    if e.shared_gate:
        spec["shared_gate"] = True
    if e.sigmoid_router:
        spec["sigmoid_router"] = True
    if e.correction_bias:
        spec["correction_bias"] = True
    spec["norm_topk"] = e.norm_topk
    spec["all_experts_read"] = "all_experts_read"
    out.layer(ind, **spec)


def _mla_attention(out: _Lines, m: Decoder, ind: int) -> None:
    """DeepSeek's attention, one ``multi_head_latent_attention`` layer named self_attn."""
    assert m.mla is not None
    a = m.mla
    spec: dict[str, Any] = dict(op="multi_head_latent_attention", name="self_attn", heads="n_head")
    if a.q_lora_rank:
        spec["q_lora_rank"] = "q_lora_rank"
    spec.update(
        kv_lora_rank="kv_lora_rank", qk_nope_head_dim="qk_nope_head_dim", qk_rope_head_dim="qk_rope_head_dim",
        v_head_dim="v_head_dim", bias=a.bias, causal=True, kv_cache=True, past="ctx", absorbed="absorbed",
    )  # fmt: skip
    out.layer(ind, **spec)


# --- YAML text -----------------------------------------------------------------------------------


def _name(data: dict[str, Any], source: str, fallback: str) -> str:
    raw = str(data.get("_name_or_path") or "")
    if not raw:
        parent = Path(source).parent.name
        raw = parent if parent not in ("", ".") else fallback
    return raw.rsplit("/", 1)[-1] or fallback


def _header(out: _Lines, data: dict[str, Any], source: str, model_class: str, name: str, family: str,
            summary: str, doc: str, sources: list[str], notes: list[str]) -> None:  # fmt: skip
    out.add(f"# Imported from {Path(source).name} (model_type {data.get('model_type')}, {model_class}) by")
    out.add("# `symcost import hf`: the model transformers builds from this config, with its module names;")
    out.add("# the config's sizes are the variables' defaults.")
    out.add(f"name: {_text(name)}")
    out.add(f"family: {_scalar(family)}")
    out.add(f"summary: {_text(summary)}")
    out.add(f"doc: {_text(doc)}")
    out.add("sources:")
    for item in sources:
        out.add(f"- {_text(item)}", 2)
    out.add("notes:")
    for item in notes:
        out.add(f"- {_text(item)}", 2)


_CACHE_NOTE = (
    "KV cache: each attention layer keeps the keys and values of the ctx earlier tokens (kv_cache layers) and "
    "attends over them and the S new ones; a sliding-window layer keeps the last window - 1 tokens, as "
    "transformers' DynamicSlidingWindowLayer does. --phase prefill (ctx = 0) is a prompt of S tokens; --phase "
    "decode (S = 1) one new token per sequence over ctx cached ones."
)
_ROPE_NOTE = (
    "Rotary position embeddings have no parameters; the rotation of q and k is elementwise work that "
    "FlopCounterMode counts as 0 and that is not written as layers (as in archs/llama.yaml)."
)
_CAUSAL_NOTE = (
    "Causal attention is counted as the full square of scores, FlopCounterMode's convention (sdpa's default)."
)


def decoder_yaml(m: Decoder, data: dict[str, Any], source: str) -> str:
    """The YAML text of a decoder-only causal LM."""
    out = _Lines()
    name = _name(data, source, m.model_type)
    sparse = m.moe.sparse if m.moe else [False] * m.n_layer
    runs = list(zip(m.windows, sparse))
    uniform = len(set(runs)) == 1
    window = max(m.windows)
    notes = [_CACHE_NOTE, _ROPE_NOTE, _CAUSAL_NOTE, *m.notes, *_moe_mla_notes(m)]
    if not uniform and len(set(m.windows)) > 1:
        sliding = sum(1 for w in m.windows if w)
        notes.append(
            f"{sliding} of the {m.n_layer} layers attend in a sliding window (layer_types): their runs are "
            "listed one by one, so the layer count is not a variable."
        )
    if m.attn_softcap:
        notes.append(
            f"Attention logits are soft-capped (attn_logit_softcapping {_scalar(m.attn_softcap)}: divide, tanh, "
            "multiply per score): elementwise work inside the attention that sdpa's counts do not include; "
            "FlopCounterMode counts it 0."
        )
    params_note = "tied to the embedding" if m.tie else "untied"
    _header(
        out, data, source, m.model_class, name, m.model_type,
        _moe_mla_summary(m, params_note) if m.moe or m.mla else
        f"{m.model_class} from config.json: d_model {m.d_model}, {m.n_layer} layers, {m.n_head} heads "
        f"({m.n_kv_head} KV) of {m.head_dim}, d_ff {m.d_ff}, vocab {m.vocab}; lm_head {params_note}",
        "Pre-norm decoder as transformers builds it from the config: token embedding, n_layer layers of "
        "RMSNorm, causal self-attention with a KV cache and a gated MLP, each with a residual add, a final "
        "RMSNorm and the vocabulary head." + _moe_mla_doc(m),
        m.sources, notes,
    )  # fmt: skip
    default_s = min(4096, m.max_positions)
    out.add("variables:")
    variables = [
        ("B", 1, "batch size", None),
        ("S", default_s, "tokens processed in this pass (the prompt in prefill, 1 in decode)", None),
        ("ctx", 0, f"tokens already in the KV cache (0 for prefill; ctx + S <= {m.max_positions})", 0),
        ("vocab", m.vocab, "vocabulary size (vocab_size)", None),
        ("d_model", m.d_model, "hidden size (hidden_size)", None),
    ]
    if uniform:
        variables.append(("n_layer", m.n_layer, "decoder layers (num_hidden_layers)", None))
    variables.append(("n_head", m.n_head, "attention (query) heads (num_attention_heads)", None))
    if m.mla is None:
        variables += [
            ("n_kv_head", m.n_kv_head, "key/value heads (num_key_value_heads)", None),
            ("head_dim", m.head_dim, "width of each head (head_dim)", None),
        ]
    if not all(sparse):
        variables.append(("d_ff", m.d_ff, "MLP intermediate size (intermediate_size)", None))
    variables += _moe_mla_variables(m)
    if window:
        variables.append(("window", window, "sliding window of the local layers (sliding_window)", None))
    for var, default, doc, minimum in variables:
        out.add(
            f"{var}: {{default: {default}, "
            + (f"min: {minimum}, " if minimum is not None else "")
            + f"doc: {_text(doc)}}}",
            2,
        )
    out.add("inputs:")
    out.add("ids: [B, S]", 2)
    out.add("samples: B")
    out.add("tokens: B*S")
    out.add("phases:")
    out.add('prefill: {doc: "the prompt: S tokens, empty KV cache; latency = time to first token", set: {ctx: 0}}', 2)
    out.add(
        'decode: {doc: "one new token per sequence over ctx cached tokens; latency = time per output token", '
        f"set: {{S: 1, ctx: {m.max_positions - 1}}}}}",
        2,
    )
    out.add("blocks:")
    for kind in sorted(set(sparse)):
        out.add(f"{_block_name(kind)}:", 2)
        doc = "one decoder layer" + (" with a mixture-of-experts MLP" if kind else "")
        out.add(f"doc: {_text(doc + ', transformers module names; window 0 is full attention')}", 4)
        out.add("args: {window: 0}", 4)
        out.add("layers:", 4)
        _decoder_layer(out, m, 6, kind)
    out.add("layers:")
    out.layer(2, op="embedding", name="model.embed_tokens", **{"in": "ids"}, num_embeddings="vocab",
              embedding_dim="d_model")  # fmt: skip
    if m.embed_scale is not None:
        out.layer(2, op="mul", name="model.embed_tokens.embed_scale", scalar=m.embed_scale)
    if uniform:
        out.layer(2, block=_block_name(sparse[0]), name="model.layers", repeat="n_layer",
                  window="window" if window else 0)  # fmt: skip
    else:
        start = 0
        for index in range(1, m.n_layer + 1):
            if index == m.n_layer or runs[index] != runs[start]:
                out.layer(2, block=_block_name(sparse[start]), name="model.layers", repeat=index - start,
                          index_from=start, window="window" if m.windows[start] else 0)  # fmt: skip
                start = index
    out.layer(2, op="rmsnorm", name="model.norm")
    head: dict[str, Any] = {"op": "linear", "name": "lm_head", "out_features": "vocab", "bias": False}
    if m.tie:
        head["tied"] = "model.embed_tokens"
    out.layer(2, **head)
    if m.final_softcap:
        cap = m.final_softcap
        out.layer(2, op="div", name="lm_head.softcap_div", scalar=cap)
        out.layer(2, op="tanh", name="lm_head.softcap_tanh")
        out.layer(2, op="mul", name="lm_head.softcap_mul", scalar=cap)
    return out.text()


def _decoder_layer(out: _Lines, m: Decoder, ind: int, sparse: bool = False) -> None:
    """One decoder layer's layers, named as transformers names its modules (``sparse``: a MoE MLP)."""
    layer = out.layer
    layer(ind, op="rmsnorm", name="input_layernorm")
    if m.mla is not None:
        _mla_attention(out, m, ind)
    else:
        _attention(out, m, ind)
    if m.sandwich:
        layer(ind, op="rmsnorm", name="post_attention_layernorm")
        layer(ind, op="add", name="add_1", **{"in": ["post_attention_layernorm", "x"]})
        layer(ind, op="rmsnorm", name="pre_feedforward_layernorm")
        mlp_in = "pre_feedforward_layernorm"
    else:
        layer(ind, op="add", name="add_1", **{"in": ["self_attn" if m.mla else "self_attn.o_proj", "x"]})
        layer(ind, op="rmsnorm", name="post_attention_layernorm")
        mlp_in = "post_attention_layernorm"
    if sparse:
        _moe_mlp(out, m, ind)
    elif m.fused:
        layer(ind, op="linear", name="mlp.gate_up_proj", out_features="2*d_ff", bias=m.mlp_bias)
        layer(ind, op="chunk", name="mlp.gate_up", chunks=2, dim=-1)
        layer(ind, op=m.act, name="mlp.activation_fn", **{"in": "mlp.gate_up.0"})
        layer(ind, op="mul", name="mlp.mul", **{"in": ["mlp.gate_up.1", "mlp.activation_fn"]})
    else:
        layer(ind, op="linear", name="mlp.gate_proj", out_features="d_ff", bias=m.mlp_bias)
        layer(ind, op=m.act, name="mlp.act_fn")
        layer(ind, op="linear", name="mlp.up_proj", **{"in": mlp_in}, out_features="d_ff", bias=m.mlp_bias)
        layer(ind, op="mul", name="mlp.mul", **{"in": ["mlp.act_fn", "mlp.up_proj"]})
    if not sparse:
        layer(ind, op="linear", name="mlp.down_proj", out_features="d_model", bias=m.mlp_bias)
    if m.sandwich:
        layer(ind, op="rmsnorm", name="post_feedforward_layernorm")
        layer(ind, op="add", name="add_2", **{"in": ["post_feedforward_layernorm", "add_1"]})
    else:
        layer(ind, op="add", name="add_2", **{"in": ["mlp" if sparse else "mlp.down_proj", "add_1"]})


def _attention(out: _Lines, m: Decoder, ind: int) -> None:
    """Attention from parts: q/k/v projections, head views, the KV cache, sdpa and o_proj."""
    layer = out.layer
    heads = {"q": "n_head", "k": "n_kv_head", "v": "n_kv_head"}
    bias = {"q": m.q_bias, "k": m.k_bias, "v": m.v_bias}
    if m.fused:
        layer(ind, op="linear", name="self_attn.qkv_proj", out_features="(n_head + 2*n_kv_head)*head_dim", bias=False)
        layer(ind, op="split", name="self_attn.qkv", dim=-1,
              sizes=["n_head*head_dim", "n_kv_head*head_dim", "n_kv_head*head_dim"])  # fmt: skip
        source = {"q": "self_attn.qkv.0", "k": "self_attn.qkv.1", "v": "self_attn.qkv.2"}
    for part in ("q", "k", "v"):
        if m.fused:
            layer(ind, op="view", name=f"self_attn.{part}_view", **{"in": source[part]},
                  shape=["B", "S", heads[part], "head_dim"])  # fmt: skip
        else:
            layer(ind, op="linear", name=f"self_attn.{part}_proj", **{"in": "input_layernorm"},
                  out_features=f"{heads[part]}*head_dim", bias=bias[part])  # fmt: skip
            if m.qk_norm_full and part != "v":
                layer(ind, op="rmsnorm", name=f"self_attn.{part}_norm")
            layer(ind, op="view", name=f"self_attn.{part}_view", shape=["B", "S", heads[part], "head_dim"])
        if m.qk_norm and part != "v":
            layer(ind, op="rmsnorm", name=f"self_attn.{part}_norm")
        layer(ind, op="transpose", name=f"self_attn.{part}_heads", dim0=1, dim1=2)
        if part != "q":
            layer(ind, op="kv_cache", name=f"self_attn.{'keys' if part == 'k' else 'values'}", past="ctx",
                  window="window")  # fmt: skip
    layer(ind, op="sdpa", name="self_attn.attention", **{"in": ["self_attn.q_heads", "self_attn.keys", "self_attn.values"]},
          causal=True)  # fmt: skip
    layer(ind, op="transpose", name="self_attn.merge_heads", dim0=1, dim1=2)
    layer(ind, op="contiguous", name="self_attn.contiguous")
    layer(ind, op="reshape", name="self_attn.reshape", shape=["B", "S", "n_head*head_dim"])
    layer(ind, op="linear", name="self_attn.o_proj", out_features="d_model", bias=m.o_bias)


# --- encoders and GPT-2 --------------------------------------------------------------------------


def gpt2(c: Config, data: dict[str, Any], source: str) -> str:
    """GPT2LMHeadModel: learned positions, fused c_attn (Conv1D d -> 3d), GELU (tanh) MLP, tied head."""
    d = c.size("n_embd", 768, "hidden_size")
    n_head = c.size("n_head", 12, "num_attention_heads")
    if d % n_head:
        raise ConfigError(f"n_embd {d} must be a multiple of n_head {n_head}", Location(source))
    n_positions = c.size("n_positions", 1024, "max_position_embeddings")
    values = dict(
        vocab=c.size("vocab_size", 50257),
        n_positions=n_positions,
        d_model=d,
        n_layer=c.size("n_layer", 12, "num_hidden_layers"),
        n_head=n_head,
        d_ff=c.size("n_inner", 4 * d),
    )
    act = c.activation("activation_function", default="gelu_new")
    tie = c.flag("tie_word_embeddings", True)
    if c.has("quantization_config"):
        c.warn(
            "quantization_config",
            "the weights are quantized; symcost counts the dense model: set their bytes with --weight-dtype",
        )
    out = _Lines()
    _header(
        out, data, source, "GPT2LMHeadModel", _name(data, source, "gpt2"), "gpt2",
        f"GPT2LMHeadModel from config.json: d_model {d}, {values['n_layer']} layers, {n_head} heads, "
        f"vocab {values['vocab']}",
        "Pre-norm decoder: token and learned position embeddings, n_layer blocks of LayerNorm, causal "
        "self-attention (one fused c_attn projection) and a GELU MLP with residual adds, a final LayerNorm "
        "and the vocabulary head.",
        ["transformers GPT2LMHeadModel (models/gpt2/modeling_gpt2.py)",
         "Radford et al. 2019, Language Models are Unsupervised Multitask Learners"],
        [_CACHE_NOTE, _CAUSAL_NOTE, "Position ids are [1, S] (ctx .. ctx + S - 1), broadcast over the batch, as "
         "transformers' cache_position.unsqueeze(0)."],
    )  # fmt: skip
    out.add("variables:")
    out.add('B: {default: 1, doc: "batch size"}', 2)
    out.add(f'S: {{default: {n_positions}, doc: "tokens processed in this pass; ctx + S <= n_positions"}}', 2)
    out.add('ctx: {default: 0, min: 0, doc: "tokens already in the KV cache"}', 2)
    for key, value in values.items():
        out.add(f"{key}: {value}", 2)
    out.add("head_dim: d_model/n_head", 2)
    out.add("inputs:")
    out.add("ids: [B, S]", 2)
    out.add("pos: [1, S]", 2)
    out.add("samples: B")
    out.add("tokens: B*S")
    out.add("phases:")
    out.add('prefill: {doc: "the prompt: S tokens, empty KV cache", set: {ctx: 0}}', 2)
    out.add(
        f'decode: {{doc: "one new token per sequence over ctx cached tokens", set: {{S: 1, ctx: {n_positions - 1}}}}}',
        2,
    )
    out.add("blocks:")
    out.add("block:", 2)
    out.add("layers:", 4)
    layer, ind = out.layer, 6
    layer(ind, op="layernorm", name="ln_1", normalized_shape="d_model")
    layer(ind, op="linear", name="attn.c_attn", out_features="3*d_model")
    layer(ind, op="split", name="attn.qkv", size="d_model", dim=2)
    for i, part in enumerate(("q", "k", "v")):
        layer(
            ind, op="view", name=f"attn.{part}_view", **{"in": f"attn.qkv.{i}"}, shape=["B", "S", "n_head", "head_dim"]
        )
        layer(ind, op="transpose", name=f"attn.{part}_heads", dim0=1, dim1=2)
        if part != "q":
            layer(ind, op="kv_cache", name=f"attn.{'keys' if part == 'k' else 'values'}", past="ctx")
    layer(ind, op="sdpa", name="attn.attention", **{"in": ["attn.q_heads", "attn.keys", "attn.values"]}, causal=True)
    layer(ind, op="transpose", name="attn.merge_heads", dim0=1, dim1=2)
    layer(ind, op="contiguous", name="attn.contiguous")
    layer(ind, op="reshape", name="attn.reshape", shape=["B", "S", "d_model"])
    layer(ind, op="linear", name="attn.c_proj", out_features="d_model")
    layer(ind, op="add", name="add_1", **{"in": ["attn.c_proj", "x"]})
    layer(ind, op="layernorm", name="ln_2", normalized_shape="d_model")
    layer(ind, op="linear", name="mlp.c_fc", out_features="d_ff")
    layer(ind, op=act, name="mlp.act")
    layer(ind, op="linear", name="mlp.c_proj", out_features="d_model")
    layer(ind, op="add", name="add_2", **{"in": ["mlp.c_proj", "add_1"]})
    out.add("layers:")
    layer(2, op="embedding", name="transformer.wte", **{"in": "ids"}, num_embeddings="vocab", embedding_dim="d_model")
    layer(
        2,
        op="embedding",
        name="transformer.wpe",
        **{"in": "pos"},
        num_embeddings="n_positions",
        embedding_dim="d_model",
    )
    layer(2, op="add", name="transformer.embed", **{"in": ["transformer.wte", "transformer.wpe"]})
    layer(2, block="block", name="transformer.h", repeat="n_layer")
    layer(2, op="layernorm", name="transformer.ln_f", normalized_shape="d_model")
    head: dict[str, Any] = {"op": "linear", "name": "lm_head", "out_features": "vocab", "bias": False}
    if tie:
        head["tied"] = "transformer.wte"
    layer(2, **head)
    return out.text()


def bert(c: Config, data: dict[str, Any], source: str) -> str:
    """BertModel (with its pooler): post-norm encoder, bidirectional attention, no cache."""
    d = c.size("hidden_size")
    n_head = c.size("num_attention_heads")
    if d % n_head:
        raise ConfigError(f"hidden_size {d} must be a multiple of num_attention_heads {n_head}", Location(source))
    max_positions = c.size("max_position_embeddings", 512)
    values = dict(
        vocab=c.size("vocab_size"),
        max_positions=max_positions,
        type_vocab=c.size("type_vocab_size", 2),
        d_model=d,
        n_layer=c.size("num_hidden_layers"),
        n_head=n_head,
        d_ff=c.size("intermediate_size"),
    )
    act = c.activation("hidden_act", default="gelu")
    kind = c.get("position_embedding_type", "absolute")
    if kind != "absolute":
        c.warn("position_embedding_type", f"{kind!r} position embeddings are not modeled: costed as absolute")
    if c.flag("is_decoder", False) or c.flag("add_cross_attention", False):
        c.warn("is_decoder", "BERT as a decoder is not modeled: costed as the encoder")
    if c.has("quantization_config"):
        c.warn(
            "quantization_config",
            "the weights are quantized; symcost counts the dense model: set their bytes with --weight-dtype",
        )
    out = _Lines()
    _header(
        out, data, source, "BertModel", _name(data, source, "bert"), "bert",
        f"BertModel from config.json: d_model {d}, {values['n_layer']} layers, {n_head} heads, vocab {values['vocab']}",
        "Post-norm encoder: word, token-type and position embeddings summed and normalized, n_layer layers of "
        "bidirectional self-attention and a GELU MLP, each followed by a residual add and a LayerNorm, then the "
        "pooler (a tanh linear layer on the first token).",
        ["transformers BertModel (models/bert/modeling_bert.py)", "Devlin et al. 2019, BERT"],
        ["The task head the config's architectures may name (masked LM, classifier) is not included: this is "
         "BertModel with its pooler.", "Position ids are [1, S] and token types [B, S], as BertEmbeddings "
         "slices and expands its buffers."],
    )  # fmt: skip
    out.add("variables:")
    out.add('B: {default: 1, doc: "batch size"}', 2)
    out.add(f'S: {{default: {max_positions}, doc: "sequence length (at most max_positions)"}}', 2)
    for key, value in values.items():
        out.add(f"{key}: {value}", 2)
    out.add("head_dim: d_model/n_head", 2)
    out.add("inputs:")
    out.add("ids: [B, S]", 2)
    out.add("token_type: [B, S]", 2)
    out.add("pos: [1, S]", 2)
    out.add("samples: B")
    out.add("tokens: B*S")
    out.add("blocks:")
    out.add("layer:", 2)
    out.add("layers:", 4)
    layer, ind = out.layer, 6
    for part, hf in (("q", "query"), ("k", "key"), ("v", "value")):
        layer(ind, op="linear", name=f"attention.self.{hf}", **{"in": "x"}, out_features="d_model")
        layer(ind, op="view", name=f"attention.self.{part}_view", shape=["B", "S", "n_head", "head_dim"])
        layer(ind, op="transpose", name=f"attention.self.{part}_heads", dim0=1, dim1=2)
    layer(ind, op="sdpa", name="attention.self.attention",
          **{"in": ["attention.self.q_heads", "attention.self.k_heads", "attention.self.v_heads"]})  # fmt: skip
    layer(ind, op="transpose", name="attention.self.merge_heads", dim0=1, dim1=2)
    layer(ind, op="contiguous", name="attention.self.contiguous")
    layer(ind, op="reshape", name="attention.self.reshape", shape=["B", "S", "d_model"])
    layer(ind, op="linear", name="attention.output.dense", out_features="d_model")
    layer(ind, op="add", name="attention.output.add", **{"in": ["attention.output.dense", "x"]})
    layer(ind, op="layernorm", name="attention.output.LayerNorm", normalized_shape="d_model")
    layer(ind, op="linear", name="intermediate.dense", out_features="d_ff")
    layer(ind, op=act, name="intermediate.intermediate_act_fn")
    layer(ind, op="linear", name="output.dense", out_features="d_model")
    layer(ind, op="add", name="output.add", **{"in": ["output.dense", "attention.output.LayerNorm"]})
    layer(ind, op="layernorm", name="output.LayerNorm", normalized_shape="d_model")
    out.add("layers:")
    layer(2, op="embedding", name="embeddings.word_embeddings", **{"in": "ids"}, num_embeddings="vocab",
          embedding_dim="d_model")  # fmt: skip
    layer(2, op="embedding", name="embeddings.token_type_embeddings", **{"in": "token_type"},
          num_embeddings="type_vocab", embedding_dim="d_model")  # fmt: skip
    layer(
        2,
        op="add",
        name="embeddings.add_1",
        **{"in": ["embeddings.word_embeddings", "embeddings.token_type_embeddings"]},
    )
    layer(2, op="embedding", name="embeddings.position_embeddings", **{"in": "pos"}, num_embeddings="max_positions",
          embedding_dim="d_model")  # fmt: skip
    layer(2, op="add", name="embeddings.add_2", **{"in": ["embeddings.add_1", "embeddings.position_embeddings"]})
    layer(2, op="layernorm", name="embeddings.LayerNorm", normalized_shape="d_model")
    layer(2, block="layer", name="encoder.layer", repeat="n_layer")
    layer(2, op="select", name="pooler.first_token", index=0)
    layer(2, op="linear", name="pooler.dense", out_features="d_model")
    layer(2, op="tanh", name="pooler.activation")
    out.add("outputs: [encoder.layer, pooler.activation]")
    return out.text()


# --- encoder-decoders: T5 and Whisper ------------------------------------------------------------

_ENCDEC_CACHE_NOTE = (
    "Two phases share one file. ctx = 0 (prefill, and any plain forward) runs the encoder over its S inputs and "
    "the decoder over T tokens; each decoder layer projects the encoder output to its cross-attention keys and "
    "values once and keeps them in the cache (kv_cache layers, past 0) beside its self-attention keys and values. "
    "ctx > 0 (decode) is a later decoder call: the encoder does not run and the cross-attention reads the kept "
    "keys and values (cached layers: no projection, no FLOPs), as transformers' EncoderDecoderCache does once "
    "is_updated is set; self-attention attends over ctx cached tokens and the T new ones. The layers chosen with "
    "'when' on ctx make a decode graph hold for ctx > 0 only."
)
_ENCDEC_PARAMS_NOTE = (
    "In a decode step the encoder and the cross-attention k and v projections do not run: their parameters are not "
    "in that step's params or bytes. The model's parameters are the prefill's count."
)


def _encdec_variables(out: _Lines, rows: list[tuple[str, Any, str, int | None]]) -> None:
    out.add("variables:")
    for var, default, doc, minimum in rows:
        out.add(
            f"{var}: {{default: {_scalar(default)}, "
            + (f"min: {minimum}, " if minimum is not None else "")
            + f"doc: {_text(doc)}}}",
            2,
        )


def _cross_kv(out: _Lines, ind: int, prefix: str, names: dict[str, str], heads: str, head_dim: str,
              memory_len: str, bias: dict[str, bool], step: bool) -> None:  # fmt: skip
    """The cross-attention keys and values: projected from the encoder output and appended to the cache
    (prefill), or read from the cache (decode step)."""
    for part in ("k", "v"):
        kept = f"{prefix}.{'keys' if part == 'k' else 'values'}"
        if step:
            out.layer(ind, op="cached", name=kept, shape=["B", heads, memory_len, head_dim])
            continue
        out.layer(ind, op="linear", name=f"{prefix}.{names[part]}", **{"in": "memory"},
                  out_features=f"{heads}*{head_dim}", bias=bias[part])  # fmt: skip
        out.layer(ind, op="view", name=f"{prefix}.{part}_view", shape=["B", -1, heads, head_dim])
        out.layer(ind, op="transpose", name=f"{prefix}.{part}_heads", dim0=1, dim1=2)
        out.layer(ind, op="kv_cache", name=kept, past=0)


# T5 -------------------------------------------------------------------------------------------------


def _t5_attention(out: _Lines, ind: int, prefix: str, x: str, bias_in: str, *, self_cache: bool,
                  cross: bool, step: bool) -> None:  # fmt: skip
    """T5Attention with eager scores: q k^T (no 1/sqrt(d) scaling: scaling 1.0), plus the position bias,
    softmax, times v; q, k, v and o without bias."""
    layer = out.layer
    layer(ind, op="linear", name=f"{prefix}.q", **{"in": x}, out_features="n_head*head_dim", bias=False)
    layer(ind, op="view", name=f"{prefix}.q_view", shape=["B", -1, "n_head", "head_dim"])
    layer(ind, op="transpose", name=f"{prefix}.q_heads", dim0=1, dim1=2)
    if cross:
        _cross_kv(out, ind, prefix, {"k": "k", "v": "v"}, "n_head", "head_dim", "S", {"k": False, "v": False}, step)
    else:
        for part in ("k", "v"):
            layer(ind, op="linear", name=f"{prefix}.{part}", **{"in": x}, out_features="n_head*head_dim", bias=False)
            layer(ind, op="view", name=f"{prefix}.{part}_view", shape=["B", -1, "n_head", "head_dim"])
            name = f"{prefix}.{part}_heads"
            layer(ind, op="transpose", name=name, dim0=1, dim1=2)
            if self_cache:
                layer(ind, op="kv_cache", name=f"{prefix}.{'keys' if part == 'k' else 'values'}", past="ctx")
    keys, values = (f"{prefix}.keys", f"{prefix}.values") if cross or self_cache else (
        f"{prefix}.k_heads", f"{prefix}.v_heads")  # fmt: skip
    layer(ind, op="transpose", name=f"{prefix}.keys_t", **{"in": keys}, dim0=2, dim1=3)
    layer(ind, op="bmm", name=f"{prefix}.scores", **{"in": [f"{prefix}.q_heads", f"{prefix}.keys_t"]})
    layer(ind, op="mul", name=f"{prefix}.scaling", scalar=1)
    layer(ind, op="add", name=f"{prefix}.position_bias", **{"in": [f"{prefix}.scaling", bias_in]})
    layer(ind, op="softmax", name=f"{prefix}.softmax")
    layer(ind, op="bmm", name=f"{prefix}.weighted", **{"in": [f"{prefix}.softmax", values]})
    layer(ind, op="transpose", name=f"{prefix}.merge_heads", dim0=1, dim1=2)
    layer(ind, op="contiguous", name=f"{prefix}.contiguous")
    layer(ind, op="reshape", name=f"{prefix}.reshape", shape=["B", -1, "n_head*head_dim"])
    layer(ind, op="linear", name=f"{prefix}.o", out_features="d_model", bias=False)


def _t5_ff(out: _Lines, ind: int, index: int, residual: str, act: str, gated: bool) -> None:
    layer, p = out.layer, f"layer.{index}"
    layer(ind, op="rmsnorm", name=f"{p}.layer_norm", **{"in": residual})
    if gated:
        layer(ind, op="linear", name=f"{p}.DenseReluDense.wi_0", out_features="d_ff", bias=False)
        layer(ind, op=act, name=f"{p}.DenseReluDense.act")
        layer(ind, op="linear", name=f"{p}.DenseReluDense.wi_1", **{"in": f"{p}.layer_norm"}, out_features="d_ff",
              bias=False)  # fmt: skip
        layer(ind, op="mul", name=f"{p}.DenseReluDense.mul", **{"in": [f"{p}.DenseReluDense.act",
                                                                       f"{p}.DenseReluDense.wi_1"]})  # fmt: skip
    else:
        layer(ind, op="linear", name=f"{p}.DenseReluDense.wi", out_features="d_ff", bias=False)
        layer(ind, op=act, name=f"{p}.DenseReluDense.act")
    layer(ind, op="linear", name=f"{p}.DenseReluDense.wo", out_features="d_model", bias=False)
    layer(ind, op="add", name=f"{p}.add", **{"in": [f"{p}.DenseReluDense.wo", residual]})


def _t5_block(out: _Lines, name: str, doc: str, *, decoder: bool, step: bool, act: str, gated: bool) -> None:
    out.add(f"{name}:", 2)
    out.add(f"doc: {_text(doc)}", 4)
    inputs = ["x", "self_bias", "cross_bias"] if decoder else ["x", "self_bias"]
    if decoder and not step:
        inputs.insert(1, "memory")
    out.add(f"inputs: {_scalar(inputs)}", 4)
    out.add("layers:", 4)
    ind = 6
    out.layer(ind, op="rmsnorm", name="layer.0.layer_norm", **{"in": "x"})
    _t5_attention(out, ind, "layer.0.SelfAttention", "layer.0.layer_norm", "self_bias", self_cache=decoder,
                  cross=False, step=step)  # fmt: skip
    out.layer(ind, op="add", name="layer.0.add", **{"in": ["layer.0.SelfAttention.o", "x"]})
    residual = "layer.0.add"
    if decoder:
        out.layer(ind, op="rmsnorm", name="layer.1.layer_norm", **{"in": "layer.0.add"})
        _t5_attention(out, ind, "layer.1.EncDecAttention", "layer.1.layer_norm", "cross_bias", self_cache=False,
                      cross=True, step=step)  # fmt: skip
        out.layer(ind, op="add", name="layer.1.add", **{"in": ["layer.1.EncDecAttention.o", "layer.0.add"]})
        residual = "layer.1.add"
    _t5_ff(out, ind, 2 if decoder else 1, residual, act, gated)


def t5(c: Config, data: dict[str, Any], source: str) -> str:
    """T5ForConditionalGeneration (T5, T5 v1.1, FLAN-T5): RMS-style T5LayerNorm, relative position bias
    tables in the first layer of each stack, no bias anywhere, ReLU or gated-GELU feed-forward, and the
    vocabulary head tied to the shared embedding (transformers 5 ties it whatever the config says)."""
    d = c.size("d_model", 512, "hidden_size")
    n_head = c.size("num_heads", 8, "num_attention_heads")
    n_layer = c.size("num_layers", 6, "num_hidden_layers")
    values = dict(
        vocab=c.size("vocab_size", 32128),
        d_model=d,
        n_layer=n_layer,
        n_dec_layer=c.size("num_decoder_layers", n_layer),
        n_head=n_head,
        head_dim=c.size("d_kv", 64, "head_dim"),
        d_ff=c.size("d_ff", 2048),
        buckets=c.size("relative_attention_num_buckets", 32),
    )
    proj = c.get("feed_forward_proj", "relu")
    parts = str(proj).split("-")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
        raise ConfigError(f"'feed_forward_proj' must be 'ACT' or 'gated-ACT', got {proj!r}", Location(source))
    gated = parts[0] == "gated"
    act_name = "gelu_new" if proj == "gated-gelu" else parts[-1]  # T5Config: gated-gelu is the tanh GELU
    if act_name not in ACTIVATIONS:
        raise ConfigError(f"'feed_forward_proj': unknown activation {act_name!r}; symcost knows "
                          f"{', '.join(ACTIVATIONS)}", Location(source))  # fmt: skip
    act = ACTIVATIONS[act_name]
    scaled = data.get("tie_word_embeddings") is not False  # T5Config.scale_decoder_outputs
    if c.has("quantization_config"):
        c.warn(
            "quantization_config",
            "the weights are quantized; symcost counts the dense model: set their bytes with --weight-dtype",
        )
    out = _Lines()
    notes = [
        _ENCDEC_CACHE_NOTE,
        _ENCDEC_PARAMS_NOTE,
        "Relative position bias: the first layer of each stack owns a [buckets, n_head] table "
        "(relative_attention_bias); its [1, n_head, T, ctx + T] output (decoder) or [1, n_head, S, S] (encoder) is "
        "added to the scores of every layer of the stack. Cross-attention adds a zero bias built by the decoder's "
        "first layer (torch.zeros). Attention scores are not scaled by 1/sqrt(head_dim) (T5's scaling 1.0).",
        "The vocabulary head is tied to 'shared' (transformers 5's T5Config sets tie_word_embeddings true for every "
        "config); the decoder output is multiplied by d_model**-0.5 before it unless the config says "
        "tie_word_embeddings false (T5 v1.1, FLAN-T5), as T5Config.scale_decoder_outputs.",
        "Attention and padding masks are added to the scores without being counted (FlopCounterMode counts 0).",
    ]
    _header(
        out, data, source, "T5ForConditionalGeneration", _name(data, source, "t5"), "t5",
        f"T5ForConditionalGeneration from config.json: d_model {d}, {n_layer}+{values['n_dec_layer']} layers, "
        f"{n_head} heads of {values['head_dim']}, d_ff {values['d_ff']} ({proj}), vocab {values['vocab']}",
        "Encoder-decoder: a shared token embedding; n_layer encoder layers of self-attention and a feed-forward "
        "block; n_dec_layer decoder layers of causal self-attention with a KV cache, cross-attention over the "
        "encoder output and a feed-forward block; every sub-block pre-normed with T5LayerNorm and added back; "
        "the tied vocabulary head.",
        ["transformers T5ForConditionalGeneration (models/t5/modeling_t5.py): T5Stack, T5Block, T5Attention, "
         "T5LayerFF", "Raffel et al. 2020, Exploring the Limits of Transfer Learning with a Unified Text-to-Text "
         "Transformer (T5), section 2.1"],
        notes,
    )  # fmt: skip
    _encdec_variables(out, [
        ("B", 1, "batch size", None),
        ("S", 512, "encoder tokens (input_ids)", None),
        ("T", 512, "decoder tokens in this pass (decoder_input_ids; 1 in decode)", None),
        ("ctx", 0, "decoder tokens already in the KV cache (0: the encoder runs)", 0),
        ("vocab", values["vocab"], "vocabulary size (vocab_size)", None),
        ("d_model", d, "hidden size (d_model)", None),
        ("n_layer", n_layer, "encoder layers (num_layers)", None),
        ("n_dec_layer", values["n_dec_layer"], "decoder layers (num_decoder_layers)", None),
        ("n_head", n_head, "attention heads (num_heads)", None),
        ("head_dim", values["head_dim"], "width of each head (d_kv)", None),
        ("d_ff", values["d_ff"], "feed-forward size (d_ff)", None),
        ("buckets", values["buckets"], "relative position buckets (relative_attention_num_buckets)", None),
    ])  # fmt: skip
    out.add("inputs:")
    out.add("ids: [B, S]", 2)
    out.add("decoder_ids: [B, T]", 2)
    out.add("samples: B")
    out.add("tokens: B*T")
    out.add("phases:")
    out.add('prefill: {doc: "the encoder over S tokens and the decoder over T, empty caches", set: {ctx: 0}}', 2)
    out.add('decode: {doc: "one decoder token per sequence over ctx cached ones and the cached encoder keys and '
            'values", set: {T: 1, ctx: 511}}', 2)  # fmt: skip
    out.add("blocks:")
    _t5_block(out, "encoder_layer", "T5Block of the encoder: self-attention, feed-forward", decoder=False,
              step=False, act=act, gated=gated)  # fmt: skip
    _t5_block(out, "decoder_layer", "T5Block of the decoder at ctx = 0: causal self-attention, cross-attention "
              "projecting the encoder output, feed-forward", decoder=True, step=False, act=act, gated=gated)  # fmt: skip
    _t5_block(out, "decoder_step", "T5Block of the decoder at ctx > 0: cross-attention reads the cached keys and "
              "values", decoder=True, step=True, act=act, gated=gated)  # fmt: skip
    out.add("layers:")
    layer, enc = out.layer, "ctx == 0"
    layer(2, op="parameter", name="shared", shape=["vocab", "d_model"])
    layer(2, op="embedding", name="encoder.embed_tokens", **{"in": "ids"}, num_embeddings="vocab",
          embedding_dim="d_model", tied="shared", when=enc)  # fmt: skip
    layer(2, op="constant", name="encoder.relative_position", shape=["S", "S"], when=enc)
    table = "block.0.layer.0.SelfAttention.relative_attention_bias"
    layer(2, op="relative_position_bias", name=f"encoder.{table}", **{"in": "encoder.relative_position"},
          buckets="buckets", heads="n_head", when=enc)  # fmt: skip
    layer(2, block="encoder_layer", name="encoder.block", **{"in": ["encoder.embed_tokens", f"encoder.{table}"]},
          repeat="n_layer", when=enc)  # fmt: skip
    layer(2, op="rmsnorm", name="encoder.final_layer_norm", when=enc)
    layer(2, op="embedding", name="decoder.embed_tokens", **{"in": "decoder_ids"}, num_embeddings="vocab",
          embedding_dim="d_model", tied="shared")  # fmt: skip
    layer(2, op="constant", name="decoder.relative_position", shape=["T", "ctx + T"])
    layer(2, op="relative_position_bias", name=f"decoder.{table}", **{"in": "decoder.relative_position"},
          buckets="buckets", heads="n_head")  # fmt: skip
    layer(2, op="constant", name="decoder.block.0.layer.1.EncDecAttention.position_bias", shape=[1, "n_head", "T", "S"])
    biases = [f"decoder.{table}", "decoder.block.0.layer.1.EncDecAttention.position_bias"]
    layer(2, block="decoder_layer", name="decoder.block", **{"in": ["decoder.embed_tokens", "encoder.final_layer_norm",
          *biases]}, repeat="n_dec_layer", when=enc)  # fmt: skip
    layer(2, block="decoder_step", name="decoder.block", **{"in": ["decoder.embed_tokens", *biases]},
          repeat="n_dec_layer", when="ctx > 0")  # fmt: skip
    layer(2, op="rmsnorm", name="decoder.final_layer_norm")
    if scaled:
        layer(2, op="mul", name="decoder.scale_decoder_outputs", scalar=d**-0.5)
    layer(2, op="linear", name="lm_head", out_features="vocab", bias=False, tied="shared")
    out.add("outputs: [lm_head]")
    return out.text()


# Whisper ----------------------------------------------------------------------------------------


def _whisper_attention(out: _Lines, ind: int, prefix: str, x: str, heads: str, head_dim: str, scale: float, *,
                       causal: bool, self_cache: bool, cross: bool, step: bool) -> None:  # fmt: skip
    """WhisperAttention: q_proj scaled by head_dim**-0.5, k_proj unbiased, v_proj and out_proj biased;
    q k^T, softmax, times v (the eager matmuls FlopCounterMode counts as sdpa does)."""
    layer = out.layer
    width = f"{heads}*{head_dim}"
    layer(ind, op="linear", name=f"{prefix}.q_proj", **{"in": x}, out_features=width)
    layer(ind, op="mul", name=f"{prefix}.scaling", scalar=scale)
    layer(ind, op="view", name=f"{prefix}.q_view", shape=["B", -1, heads, head_dim])
    layer(ind, op="transpose", name=f"{prefix}.q_heads", dim0=1, dim1=2)
    layer(ind, op="contiguous", name=f"{prefix}.q_contiguous")
    if cross:
        _cross_kv(out, ind, prefix, {"k": "k_proj", "v": "v_proj"}, heads, head_dim, "(S - 1)//2 + 1",
                  {"k": False, "v": True}, step)  # fmt: skip
        keys, values = f"{prefix}.keys", f"{prefix}.values"
    else:
        for part in ("k", "v"):
            layer(ind, op="linear", name=f"{prefix}.{part}_proj", **{"in": x}, out_features=width, bias=part == "v")
            layer(ind, op="view", name=f"{prefix}.{part}_view", shape=["B", -1, heads, head_dim])
            layer(ind, op="transpose", name=f"{prefix}.{part}_heads", dim0=1, dim1=2)
            layer(ind, op="contiguous", name=f"{prefix}.{part}_contiguous")
            if self_cache:
                layer(ind, op="kv_cache", name=f"{prefix}.{'keys' if part == 'k' else 'values'}", past="ctx")
        keys, values = (f"{prefix}.keys", f"{prefix}.values") if self_cache else (
            f"{prefix}.k_contiguous", f"{prefix}.v_contiguous")  # fmt: skip
    layer(ind, op="sdpa", name=f"{prefix}.attention", **{"in": [f"{prefix}.q_contiguous", keys, values]},
          causal=causal)  # fmt: skip
    layer(ind, op="transpose", name=f"{prefix}.merge_heads", dim0=1, dim1=2)
    layer(ind, op="contiguous", name=f"{prefix}.contiguous")
    layer(ind, op="reshape", name=f"{prefix}.reshape", shape=["B", -1, width])
    layer(ind, op="linear", name=f"{prefix}.out_proj", out_features="d_model")


def _whisper_block(out: _Lines, name: str, doc: str, *, decoder: bool, step: bool, act: str, scale: float) -> None:
    out.add(f"{name}:", 2)
    out.add(f"doc: {_text(doc)}", 4)
    out.add(f"inputs: {_scalar(['x', 'memory'] if decoder and not step else ['x'])}", 4)
    out.add("layers:", 4)
    ind, layer = 6, out.layer
    heads, head_dim, ff = ("n_dec_head", "dec_head_dim", "d_dec_ff") if decoder else ("n_head", "head_dim", "d_ff")
    layer(ind, op="layernorm", name="self_attn_layer_norm", **{"in": "x"}, normalized_shape="d_model")
    _whisper_attention(out, ind, "self_attn", "self_attn_layer_norm", heads, head_dim, scale, causal=decoder,
                       self_cache=decoder, cross=False, step=step)  # fmt: skip
    layer(ind, op="add", name="add_1", **{"in": ["self_attn.out_proj", "x"]})
    residual = "add_1"
    if decoder:
        layer(ind, op="layernorm", name="encoder_attn_layer_norm", normalized_shape="d_model")
        _whisper_attention(out, ind, "encoder_attn", "encoder_attn_layer_norm", heads, head_dim, scale, causal=False,
                           self_cache=False, cross=True, step=step)  # fmt: skip
        layer(ind, op="add", name="add_2", **{"in": ["encoder_attn.out_proj", "add_1"]})
        residual = "add_2"
    layer(ind, op="layernorm", name="final_layer_norm", **{"in": residual}, normalized_shape="d_model")
    layer(ind, op="linear", name="fc1", out_features=ff)
    layer(ind, op=act, name="activation_fn")
    layer(ind, op="linear", name="fc2", out_features="d_model")
    layer(ind, op="add", name="add_ff", **{"in": ["fc2", residual]})


def whisper(c: Config, data: dict[str, Any], source: str) -> str:
    """WhisperForConditionalGeneration: a two-conv front end over the log-mel frames (the second halves
    them), learned positions, pre-norm encoder and decoder layers with unbiased k_proj, cross-attention
    over the encoder output, and proj_out tied to the decoder's token embedding."""
    d = c.size("d_model", 384, "hidden_size")
    n_head = c.size("encoder_attention_heads", 6)
    n_dec_head = c.size("decoder_attention_heads", 6)
    for key, heads in (("encoder_attention_heads", n_head), ("decoder_attention_heads", n_dec_head)):
        if d % heads:
            raise ConfigError(f"d_model {d} must be a multiple of {key} {heads}", Location(source))
    n_audio = c.size("max_source_positions", 1500)
    n_text = c.size("max_target_positions", 448)
    values = dict(
        n_mels=c.size("num_mel_bins", 80),
        vocab=c.size("vocab_size", 51865),
        d_model=d,
        n_layer=c.size("encoder_layers", 4),
        n_dec_layer=c.size("decoder_layers", 4),
        n_head=n_head,
        n_dec_head=n_dec_head,
        d_ff=c.size("encoder_ffn_dim", 1536),
        d_dec_ff=c.size("decoder_ffn_dim", 1536),
        n_audio_ctx=n_audio,
        n_text_ctx=n_text,
    )
    act = c.activation("activation_function", default="gelu")
    tie = c.flag("tie_word_embeddings", True)
    if c.has("quantization_config"):
        c.warn(
            "quantization_config",
            "the weights are quantized; symcost counts the dense model: set their bytes with --weight-dtype",
        )
    notes = [
        _ENCDEC_CACHE_NOTE,
        _ENCDEC_PARAMS_NOTE,
        "S is the number of log-mel frames: transformers' WhisperEncoder requires S = 2*max_source_positions "
        "(3000 frames, 30 s of audio): conv2 (stride 2) halves them to the n_audio_ctx positions that the learned "
        "position table (embed_positions, all of it) is added to. Other S are refused at that add, as "
        "transformers refuses them.",
        "The decoder's positions are embed_positions rows ctx .. ctx + T - 1 ([B, T] position ids built in the "
        "forward). scale_embedding is not applied by transformers' WhisperDecoder.forward and not here.",
        "Queries are multiplied by head_dim**-0.5 before the scores (WhisperAttention) and the eager attention "
        "then scales by 1.0: sdpa's per-score multiply stands for that one.",
    ]
    out = _Lines()
    _header(
        out, data, source, "WhisperForConditionalGeneration", _name(data, source, "whisper"), "whisper",
        f"WhisperForConditionalGeneration from config.json: d_model {d}, {values['n_layer']}+{values['n_dec_layer']} "
        f"layers, {n_head}/{n_dec_head} heads, {values['n_mels']} mel bins, vocab {values['vocab']}",
        "Encoder-decoder speech model: two GELU conv1d layers over the log-mel spectrogram (the second with stride "
        "2), learned positions, n_layer pre-norm encoder layers (self-attention, GELU MLP); a decoder of token and "
        "position embeddings, n_dec_layer layers of causal self-attention with a KV cache, cross-attention over the "
        "encoder output and a GELU MLP; the vocabulary head (proj_out).",
        ["transformers WhisperForConditionalGeneration (models/whisper/modeling_whisper.py): WhisperEncoder, "
         "WhisperDecoder, WhisperAttention", "Radford et al. 2022, Robust Speech Recognition via Large-Scale Weak "
         "Supervision (Whisper), section 2.2 and Table 1"],
        notes,
    )  # fmt: skip
    _encdec_variables(out, [
        ("B", 1, "batch size", None),
        ("S", 2 * n_audio, "log-mel frames (input_features' last dim; 2*max_source_positions)", None),
        ("T", n_text, "decoder tokens in this pass (decoder_input_ids; 1 in decode)", None),
        ("ctx", 0, f"decoder tokens already in the KV cache (0: the encoder runs; ctx + T <= {n_text})", 0),
        ("n_mels", values["n_mels"], "mel bins (num_mel_bins)", None),
        ("vocab", values["vocab"], "vocabulary size (vocab_size)", None),
        ("d_model", d, "hidden size (d_model)", None),
        ("n_layer", values["n_layer"], "encoder layers (encoder_layers)", None),
        ("n_dec_layer", values["n_dec_layer"], "decoder layers (decoder_layers)", None),
        ("n_head", n_head, "encoder attention heads (encoder_attention_heads)", None),
        ("n_dec_head", n_dec_head, "decoder attention heads (decoder_attention_heads)", None),
        ("head_dim", "d_model/n_head", "width of each encoder head", None),
        ("dec_head_dim", "d_model/n_dec_head", "width of each decoder head", None),
        ("d_ff", values["d_ff"], "encoder MLP size (encoder_ffn_dim)", None),
        ("d_dec_ff", values["d_dec_ff"], "decoder MLP size (decoder_ffn_dim)", None),
        ("n_audio_ctx", n_audio, "encoder positions (max_source_positions)", None),
        ("n_text_ctx", n_text, "decoder positions (max_target_positions)", None),
    ])  # fmt: skip
    out.add("inputs:")
    out.add("input_features: [B, n_mels, S]", 2)
    out.add("decoder_ids: [B, T]", 2)
    out.add("samples: B")
    out.add("tokens: B*T")
    out.add("phases:")
    out.add('prefill: {doc: "the encoder over S mel frames and the decoder over T tokens, empty caches", '
            'set: {ctx: 0}}', 2)  # fmt: skip
    out.add('decode: {doc: "one decoder token per sequence over ctx cached ones and the cached encoder keys and '
            f'values", set: {{T: 1, ctx: {n_text - 1}}}}}', 2)  # fmt: skip
    out.add("blocks:")
    _whisper_block(out, "encoder_layer", "WhisperEncoderLayer: self-attention, MLP", decoder=False, step=False,
                   act=act, scale=(d // n_head) ** -0.5)  # fmt: skip
    _whisper_block(out, "decoder_layer", "WhisperDecoderLayer at ctx = 0: causal self-attention, cross-attention "
                   "projecting the encoder output, MLP", decoder=True, step=False, act=act,
                   scale=(d // n_dec_head) ** -0.5)  # fmt: skip
    _whisper_block(out, "decoder_step", "WhisperDecoderLayer at ctx > 0: cross-attention reads the cached keys and "
                   "values", decoder=True, step=True, act=act,
                   scale=(d // n_dec_head) ** -0.5)  # fmt: skip
    out.add("layers:")
    layer, enc, e = out.layer, "ctx == 0", "model.encoder"
    layer(2, op="conv1d", name=f"{e}.conv1", **{"in": "input_features"}, C_out="d_model", kernel=3, padding=1,
          when=enc)  # fmt: skip
    layer(2, op="gelu", name=f"{e}.gelu_1", when=enc)
    layer(2, op="conv1d", name=f"{e}.conv2", C_out="d_model", kernel=3, stride=2, padding=1, when=enc)
    layer(2, op="gelu", name=f"{e}.gelu_2", when=enc)
    layer(2, op="permute", name=f"{e}.permute", dims=[0, 2, 1], when=enc)
    layer(2, op="constant", name=f"{e}.all_positions", shape=["n_audio_ctx"], when=enc)
    layer(2, op="embedding", name=f"{e}.embed_positions", **{"in": f"{e}.all_positions"},
          num_embeddings="n_audio_ctx", embedding_dim="d_model", when=enc)  # fmt: skip
    layer(2, op="add", name=f"{e}.add", **{"in": [f"{e}.permute", f"{e}.embed_positions"]}, when=enc)
    layer(2, block="encoder_layer", name=f"{e}.layers", repeat="n_layer", when=enc)
    layer(2, op="layernorm", name=f"{e}.layer_norm", normalized_shape="d_model", when=enc)
    dec = "model.decoder"
    layer(2, op="embedding", name=f"{dec}.embed_tokens", **{"in": "decoder_ids"}, num_embeddings="vocab",
          embedding_dim="d_model")  # fmt: skip
    layer(2, op="constant", name=f"{dec}.position_ids", shape=["B", "T"])
    layer(2, op="embedding", name=f"{dec}.embed_positions", **{"in": f"{dec}.position_ids"},
          num_embeddings="n_text_ctx", embedding_dim="d_model")  # fmt: skip
    layer(2, op="add", name=f"{dec}.add", **{"in": [f"{dec}.embed_tokens", f"{dec}.embed_positions"]})
    layer(2, block="decoder_layer", name=f"{dec}.layers", **{"in": [f"{dec}.add", f"{e}.layer_norm"]},
          repeat="n_dec_layer", when=enc)  # fmt: skip
    layer(2, block="decoder_step", name=f"{dec}.layers", **{"in": f"{dec}.add"}, repeat="n_dec_layer",
          when="ctx > 0")  # fmt: skip
    layer(2, op="layernorm", name=f"{dec}.layer_norm", normalized_shape="d_model")
    head: dict[str, Any] = {"op": "linear", "name": "proj_out", "out_features": "vocab", "bias": False}
    if tie:
        head["tied"] = f"{dec}.embed_tokens"
    layer(2, **head)
    out.add("outputs: [proj_out]")
    return out.text()


# --- the importers -------------------------------------------------------------------------------

#: model_type -> importer: a function of the config to a Decoder, or (for the others) to YAML text.
DECODERS: dict[str, Callable[[Config], Decoder]] = {
    "llama": llama,
    "mistral": mistral,
    "qwen2": qwen2,
    "qwen3": qwen3,
    "gemma": gemma,
    "gemma2": gemma2,
    "gemma3_text": gemma3_text,
    "phi3": phi3,
    **{"mixtral": mixtral, "qwen2_moe": qwen2_moe, "qwen3_moe": qwen3_moe, "olmoe": olmoe},
    **{"deepseek_v2": deepseek_v2, "deepseek_v3": deepseek_v3},
}
OTHERS: dict[str, Callable[[Config, dict[str, Any], str], str]] = {"gpt2": gpt2, "bert": bert}
OTHERS |= {"t5": t5, "whisper": whisper}  # encoder-decoders
SUPPORTED = tuple(sorted([*DECODERS, *OTHERS]))


#: The transformers class each model_type is written as.
CLASSES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
    "phi3": "Phi3ForCausalLM",
    **{"mixtral": "MixtralForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM"},
    **{"olmoe": "OlmoeForCausalLM", "deepseek_v2": "DeepseekV2ForCausalLM", "deepseek_v3": "DeepseekV3ForCausalLM"},
    "gpt2": "GPT2LMHeadModel",
    "bert": "BertModel",
    "t5": "T5ForConditionalGeneration",
    "whisper": "WhisperForConditionalGeneration",
}


def _check_architectures(c: Config) -> None:
    """A config whose ``architectures`` names another head (a classifier, a masked-LM head) is costed
    as the class symcost writes: say so."""
    named = c.get("architectures")
    ours = CLASSES.get(c.model_type)
    if not isinstance(named, list) or not named or ours is None or ours in named:
        return
    c.warn("architectures", f"names {', '.join(map(str, named))}; symcost writes {ours} (its head differs)")


def to_yaml(data: dict[str, Any], source: str = "config.json") -> str:
    """The architecture YAML of a parsed config.json (``source`` names it in messages)."""
    loc = Location(source)
    if not isinstance(data, dict):
        raise ConfigError("a config.json holds a JSON object", loc)
    model_type = data.get("model_type")
    if model_type is None:
        raise ConfigError(f"the config has no 'model_type'; symcost imports {', '.join(SUPPORTED)}", loc)
    if model_type in PENDING:
        raise ConfigError(
            f"model_type '{model_type}' (mixture of experts or latent attention) is not yet supported; "
            f"symcost imports {', '.join(SUPPORTED)}",
            loc,
        )
    config = Config(data, source)
    _check_architectures(config)
    if model_type in DECODERS:
        return decoder_yaml(DECODERS[model_type](config), data, source)
    if model_type in OTHERS:
        return OTHERS[model_type](config, data, source)
    raise ConfigError(
        f"unknown model_type {model_type!r}{did_you_mean(str(model_type), SUPPORTED)}; "
        f"symcost imports {', '.join(SUPPORTED)}",
        loc,
    )
