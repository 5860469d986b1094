"""A network's latency under a runtime: layers fused into kernels, each kernel timed on the device.

For every layer in graph order, the runtime's fusion rules (:data:`symcost.runtimes.FUSION_RULES`)
either start a new kernel or join the layer to the kernel that produced its input. A kernel then
takes, per copy,

    max(compute, memory) + kernel overhead (+ per-op dispatch for each of its layers, eager)

where ``compute = (FLOPs + half_flops) / (peak x efficiency x wave utilization)`` for GEMM-class
kernels (the size curve: a kernel of ``half_flops`` FLOPs runs at half the efficiency) and
``memory = bytes / (bandwidth x memory efficiency)``. Bytes are the layers' reads and writes at the
dtype, less what fusion removes, less the input that the previous kernel left in L2 when it fits
in the runtime's share of the device's L2. Everything is exact (``Fraction`` seconds).

A hand-checked case: a 1x1 convolution (reads 8 inputs and 4 weights, writes 8 outputs: 20
elements, 40 bytes at fp16) then a ReLU, fused (``epilogue``): the ReLU's read and write vanish.

>>> from symcost import api, runtimes
>>> from symcost.devices import find as device
>>> r = api.evaluate(api.load('''
... name: tiny
... summary: a 1x1 convolution and a ReLU
... inputs: {x: [1, 2, 2, 2]}
... layers:
...   - {op: conv2d, name: conv, C_out: 2, kernel: 1, bias: false}
...   - {op: relu, name: act}
... '''), dtype="fp16").result
>>> rt = runtimes.load_text("{name: t, summary: t, fuse: [epilogue], overhead: {kernel_us: 1}}")
>>> est = estimate(r, device("a100"), "fp16", rt)
>>> [t.bytes for t in est.layers], [t.bound for t in est.layers]
([40, 0], ['memory', 'fused'])
"""

from __future__ import annotations

import math
from fractions import Fraction
from math import prod
from typing import Any

from .devices import Device
from .roofline import Estimate, LayerTime, Roof, gemm_utilization
from .runtimes import Runtime

GEMM_CATEGORIES = {"convolution", "linear", "attention", "recurrent"}
_UNARY = {"activation"}
_BINARY = {"add", "sub", "mul"}
_NORMS = {"layernorm", "rmsnorm", "layernorm_last2", "layernorm_last3", "groupnorm", "layernorm_channels_first"}
_BATCHNORMS = {"batchnorm1d", "batchnorm2d", "batchnorm3d"}
#: the dtypes torch.autocast runs convolutions and matrix multiplies in (CUDA: fp16 and bf16)
_AUTOCAST_DTYPES = {"fp16", "bf16"}


def _category(op: str) -> str:
    from . import registry

    try:
        return registry.get(op).category
    except Exception:  # an op no formula file names (a user's own): never fused
        return ""


def _kind(node: Any) -> str | None:
    """How a node could fuse: ``bn``, ``unary``, ``binary``, ``norm``, or None (it never does)."""
    if node.op in _BATCHNORMS:
        return "bn"
    if _category(node.op) in _UNARY:
        return "unary"
    if node.op in _BINARY:
        return "binary"
    if node.op in _NORMS:
        return "norm"
    return None


def _joins(kind: str | None, head: Any, alone: bool, rules: tuple[str, ...]) -> str | None:
    """The rule by which a node of ``kind`` joins the kernel headed by ``head`` (None: it does not)."""
    if kind is None:
        return None
    head_category = _category(head.op)
    if kind == "bn" and "bn_fold" in rules and alone and head_category in {"convolution", "linear"}:
        return "bn_fold"
    if kind == "binary" and "residual" not in rules or kind == "norm" and "norm" not in rules:
        return None
    if head_category in GEMM_CATEGORIES:
        return "epilogue" if "epilogue" in rules and kind != "bn" else None
    return "pointwise" if "pointwise" in rules else None


def _elements(node: Any) -> int:
    """The elements of a node's output, all copies."""
    return prod(node.output) * node.count


