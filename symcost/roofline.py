"""The roofline model: a layer's time on a device from its FLOPs and the bytes it moves.

Each layer is bound by one of two ceilings (Williams, Waterman and Patterson 2009): compute,
``FLOPs / peak``, and memory, ``bytes / bandwidth``. Its latency is the larger of the two when the
device overlaps them (the roofline's assumption), or their sum with ``overlap=False`` (Paleo, Qi
et al. 2017). Everything is exact (``Fraction`` seconds) until it is printed.

The blog posts' examples, as hand-checked cases: 10^12 FLOPs at 10 TFLOP/s take 0.1 s, and 100M fp32
parameters (400 MB) read in 0.1 s need 4 GB/s:

>>> roof = Roof(peak=10 * 10**12, bandwidth=4 * 10**9)
>>> t = layer_time(10**12, 0, roof)
>>> t.latency_s, t.bound
(Fraction(1, 10), 'compute')
>>> layer_time(0, 400 * 10**6, roof).latency_s
Fraction(1, 10)
>>> roof.ridge   # FLOP per byte where the two ceilings meet: 10e12 / 4e9
Fraction(2500, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sympy

from .devices import Device
from .errors import UsageError


@dataclass(frozen=True)
class Roof:
    """The two ceilings a layer meets: attainable FLOP/s and bytes/s (after efficiency)."""

    peak: Fraction  # FLOP/s (an int is taken exactly)
    bandwidth: Fraction  # bytes/s
    overlap: bool = True  # latency = max(compute, memory); False: their sum

    def __post_init__(self) -> None:
        object.__setattr__(self, "peak", Fraction(self.peak))
        object.__setattr__(self, "bandwidth", Fraction(self.bandwidth))

    @property
    def ridge(self) -> Fraction:
        """Arithmetic intensity (FLOP/byte) at which a layer turns from memory- to compute-bound."""
        return self.peak / self.bandwidth


def _fraction(value: float | Fraction | str, what: str) -> Fraction:
    from .budgets import exact_number

    exact = exact_number(value, what)
    if not 0 < exact <= 1:
        raise UsageError(f"{what} must be in (0, 1], got {value}")
    return exact


def roof_for(
    device: Device,
    dtype: str,
    *,
    efficiency: float | Fraction = 1,
    memory_efficiency: float | Fraction | None = None,
    overlap: bool = True,
) -> Roof:
    """The roofline of ``device`` at compute dtype ``dtype``, derated by the efficiencies.

    ``efficiency`` scales the peak FLOP/s; ``memory_efficiency`` (default: the same) the bandwidth.
    """
    compute = _fraction(efficiency, "--efficiency")
    memory = compute if memory_efficiency is None else _fraction(memory_efficiency, "--memory-efficiency")
    return Roof(device.peak(dtype) * compute, device.bandwidth * memory, overlap)


@dataclass(frozen=True)
class LayerTime:
    """One layer on one roof: exact seconds, the bound, and the intensity."""

    flops: int
    bytes: int
    compute_s: Fraction
    memory_s: Fraction
    latency_s: Fraction
    bound: str  # "compute", "memory", "balanced" (exactly at the ridge) or "none" (no work)
    utilization: Fraction = Fraction(1)

    @property
    def intensity(self) -> Fraction | None:
        """FLOP per byte moved; None when the layer moves no bytes."""
        return Fraction(self.flops, self.bytes) if self.bytes else None

    @property
    def attained(self) -> Fraction:
        """FLOP/s the layer attains under the model (its y on a roofline plot)."""
        return Fraction(self.flops) / self.latency_s if self.latency_s else Fraction(0)


def layer_time(flops: int, nbytes: int, roof: Roof, utilization: Fraction | int = 1) -> LayerTime:
    """Time of a layer that does ``flops`` and moves ``nbytes``; ``utilization`` (0, 1] derates the
    peak for this layer only (tile and wave quantization, :func:`gemm_utilization`).

    A layer exactly at the ridge point is bound by both:

    >>> layer_time(2500, 1, Roof(peak=10 * 10**12, bandwidth=4 * 10**9)).bound
    'balanced'
    """
    compute = Fraction(flops) / (roof.peak * Fraction(utilization))
    memory = Fraction(nbytes) / roof.bandwidth
    latency = max(compute, memory) if roof.overlap else compute + memory
    if compute > memory:
        bound = "compute"
    elif memory > compute:
        bound = "memory"
    else:
        bound = "balanced" if flops else "none"
    return LayerTime(flops, nbytes, compute, memory, latency, bound, Fraction(utilization))


def gemm_utilization(batch: int, m: int, n: int, tile: tuple[int, int], units: int) -> Fraction:
    """The fraction of a device's peak a GEMM's output tiling can use: tile and wave quantization.

    The output (``batch`` matrices of ``m x n``) is cut into ``tile``-sized work units; the device
    runs ``units`` of them at a time (one per SM), in waves. Partial tiles waste their padding, and
    the last wave leaves units idle (NVIDIA, "Matrix Multiplication Background User's Guide", tile
    and wave quantization). A dimension thinner than the tile gets a tile side of the next power of
    two (libraries pick thin kernels and GEMV for it). Utilization = useful outputs / (waves x units
    x tile outputs):

    A 4096 x 4096 output on an A100 (108 SMs): 32 x 32 = 1,024 tiles in ceil(1024/108) = 10 waves,
    the last one 52 of 108 full: 1024 / 1080 = 128/135.

    >>> gemm_utilization(1, 4096, 4096, (128, 128), 108)
    Fraction(128, 135)

    One decode row (m = 1) gets 1 x 128 tiles: 32 of them in one wave of 108 SMs,
    4096 / (108 x 128) = 8/27.

    >>> gemm_utilization(1, 1, 4096, (128, 128), 108)
    Fraction(8, 27)
    """
    tm, tn = min(tile[0], _pow2(m)), min(tile[1], _pow2(n))
    tiles = batch * -(-m // tm) * -(-n // tn)
    waves = -(-tiles // units)
    return Fraction(batch * m * n, waves * units * tm * tn)


def _pow2(n: int) -> int:
    """The smallest power of two >= n: the tile side a library picks for a thin dimension."""
    return 1 << max(n - 1, 0).bit_length()


def symbolic_time(flops: sympy.Expr, nbytes: sympy.Expr, roof: Roof) -> dict[str, sympy.Expr]:
    """Compute, memory and latency time as closed forms in the variables left free.

    >>> n = sympy.Symbol("n", positive=True)
    >>> from symcost.printer import format_expr
    >>> format_expr(symbolic_time(2 * n**2, 8 * n, Roof(peak=10**12, bandwidth=10**9))["latency"])
    'max(n**2/500000000000, n/125000000)'
    """
    from .expr import max_

    compute = flops / sympy.Rational(roof.peak)
    memory = nbytes / sympy.Rational(roof.bandwidth)
    if compute == 0 or memory == 0 or not roof.overlap:
        latency = compute + memory
    else:
        latency = max_(compute, memory)
    return {"compute": compute, "memory": memory, "latency": latency}


# ---- a whole network --------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """Every layer of an evaluated network on one roof, and the sums."""

    roof: Roof
    device: Device
    dtype: str
    layers: tuple[LayerTime, ...]  # one per result node, in order
    training: bool  # the layers are a training step's (3 x forward)
    precision: Any = None  # symcost.precision.Precision when weights, activations or KV cache are stored apart
    runtime: Any = None  # symcost.runtimes.Runtime: None is the pure roofline

    @property
    def latency_s(self) -> Fraction:
        return sum((t.latency_s for t in self.layers), Fraction(0))

    @property
    def compute_s(self) -> Fraction:
        return sum((t.compute_s for t in self.layers), Fraction(0))

    @property
    def memory_s(self) -> Fraction:
        return sum((t.memory_s for t in self.layers), Fraction(0))

    def layers_by_bound(self, result: Any) -> dict[str, int]:
        """How many layers each ceiling bounds, every copy of a repeated layer counted."""
        counts: dict[str, int] = {}
        for node, t in zip(result.nodes, self.layers):
            counts[t.bound] = counts.get(t.bound, 0) + node.count
        return counts


def estimate(result: Any, device: Device, roof: Roof, dtype: str, *, training: bool = False,
             waves: bool = False, precision: Any = None) -> Estimate:  # fmt: skip
    """Each layer of ``result`` (a :class:`~symcost.compile.Result`) on ``roof``.

    ``training`` multiplies each layer's FLOPs and bytes by :data:`~symcost.cost.TRAINING_FACTOR`
    (forward + backward). ``waves`` derates GEMM-class layers by :func:`gemm_utilization`, which
    needs the device's ``units`` and ``tile``. ``precision`` (a mixed
    :class:`~symcost.precision.Precision`) reads and writes weights, activations and KV cache each at
    its own format; the peak stays ``dtype``'s.
    """
    from .cost import TRAINING_FACTOR, to_bytes
    from .errors import DeviceError

    if waves and (device.units is None or device.tile is None):
        raise DeviceError(
            f"--waves needs the device's parallel 'units' and GEMM 'tile'; '{device.name}' lacks "
            f"{'units' if device.units is None else 'tile'}",
            device.peak_loc,
        )
    factor = TRAINING_FACTOR if training else 1
    mixed = precision is not None and not precision.uniform
    if mixed:
        from .precision import split

        parts = split(result)
    times = []
    for i, node in enumerate(result.nodes):
        flops = node.values["flops"] * factor
        # its reads (inputs, weights, KV cache) and writes at the dtype's size, or each at its own
        if mixed:
            nbytes = precision.traffic_bytes(parts[i]) * factor
        else:
            nbytes = to_bytes(node.values["read"] + node.values["write"], dtype) * factor
        utilization: Fraction | int = 1
        if waves and node.gemm and flops:
            g = node.gemm
            utilization = gemm_utilization(g["batch"], g["M"], g["N"], device.tile, device.units)  # type: ignore[arg-type]
        times.append(layer_time(flops, nbytes, roof, utilization))
    return Estimate(roof, device, dtype, tuple(times), training, precision if mixed else None)


def crossover(intensity: sympy.Expr, ridge: Fraction, symbol: sympy.Symbol, limit: int = 2**40) -> int | None:
    """The smallest whole value of ``symbol`` at which ``intensity`` reaches the ridge point: where a
    layer turns compute-bound as a batch size or a sequence length grows. ``None`` if it never
    does below ``limit``, or if the intensity is not increasing in ``symbol``.

    >>> n = sympy.Symbol("n", positive=True, integer=True)
    >>> crossover(2 * n / (n + 8), Fraction(1), n)   # 2n/(n+8) >= 1 from n = 8
    8
    """
    target = sympy.Rational(ridge)

    def reaches(value: int) -> bool:
        return bool(intensity.xreplace({symbol: sympy.Integer(value)}) >= target)

    if reaches(1):
        return 1
    if not reaches(limit):
        return None
    low, high = 1, limit
    while high - low > 1:
        middle = (low + high) // 2
        if reaches(middle):
            high = middle
        else:
            low = middle
    return high


def summary(result: Any, est: Estimate, *, phase: str = "inference", target_latency: Fraction | None = None,
            optimizer: str = "adam") -> dict[str, Any]:  # fmt: skip
    """The whole-network figures of ``symcost eval --device``: exact numbers (Fractions, ints).

    Latency is the sum of the layers' roofline latencies, at least the whole-model compute bound
    FLOPs ÷ peak (Williams, Waterman and Patterson 2009), which ignores memory.
    ``weights_lower_bound_s`` (every weight read once) is a reference, not a bound: an embedding
    layer reads only the rows it looks up.
    """
    from . import memory
    from .cost import to_bytes

    totals = result.totals
    dtype = est.dtype
    flops = sum(t.flops for t in est.layers)  # the step's: 3 x forward when training
    weights = to_bytes(totals["params"] + totals["buffers"], dtype)
    if est.precision is not None:
        weights = est.precision.weight_bytes(totals["params"] + totals["buffers"])
    traffic = sum(t.bytes for t in est.layers)
    latency = est.latency_s
    arch = result.graph.arch
    subs = {arch.variables[k].symbol: sympy.Integer(v) for k, v in result.values.items() if k in arch.variables}
    samples = int(arch.samples.xreplace(subs)) if arch.samples is not None else None
    tokens = int(arch.tokens.xreplace(subs)) if arch.tokens is not None else None
    out: dict[str, Any] = {
        "phase": phase,
        "latency_s": latency,
        "compute_s": est.compute_s,
        "memory_s": est.memory_s,
        "compute_bound_s": sum((t.latency_s for t in est.layers if t.bound == "compute"), Fraction(0)),
        "memory_bound_s": sum((t.latency_s for t in est.layers if t.bound != "compute"), Fraction(0)),
        "layers_by_bound": est.layers_by_bound(result),
        "flops": flops,
        "traffic_bytes": traffic,
        "peak_flop_per_s": est.roof.peak,
        "bandwidth_bytes_per_s": est.roof.bandwidth,
        "ridge_flop_per_byte": est.roof.ridge,
        "intensity_flop_per_byte": Fraction(flops, traffic) if traffic else None,
        "flops_lower_bound_s": Fraction(flops) / est.roof.peak,
        "weights_lower_bound_s": Fraction(weights) / est.roof.bandwidth,
        "attained_flop_per_s": Fraction(flops) / latency if latency else None,
        "samples": samples,
        "tokens": tokens,
        "samples_per_s": samples / latency if samples and latency else None,
        "tokens_per_s": tokens / latency if tokens and latency else None,
    }
    need = memory.needed(result, dtype, training=est.training, optimizer=optimizer, precision=est.precision)
    if est.training:
        out["optimizer"] = optimizer
    out["memory_needed_bytes"] = need
    out["memory_total_bytes"] = sum(need.values())
    out["capacity_bytes"] = est.device.capacity
    out["fits"] = out["memory_total_bytes"] <= est.device.capacity
    out["kv_cache_bytes"] = (
        to_bytes(totals["cache"], dtype) if est.precision is None else est.precision.kv_bytes(totals["cache"])
    )
    if target_latency is not None:
        out["target_latency_s"] = target_latency
        out["meets_target"] = latency <= target_latency
        # bandwidth >= params x dtype size / time: every weight is read once per pass (the roofline's memory ceiling)
        out["bandwidth_for_weights_bytes_per_s"] = Fraction(weights) / target_latency
        out["bandwidth_for_traffic_bytes_per_s"] = Fraction(traffic) / target_latency
        out["flop_per_s_for_target"] = Fraction(flops) / target_latency
    return out


def symbolic_estimate(nodes: list[tuple[Any, dict[str, sympy.Expr]]], roof: Roof, dtype: str, *,
                      training: bool = False, node_bytes: list[sympy.Expr] | None = None,
                      ) -> tuple[dict[str, sympy.Expr], list[dict[str, Any]]]:  # fmt: skip
    """Latency and intensity in closed form, and for each layer the value of its one free variable
    (a batch size, a sequence length) from which it is compute-bound.

    ``nodes`` comes from :func:`symcost.compile.symbolic_nodes`. Bytes are exact ``elements x
    bits / 8`` (no rounding up to whole bytes, which a closed form cannot know); ``node_bytes`` gives
    each layer's bytes instead (mixed precision: :func:`symcost.metrics.layer_bytes`).
    """
    from .cost import TRAINING_FACTOR, dtype_bits

    factor = TRAINING_FACTOR if training else 1
    per_byte = sympy.Rational(dtype_bits(dtype), 8)
    latency_terms, flops_terms, bytes_terms, layers = [], [], [], []
    for i, (path, per) in enumerate(nodes):
        flops = per["flops"] * factor
        nbytes = ((per["read"] + per["write"]) * per_byte if node_bytes is None else node_bytes[i]) * factor
        times = symbolic_time(flops, nbytes, roof)
        latency_terms.append(times["latency"])
        flops_terms.append(flops)
        bytes_terms.append(nbytes)
        row: dict[str, Any] = {"name": path, "latency_s": times["latency"]}
        if flops != 0 and nbytes != 0:
            intensity = sympy.cancel(flops / nbytes)
            row["intensity_flop_per_byte"] = intensity
            free = sorted(intensity.free_symbols, key=str)
            if len(free) == 1:
                found = crossover(intensity, roof.ridge, free[0])
                if found is not None and found > 1:
                    row["compute_bound_from"] = {free[0].name: found}
        layers.append(row)
    total_flops, total_bytes = sympy.Add(*flops_terms), sympy.Add(*bytes_terms)
    closed = {
        "latency_s": sympy.Add(*latency_terms),
        "intensity_flop_per_byte": total_flops / total_bytes if total_bytes != 0 else sympy.Integer(0),
    }
    return closed, layers
