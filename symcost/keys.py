r"""The names symcost counts, in one table: each cost of a layer with its label, unit and LaTeX,
and each metric ``sweep``, ``solve`` and ``compare`` speak of. Every output reads its labels here.

>>> COSTS["read"].label, COSTS["read"].unit, COSTS["flops"].latex
('read (elements)', 'elements', '\\mathrm{FLOPs}')
>>> [k for k in COSTS]
['flops', 'macs', 'params', 'buffers', 'read', 'write', 'cache']
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    """One cost: its name in data and JSON, its label for people, its unit and its LaTeX."""

    name: str
    label: str
    unit: str
    latex: str
    doc: str


#: A layer's costs, in the order ``derive`` shows them.
COSTS: dict[str, Key] = {
    k.name: k
    for k in (
        Key("flops", "FLOPs", "FLOP", r"\mathrm{FLOPs}", "floating-point operations under the convention"),
        Key("macs", "MACs", "MAC", r"\mathrm{MACs}", "multiply-accumulates of conv, matmul and attention"),
        Key("params", "params", "", r"\mathrm{params}", "trainable parameters"),
        Key("buffers", "buffers", "", r"\mathrm{buffers}", "non-trainable state (BatchNorm running statistics)"),
        Key("read", "read (elements)", "elements", r"\mathrm{read}", "elements read: inputs, weights, KV cache"),
        Key("write", "write (elements)", "elements", r"\mathrm{write}", "elements written: the outputs"),
        Key("cache", "cache (elements)", "elements", r"\mathrm{cache}", "KV-cache elements kept between calls"),
    )
}
#: ``name -> label``, ``name -> LaTeX``: the views the renderers use.
LABELS: dict[str, str] = {k: v.label for k, v in COSTS.items()}
LATEX: dict[str, str] = {k: v.latex for k, v in COSTS.items()}

#: Metrics with a closed form over the architecture's variables (exact integers).
CLOSED: dict[str, str] = {
    "flops": "FLOPs under the convention (2 x MACs by default)",
    "macs": "multiply-accumulates of conv, matmul and attention",
    "params": "trainable parameters",
    "buffers": "non-trainable state (BatchNorm running statistics)",
    "elementwise": "elementwise operations, all categories (not in FLOPs by default)",
    "read": "elements read: inputs, weights, KV cache, every layer",
    "write": "elements written: every layer's output",
    "cache": "KV-cache elements kept between calls",
    "traffic_bytes": "bytes read and written at --dtype (weights, activations, KV cache at their own formats if set)",
    "model_bytes": "params + buffers at --dtype (or --weight-dtype)",
    "kv_cache_bytes": "KV cache at --dtype (or --kv-dtype)",
}
#: Metrics that need a device (roofline, seconds); closed forms too, evaluated in float64 by sweeps.
TIMED: dict[str, str] = {
    "latency": "roofline latency in seconds: the sum over layers of max(FLOPs / peak, bytes / bandwidth)",
    "compute_s": "seconds of compute: FLOPs / peak, summed over layers",
    "memory_s": "seconds of memory traffic: bytes / bandwidth, summed over layers",
}
#: Metrics known only by evaluating a point (a liveness walk over the layers).
EVALUATED: dict[str, str] = {
    "memory": "bytes a device must hold: weights, KV cache and the activations alive at once "
    "(training: gradients, optimizer state, every output)",
}
METRICS: dict[str, str] = {**CLOSED, **TIMED, **EVALUATED}