def _transparent(node: Any) -> bool:
    """A node with no work (a view, reshape, transpose: 0 FLOPs, 0 bytes) of one input: no kernel of its own."""
    v = node.values
    return (len(node.sources) == 1 and not v["flops"] and not v["read"] and not v["write"]
            and _category(node.op) not in GEMM_CATEGORIES)  # fmt: skip


def _origin(nodes: Any, source: int) -> int:
    """The node whose output ``source`` is, through views and other transparent shape ops."""
    while source >= 0 and _transparent(nodes[source]):
        source = nodes[source].sources[0]
    return source


def _launches(node: Any, rules: tuple[str, ...]) -> int:
    """How many kernels one copy of ``node`` launches, one after another: 1 unless it is a composite layer.

    ``multi_head_attention`` is its q, k and v projections, the attention and the output projection (5), or
    with ``horizontal`` one QKV GEMM, the attention and the output projection (3); with a KV cache and
    without ``cache``, its keys' and values' cache writes are 2 more (as a generated architecture's two
    ``kv_cache`` layers are). ``multi_head_latent_attention``, ``lstm`` and ``gru`` count 1.
    """
    if node.op != "multi_head_attention":
        return 1
    launches = 3 if "horizontal" in rules else 5
    if node.values.get("cache", 0) and "cache" not in rules:
        launches += 2
    return launches


def groups(result: Any, runtime: Runtime) -> list[list[tuple[int, str | None]]]:
    """The kernels: lists of (node index, the rule that fused it; None for the kernel's head).

    A node joins a kernel when one of its inputs is that kernel's last output (the chained
    tensor), with the same number of copies, and a rule allows it (:data:`FUSION_RULES`):
    ``bn_fold`` a batch norm into the convolution or linear layer just before it; ``epilogue`` an
    activation (and, with ``residual``/``norm``, an add or a norm) into a GEMM-class kernel;
    ``pointwise`` the same into a kernel that is not GEMM-class. Views and other shape ops with no
    work are looked through: a layer after them chains to what they view. Two rules for LLM
    engines: ``horizontal`` puts a linear layer into the earlier kernel of linear layers of the same
    module (the same parent in their paths: ``self_attn``, ``mlp``) that read the same tensor (one
    GEMM over the module's concatenated weights: q/k/v, gate/up); ``cache`` puts a
    ``kv_cache`` write into the kernel that produced the new keys or values, and a ``contiguous``
    copy right after an attention kernel into it (the attention writes that layout itself).
    """
    nodes = result.nodes
    rules = runtime.fuse
    kernel_of: dict[int, int] = {}  # node index -> its kernel's index in `kernels`
    kernels: list[list[tuple[int, str | None]]] = []
    # (input tensor, copies, module) -> the kernel of that module's linear layers reading it
    gemm_of: dict[tuple[int, int, str], int] = {}
    for i, node in enumerate(nodes):
        sources = [_origin(nodes, s) for s in node.sources]
        kind = None if _transparent(node) else _kind(node)  # a shape op joins nothing: what reads it chains past it
        target, rule = None, None
        if node.op == "linear" and len(sources) == 1:
            key = (sources[0], node.count, node.path.rpartition(".")[0])
            # never into a kernel it depends on (its input would be that kernel's own output)
            if "horizontal" in rules and key in gemm_of and all(j != key[0] for j, _ in kernels[gemm_of[key]]):
                target, rule = gemm_of[key], "horizontal"
        elif (
            "cache" in rules and node.op in {"kv_cache", "contiguous"} and len(sources) == 1 and sources[0] in kernel_of
        ):
            kernel = kernels[kernel_of[sources[0]]]
            head = nodes[kernel[0][0]]
            if head.count == node.count and (
                node.op == "kv_cache" or kernel[-1][0] == sources[0] and _category(head.op) == "attention"
            ):
                target, rule = kernel_of[sources[0]], "cache"
        for source in sources if kind is not None and target is None else ():
            if source < 0 or source not in kernel_of:
                continue
            kernel = kernels[kernel_of[source]]
            head = nodes[kernel[0][0]]
            if kernel[-1][0] != source or head.count != node.count:
                continue
            rule = _joins(kind, head, len(kernel) == 1, rules)
            if rule is not None:
                target = kernel_of[source]
                break
        if target is not None:
            kernels[target].append((i, rule))
            kernel_of[i] = target
            continue
        kernel_of[i] = len(kernels)
        kernels.append([(i, None)])
        if node.op == "linear" and len(sources) == 1:
            gemm_of.setdefault((sources[0], node.count, node.path.rpartition(".")[0]), kernel_of[i])
    return kernels


