"""Counting conventions: every rule that turns a formula's raw counts into FLOPs lives here.

A formula states raw counts only: ``macs`` (multiply-accumulates of conv/matmul/attention) and
``elementwise`` operation counts by category (bias adds, normalization, activations, ...), each
formula documenting its per-element cost in its notes. A :class:`Convention` decides what the
word "FLOPs" means:

- :data:`TORCH` (the default) — ``flops = 2 * macs``; nothing elementwise is included. This is
  ``torch.utils.flop_counter.FlopCounterMode``'s rule, and DeepSpeed's, calflops' and the vendors'
  TFLOP/s figures' (a multiply-accumulate is two floating-point operations).
- ``TORCH.with_elementwise({"norm"})`` — the same, plus normalization ops. With an affine
  BatchNorm this adds 4 FLOPs per element (2 to normalize, 2 to scale and shift): thop's rule for
  BN, the one the blog posts quote.
- ``TORCH.with_elementwise(ELEMENTWISE_CATEGORIES)`` — every counted operation.

>>> import sympy
>>> m, b = sympy.symbols("m b")
>>> flops(m, {"bias": b})
2*m
>>> flops(m, {"bias": b}, TORCH.with_elementwise({"bias"}))
b + 2*m
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import sympy

from .errors import UsageError, did_you_mean

#: FLOPs per multiply-accumulate: a MAC is one multiply and one add (FlopCounterMode, vendors).
FLOPS_PER_MAC = 2

#: The closed set of elementwise categories a formula may count, with what each means.
ELEMENTWISE_CATEGORIES: dict[str, str] = {
    "bias": "bias adds: one add per output element",
    "norm": "normalization: subtract mean and scale by 1/std (2 per element), plus 2 more for an affine scale and shift",
    "activation": "activation functions: one operation per element, whatever the function (ptflops, DeepSpeed)",
    "pool": "pooling: one add or compare per window element, plus one divide per output for averages",
    "softmax": "softmax: exp, sum and divide, 3 per element",
    "add": "elementwise additions (residual adds): one per output element",
    "mul": "elementwise multiplications (gates, scaling): one per output element",
    "interpolate": "upsampling arithmetic: per output element, as each formula documents",
    "reduce": "reductions (sum, mean, amax, amin over dims): one add or compare per input element, plus one divide per output for a mean",
}

#: The raw cost keys a formula declares (``flops`` is derived here, not declared). ``buffers`` and
#: ``cache`` (elements of state kept between calls, such as a KV cache) default to 0.
COST_KEYS = ("macs", "params", "buffers", "read", "write", "cache")
OPTIONAL_COST_KEYS = ("buffers", "cache")

#: Training: the backward pass of a matmul-class op is two matmuls of the forward's size (the input
#: gradient and the weight gradient), so one step is 3x the forward FLOPs (Kaplan et al. 2020 section
#: 2.1, Chinchilla's C = 6ND = 3 x 2ND). The same factor is applied to each layer's memory traffic.
TRAINING_FACTOR = 3


#: The peer counters whose per-layer rules a formula may state under ``peers:``. A formula that
#: does not name a tool is counted by it as its ``macs`` (all three count conv and linear MACs).
PEER_TOOLS: dict[str, str] = {
    "thop": "thop 0.1.1 (pytorch-OpCounter) profile(): module hooks, its 'MACs'",
    "ptflops": "ptflops 0.7.5 get_model_complexity_info() with its defaults, its 'MACs'",
    "fvcore": "fvcore 0.1.5 FlopCountAnalysis(...).total(), its 'flops' (MACs of traced ops)",
}


@dataclass(frozen=True)
class Convention:
    """What "FLOPs" counts. Immutable; derive variants with :meth:`with_elementwise`.

    ``peer`` names a tool of :data:`PEER_TOOLS`: then a layer's FLOPs are that tool's count for it
    (its formula's ``peers:`` entry, or its ``macs``), and ``headline`` says what the tool calls it.
    """

    name: str
    doc: str
    flops_per_mac: int = FLOPS_PER_MAC
    elementwise_in_flops: frozenset[str] = field(default_factory=frozenset)
    peer: str | None = None
    headline: str = "FLOPs"

    def with_elementwise(self, categories: Iterable[str]) -> Convention:
        """This convention, with the given elementwise categories added into ``flops``."""
        chosen = frozenset(categories)
        if (self.peer or self.flops_per_mac != FLOPS_PER_MAC) and chosen:
            raise UsageError(
                f"convention '{self.name}' reproduces what {self.peer or self.name} prints; "
                "--count-elementwise applies to the torch convention only"
            )
        unknown = sorted(chosen - set(ELEMENTWISE_CATEGORIES))
        if unknown:
            raise UsageError(
                f"unknown elementwise category '{unknown[0]}'{did_you_mean(unknown[0], ELEMENTWISE_CATEGORIES)}; "
                f"known: {', '.join(ELEMENTWISE_CATEGORIES)}"
            )
        merged = self.elementwise_in_flops | chosen
        if merged == self.elementwise_in_flops:
            return self
        label = "+".join(sorted(merged)) if merged != set(ELEMENTWISE_CATEGORIES) else "all"
        base = self.name.split("+")[0]  # a variant of a variant is named from the base: torch+bias+norm
        return replace(self, name=f"{base}+{label}", elementwise_in_flops=merged)

    @property
    def description(self) -> str:
        """``doc``, and which elementwise categories this variant folds into FLOPs (the doc says
        what is reported apart, so a ``torch+norm`` convention must say that norms are not)."""
        if not self.elementwise_in_flops:
            return self.doc
        return f"{self.doc}; except {', '.join(sorted(self.elementwise_in_flops))}: folded into FLOPs (--count-elementwise)"


TORCH = Convention(
    "torch",
    "FLOPs = 2 x MACs of conv/matmul/attention; bias, norms, activations, pooling, softmax and adds "
    "reported apart (torch.utils.flop_counter.FlopCounterMode)",
)


TORCHVISION = Convention(
    "torchvision",
    "MACs of conv/matmul/attention, the number torchvision's model table prints as 'GFLOPS' "
    "(its _ops meta: FlopCounterMode's count / 2, at batch 1)",
    flops_per_mac=1,
    headline="MACs ('GFLOPS' column)",
)


def _peer(tool: str) -> Convention:
    return Convention(
        tool,
        f"{PEER_TOOLS[tool]}: each layer counted by the tool's own rule (the formula's 'peers' entry, else its MACs)",
        flops_per_mac=1,
        peer=tool,
        headline=f"{tool} count",
    )


#: ``--convention`` presets: what each tool prints, reproduced on purpose (docs/conventions.md).
PRESETS: dict[str, Convention] = {
    "torch": TORCH,
    "torchvision": TORCHVISION,
    **{tool: _peer(tool) for tool in PEER_TOOLS},
}


def preset(name: str) -> Convention:
    """The convention named ``name``: torch (the default), torchvision, thop, ptflops or fvcore.

    >>> preset("torchvision").flops_per_mac
    1
    """
    if name not in PRESETS:
        raise UsageError(f"unknown convention '{name}'{did_you_mean(name, PRESETS)}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def flops(
    macs: sympy.Expr,
    elementwise: Mapping[str, sympy.Expr],
    convention: Convention = TORCH,
    peers: Mapping[str, sympy.Expr] | None = None,
) -> sympy.Expr:
    """FLOPs under ``convention``: ``flops_per_mac * macs`` plus the included elementwise counts.

    Under a peer tool's convention, the layer's ``peers`` count for that tool, or its ``macs``.
    """
    if convention.peer is not None:
        return (peers or {}).get(convention.peer, macs)
    total = convention.flops_per_mac * macs
    for category in sorted(convention.elementwise_in_flops):
        total += elementwise.get(category, sympy.Integer(0))
    return total


def elementwise_total(elementwise: Mapping[str, sympy.Expr]) -> sympy.Expr:
    """All elementwise operations of every category, summed."""
    return sympy.Add(*elementwise.values()) if elementwise else sympy.Integer(0)


def parse_categories(text: str) -> frozenset[str]:
    """``"norm,bias"`` or ``"all"`` → the categories; unknown names are a UsageError."""
    words = [w.strip() for w in text.split(",") if w.strip()]
    if words == ["all"]:
        return frozenset(ELEMENTWISE_CATEGORIES)
    TORCH.with_elementwise(words)  # validates
    return frozenset(words)


# ---- architecture totals ----------------------------------------------------------------------

#: Bits per element of each storage dtype (model size and memory traffic).
DTYPE_BITS: dict[str, int] = {
    "fp64": 64,
    "fp32": 32,
    "tf32": 32,
    "fp16": 16,
    "bf16": 16,
    "fp8": 8,
    "int8": 8,
    "int4": 4,
}


def dtype_bits(name: str) -> int:
    if name not in DTYPE_BITS:
        raise UsageError(f"unknown dtype '{name}'{did_you_mean(name, DTYPE_BITS)}; choose from {', '.join(DTYPE_BITS)}")
    return DTYPE_BITS[name]


def to_bytes(elements: int, dtype: str) -> int:
    """Bytes for ``elements`` values of ``dtype``, rounded up to whole bytes (int4 packs two per byte)."""
    return -(-elements * dtype_bits(dtype) // 8)


def node_totals(count: sympy.Expr, costs: Mapping[str, sympy.Expr], elementwise: Mapping[str, sympy.Expr],
                convention: Convention = TORCH, peers: Mapping[str, sympy.Expr] | None = None,
                ) -> dict[str, sympy.Expr]:  # fmt: skip
    """One node's contribution: every raw cost and FLOPs under ``convention``, times its copies."""
    out = {key: count * value for key, value in costs.items()}
    out["flops"] = count * flops(costs["macs"], elementwise, convention, peers)
    out["elementwise"] = count * elementwise_total(elementwise)
    for category, value in elementwise.items():
        out[f"elementwise.{category}"] = count * value
    return out
