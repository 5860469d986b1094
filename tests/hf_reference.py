"""What the Hugging Face import tests share: the transformers model built from a config, and its counts.

:func:`build` makes the model transformers builds from a config.json's fields, on the meta device (no weights,
nothing downloaded) with ``attn_implementation="eager"`` (explicit matmuls for q k^T and attn v, which
FlopCounterMode counts as symcost's sdpa does); :func:`forward` and :func:`decode_step` count its FLOPs, the
second over the model's own KV cache; :func:`check_module_names` compares symcost's layers with the modules
that hold their parameters and FLOPs. A small Llama, for one:

    >>> model = build(dict(model_type="llama", vocab_size=101, hidden_size=64, intermediate_size=96,
    ...                    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2))
    >>> type(model).__name__, next(model.parameters()).device.type
    ('LlamaForCausalLM', 'meta')
    >>> forward(model, input_ids=ids(1, 5))[0]  # 2 * (2 layers * (5 * 30,720 + 3,200) + 5 * 6,464)
    691840

(per token and layer, q k v o 12,288 and the MLP 18,432 multiply-accumulates; attention 2 * 4 heads * 5 * 5 * 16;
the head 64 * 101).
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

transformers = pytest.importorskip("transformers")

META = torch.device("meta")


def build(
    config: dict[str, Any], cls: str | None = None, device: torch.device = META, experts: str | None = None
) -> torch.nn.Module:
    """transformers' model of ``config``: the class named ``cls``, else ``AutoModelForCausalLM``'s choice; on CPU
    with seeded random weights; ``experts`` is a mixture of experts' ``experts_implementation``."""
    cfg = transformers.AutoConfig.for_model(**copy.deepcopy(config))  # it rewrites rope_scaling in place
    cfg._attn_implementation = "eager"
    if experts is not None:
        cfg._experts_implementation = experts
    with warnings.catch_warnings(), torch.device(device):
        warnings.simplefilter("ignore")
        if device.type == "cpu":
            torch.manual_seed(0)
        if cls is None:
            model = transformers.AutoModelForCausalLM.from_config(cfg)
        else:
            model = getattr(transformers, cls)(cfg)
    return model.eval()


def params(model: torch.nn.Module) -> int:
    """``sum(p.numel())``: tied weights once."""
    return sum(p.numel() for p in model.parameters())


def ids(b: int, s: int, device: torch.device = META) -> torch.Tensor:
    """B sequences of S token ids: zeros on meta, random ones (of a vocabulary of 101) elsewhere."""
    if device.type == "meta":
        return torch.zeros(b, s, dtype=torch.long, device=META)
    return torch.randint(0, 101, (b, s))


def forward(model: torch.nn.Module, **inputs: Any) -> tuple[int, Any]:
    """(FLOPs of ``model(**inputs)`` as FlopCounterMode counts them, the output)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(**inputs)
    return counter.get_total_flops(), out


def decode_step(model: torch.nn.Module, b: int, ctx: int, s: int, device: torch.device = META) -> tuple[int, int, int]:
    """(FLOPs of S new tokens over ctx cached ones, the cache's elements after the step, tokens seen), the cache
    the model's own (a prompt of ctx tokens run first with ``use_cache=True``; on meta, shapes without data)."""
    with torch.no_grad():
        past = model(input_ids=ids(b, ctx, device), use_cache=True).past_key_values
    assert past.get_seq_length() == ctx
    flops, out = forward(model, input_ids=ids(b, s, device), cache=past, use_cache=True)
    cache = out.past_key_values
    # MLA caches the latent as "keys" and the rotary key as "values": both counted
    elements = sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)
    return flops, elements, cache.get_seq_length()


def sdpa_elsewhere(node: Any) -> bool:
    """symcost's sdpa layer (``...attention``) has no module of its own: its eager matmuls count in self_attn."""
    return not node.path.endswith(".attention")


def check_module_names(
    model: torch.nn.Module, inputs: dict[str, Any], nodes: Iterable[Any], own_flops: Callable[[Any], bool]
) -> int:
    """Every layer of ``nodes`` with parameters or FLOPs is named as the transformers module that holds them, with
    the same parameters (unless tied to another layer) and, where ``own_flops(node)``, the same FLOPs when the
    model runs on ``inputs``; a repeated layer's copy stands for its first. Returns how many were checked."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**inputs)
    owner = type(model).__name__
    flops = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    named = dict(model.named_parameters())
    checked = 0
    for node in nodes:
        per_copy = {k: node.values[k] // node.count for k in ("params", "flops")}
        if not any(per_copy.values()):
            continue
        path = re.sub(r"\.(\d+)-\d+(?=\.|$)", r".\1", node.path, count=1)
        if node.tied_to is None:
            assert per_copy["params"] == sum(p.numel() for n, p in named.items() if n.startswith(f"{path}.")), path
        if per_copy["flops"] and own_flops(node):
            assert per_copy["flops"] == flops.get(f"{owner}.{path}", 0), path
        checked += 1
    return checked