def kernel_terms(result: Any, device: Device, dtype: str, runtime: Runtime, *, training: bool = False,
                 precision: Any = None) -> list[tuple[list[tuple[int, str | None]], dict[str, Any]]]:  # fmt: skip
    """Each kernel and its terms at full efficiency: ``compute`` (s, at the peak, waves and size
    curve included), ``memory`` (s, at the bandwidth), ``kernels`` and ``ops`` (launches and
    dispatched operations, copies counted), ``flops``, ``bytes``, ``utilization``. A kernel's time
    is ``max(compute / compute efficiency, memory / memory efficiency) + kernels x kernel overhead +
    ops x op overhead``; ``symcost calibrate`` fits those constants to these terms.

    With ``precision`` (a mixed :class:`~symcost.precision.Precision`) a kernel's bytes are its
    members' weights, activations and KV cache each at its own format; what fusion and L2 save are
    activations, at the activation format."""
    from .cost import TRAINING_FACTOR, dtype_bits, to_bytes

    mixed = precision is not None and not precision.uniform
    if mixed:
        from .precision import bits as format_bits
        from .precision import split

        parts = split(result)
        act_bits = format_bits(precision.act)

        def part_bits(i: int) -> Fraction:
            return precision.traffic_bits(parts[i])
    else:
        act_bits = Fraction(dtype_bits(dtype))

        def part_bits(i: int) -> Fraction:
            return (nodes[i].values["read"] + nodes[i].values["write"]) * act_bits

    factor = TRAINING_FACTOR if training else 1
    peak = device.peak(dtype)
    l2 = Fraction(device.cache or 0) * runtime.l2_fraction
    waves = runtime.waves and device.units is not None and device.tile is not None
    nodes = result.nodes
    out = []
    previous: list[int] | None = None
    for members in groups(result, runtime):
        kernel = [i for i, _ in members]
        head = nodes[kernel[0]]
        copies = head.count
        flops = sum(nodes[i].values["flops"] for i in kernel) * factor
        moved = part_bits(kernel[0])
        for i, rule in members[1:]:
            node = nodes[i]
            v = node.values
            if rule == "bn_fold":
                continue
            if rule == "horizontal":  # its weights and its output: the shared input is read once
                moved += max(part_bits(i) - max(v["read"] - v["params"] - v["buffers"], 0) * act_bits, 0)
                continue
            if rule == "cache":  # a kv_cache moves its write of the new tokens; a contiguous nothing
                if node.op == "kv_cache" and v["read"] + v["write"]:
                    moved += part_bits(i) * Fraction(v["write"], v["read"] + v["write"])
                continue
            # a fused node moves read + write - 2 x the chained tensor, less any other input the kernel holds
            inside = [_origin(nodes, s) for s in node.sources]
            inside = [s for s in inside if s >= 0 and s in kernel]
            held = 2 * _elements(nodes[inside[0]]) + sum(_elements(nodes[s]) for s in inside[1:])
            moved += max(part_bits(i) - held * act_bits, 0)
        # the input the previous kernel just wrote, still in L2 when it fits
        if l2 and previous is not None and not training:
            last = nodes[previous[-1]]
            read_from = {_origin(nodes, s) for s in head.sources}
            if previous[-1] in read_from and last.count == copies and to_bytes(prod(last.output), dtype) <= l2:
                weights = head.values["params"] + head.values["buffers"]
                moved -= min(_elements(last), max(head.values["read"] - weights, 0)) * act_bits
        nbytes = math.ceil(moved / 8) * factor
        gemm = _category(head.op) in GEMM_CATEGORIES
        utilization = Fraction(1)
        if waves and gemm and head.gemm and flops:
            g = dict(head.gemm)
            # a horizontal GEMM's N is its layers' output features together
            g["N"] += sum(nodes[i].gemm["N"] for i, rule in members if rule == "horizontal" and nodes[i].gemm)
            # the library picks, among its tiles, the one that fills the device best
            utilization = max(gemm_utilization(g["batch"], g["M"], g["N"], tile, device.units)  # type: ignore[arg-type]
                              for tile in runtime.tiles or (device.tile,))  # fmt: skip
        extra = runtime.half_flops * copies * factor if gemm and flops else 0
        working = bool(flops or nbytes)
        # torch.autocast casts a GEMM's fp32 weights to the 16-bit dtype on every pass (its cast cache
        # lives only as long as the autocast region): one more op, reading 4 and writing 2 bytes a weight
        cast_bytes, casts = 0, 0
        if runtime.autocast and gemm and dtype in _AUTOCAST_DTYPES and head.values["params"] and not training:
            # (a multi_head_attention layer's four projection weights are four casts)
            weights = 4 if head.op == "multi_head_attention" else 1
            cast_bytes, casts = head.values["params"] * (4 + to_bytes(1, dtype)), copies * weights
        out.append((members, {
            "compute": (Fraction(flops) + extra) / (peak * utilization),
            "memory": Fraction(nbytes) / device.bandwidth,
            "cast": Fraction(cast_bytes) / device.bandwidth,
            "kernels": (copies * factor * _launches(head, runtime.fuse) if working else 0) + casts,
            "ops": sum(nodes[i].count * _launches(nodes[i], runtime.fuse) for i in kernel) * factor + casts,
            "flops": flops,
            "bytes": nbytes + cast_bytes,
            "utilization": utilization,
        }))  # fmt: skip
        if working:
            previous = kernel
    return out


