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
caches (Mistral, Gemma 2/3, Phi-3) are exact.

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
PENDING = ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3")

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
            "and bytes follow --dtype, not the quantization",
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
    uniform = len(set(m.windows)) == 1
    window = max(m.windows)
    notes = [_CACHE_NOTE, _ROPE_NOTE, _CAUSAL_NOTE, *m.notes]
    if not uniform:
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
        f"{m.model_class} from config.json: d_model {m.d_model}, {m.n_layer} layers, {m.n_head} heads "
        f"({m.n_kv_head} KV) of {m.head_dim}, d_ff {m.d_ff}, vocab {m.vocab}; lm_head {params_note}",
        "Pre-norm decoder as transformers builds it from the config: token embedding, n_layer layers of "
        "RMSNorm, causal self-attention with a KV cache and a gated MLP, each with a residual add, a final "
        "RMSNorm and the vocabulary head.",
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
    variables += [
        ("n_head", m.n_head, "attention (query) heads (num_attention_heads)", None),
        ("n_kv_head", m.n_kv_head, "key/value heads (num_key_value_heads)", None),
        ("head_dim", m.head_dim, "width of each head (head_dim)", None),
        ("d_ff", m.d_ff, "MLP intermediate size (intermediate_size)", None),
    ]
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
    out.add("layer:", 2)
    out.add(f"doc: {_text('one decoder layer, transformers module names; window 0 is full attention')}", 4)
    out.add("args: {window: 0}", 4)
    out.add("layers:", 4)
    _decoder_layer(out, m, 6)
    out.add("layers:")
    out.layer(2, op="embedding", name="model.embed_tokens", **{"in": "ids"}, num_embeddings="vocab",
              embedding_dim="d_model")  # fmt: skip
    if m.embed_scale is not None:
        out.layer(2, op="mul", name="model.embed_tokens.embed_scale", scalar=m.embed_scale)
    if uniform:
        out.layer(2, block="layer", name="model.layers", repeat="n_layer", window="window" if window else 0)
    else:
        start = 0
        for index in range(1, m.n_layer + 1):
            if index == m.n_layer or m.windows[index] != m.windows[start]:
                out.layer(2, block="layer", name="model.layers", repeat=index - start, index_from=start,
                          window="window" if m.windows[start] else 0)  # fmt: skip
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


def _decoder_layer(out: _Lines, m: Decoder, ind: int) -> None:
    """One decoder layer's layers, named as transformers names its modules."""
    layer = out.layer
    layer(ind, op="rmsnorm", name="input_layernorm")
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
    if m.sandwich:
        layer(ind, op="rmsnorm", name="post_attention_layernorm")
        layer(ind, op="add", name="add_1", **{"in": ["post_attention_layernorm", "x"]})
        layer(ind, op="rmsnorm", name="pre_feedforward_layernorm")
        mlp_in = "pre_feedforward_layernorm"
    else:
        layer(ind, op="add", name="add_1", **{"in": ["self_attn.o_proj", "x"]})
        layer(ind, op="rmsnorm", name="post_attention_layernorm")
        mlp_in = "post_attention_layernorm"
    if m.fused:
        layer(ind, op="linear", name="mlp.gate_up_proj", out_features="2*d_ff", bias=m.mlp_bias)
        layer(ind, op="chunk", name="mlp.gate_up", chunks=2, dim=-1)
        layer(ind, op=m.act, name="mlp.activation_fn", **{"in": "mlp.gate_up.0"})
        layer(ind, op="mul", name="mlp.mul", **{"in": ["mlp.gate_up.1", "mlp.activation_fn"]})
    else:
        layer(ind, op="linear", name="mlp.gate_proj", out_features="d_ff", bias=m.mlp_bias)
        layer(ind, op=m.act, name="mlp.act_fn")
        layer(ind, op="linear", name="mlp.up_proj", **{"in": mlp_in}, out_features="d_ff", bias=m.mlp_bias)
        layer(ind, op="mul", name="mlp.mul", **{"in": ["mlp.act_fn", "mlp.up_proj"]})
    layer(ind, op="linear", name="mlp.down_proj", out_features="d_model", bias=m.mlp_bias)
    if m.sandwich:
        layer(ind, op="rmsnorm", name="post_feedforward_layernorm")
        layer(ind, op="add", name="add_2", **{"in": ["post_feedforward_layernorm", "add_1"]})
    else:
        layer(ind, op="add", name="add_2", **{"in": ["mlp.down_proj", "add_1"]})


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
        c.warn("quantization_config", "the weights are quantized; symcost counts the dense model")
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
        c.warn("quantization_config", "the weights are quantized; symcost counts the dense model")
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
}
OTHERS: dict[str, Callable[[Config, dict[str, Any], str], str]] = {"gpt2": gpt2, "bert": bert}
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
    "gpt2": "GPT2LMHeadModel",
    "bert": "BertModel",
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