def kernel_time(runtime: Runtime, compute: Any, memory: Any, cast: Any, kernels: int, ops: int) -> Any:
    """One kernel's seconds from its terms at the runtime's efficiencies: ``max(compute, memory)``
    plus its weight casts (``autocast``), plus its launches; its ops' CPU dispatch is added, or with
    ``overlap`` runs while the GPU works (CUDA launches are asynchronous), so only the larger counts.

    >>> from symcost.runtimes import load_text
    >>> rt = load_text("{name: e, summary: e, overhead: {op_us: 50, overlap: true}}")
    >>> us = Fraction(1, 10**6)
    >>> kernel_time(rt, 30 * us, 10 * us, 0, 0, 1) / us, kernel_time(rt, 80 * us, 10 * us, 0, 0, 1) / us
    (Fraction(50, 1), Fraction(80, 1))
    """
    work = max(compute, memory) + cast
    dispatch = runtime.op_s * ops
    busy = max(work, dispatch) if runtime.overlap else work + dispatch
    return busy + runtime.kernel_s * kernels


def estimate(
    result: Any, device: Device, dtype: str, runtime: Runtime, *, training: bool = False, precision: Any = None
) -> Estimate:
    """Each layer of ``result`` under ``runtime``: one :class:`LayerTime` per node, in order. A
    kernel's time is on its head's row; the layers fused into it show bound ``fused`` and 0 s."""
    roof = Roof(device.peak(dtype) * runtime.compute_efficiency, device.bandwidth * runtime.memory_efficiency)
    times: list[LayerTime | None] = [None] * len(result.nodes)
    for members, t in kernel_terms(result, device, dtype, runtime, training=training, precision=precision):
        compute = t["compute"] / runtime.compute_efficiency
        memory = t["memory"] / runtime.memory_efficiency
        latency = kernel_time(runtime, compute, memory, t["cast"] / runtime.memory_efficiency, t["kernels"], t["ops"])
        overhead = latency - max(compute, memory)
        if compute > memory:
            bound = "compute"
        elif memory > compute:
            bound = "memory"
        else:
            bound = "overhead" if overhead else "none"
        times[members[0][0]] = LayerTime(t["flops"], t["bytes"], compute, memory, latency, bound, t["utilization"])
        for i, _ in members[1:]:
            times[i] = LayerTime(0, 0, Fraction(0), Fraction(0), Fraction(0), "fused")
    mixed = precision if precision is not None and not precision.uniform else None
    return Estimate(roof, device, dtype, tuple(t for t in times if t is not None), training, mixed, runtime)
