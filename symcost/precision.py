"""Mixed precision: weights, activations and the KV cache each stored at their own format.

``--dtype`` is the compute dtype (which peak of the device applies) and the default of the three
storage formats; ``--weight-dtype``, ``--act-dtype`` and ``--kv-dtype`` set each apart. A format is a
number of bits per element, an exact rational: a plain dtype (bf16: 16, int4: 4), a block-scaled one
(nvfp4: 4 bits per value and one fp8 scale per 16 values, 4.5), or a GGUF type from llama.cpp's block
layouts (``ggml-common.h``): Q4_K stores 256 weights in 144 bytes (two fp16 super-block scales, 12
bytes of 6-bit sub-block scales and mins, 128 bytes of 4-bit quants), 144·8/256 = 4.5 bits.

>>> bits("q4_k"), bits("q6_k"), bits("q8_0"), bits("nvfp4")
(Fraction(9, 2), Fraction(105, 16), Fraction(17, 2), Fraction(9, 2))
>>> p = Precision.of("bf16", weight="q4_k_m", kv="fp8")
>>> p.weight_bytes(8_030_261_248)          # Llama-3-8B: 8,030,261,248 x 4.5 / 8
4517021952
>>> p.kv_bytes(1_000), p.act_bytes(1_000)  # 1 byte per fp8 value, 2 per bf16 one
(1000, 2000)

Bytes are exact: a tensor class's bytes are elements × bits / 8, rounded up to a whole byte once per
figure (a model size, a layer's traffic), as the single-dtype path rounds int4.

Bytes moved split each layer's reads and writes by what they are (:func:`split`): its input tensors are
activations, except those that come out of a ``kv_cache`` layer (the cached keys and values, read at the
KV format); the rest of what it reads is its weights (a linear layer's matrix, an embedding's gathered
rows, a tied head's shared matrix), except, in a layer that keeps a cache itself
(``multi_head_attention`` with ``kv_cache: true``), what goes beyond its parameters: the cached keys and
values. A ``kv_cache`` layer's writes go into the cache; a caching attention layer writes its output as
activations and the rest into the cache.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .errors import UsageError, did_you_mean


@dataclass(frozen=True)
class Format:
    """A storage format: bits per element (exact), what it is, and what is approximated."""

    bits: Fraction
    doc: str
    approximation: str = ""  # non-empty: the figure is an approximation, and this says of what


def _gguf(block_bytes: int, block: int, layout: str, approx: str = "") -> Format:
    return Format(Fraction(block_bytes * 8, block), f"GGUF {layout}: {block_bytes} bytes per {block} weights", approx)


def _mix(base: str, recipe: str, size: str) -> str:
    return (
        f"llama.cpp's {recipe} mixes tensor types per tensor (llama_tensor_get_type); symcost costs every weight as "
        f"{base}, {size} bits each, while the file keeps some tensors (the output matrix, part of attn_v and "
        "ffn_down) at more bits and the norms at F32: real files are a few percent larger"
    )


#: Every format, by name. Plain dtypes are those of :data:`symcost.cost.DTYPE_BITS` (also compute dtypes).
FORMATS: dict[str, Format] = {
    "fp64": Format(Fraction(64), "IEEE double"),
    "fp32": Format(Fraction(32), "IEEE single"),
    "tf32": Format(Fraction(32), "TensorFloat-32: computed with a 10-bit mantissa, stored as fp32"),
    "fp16": Format(Fraction(16), "IEEE half"),
    "bf16": Format(Fraction(16), "bfloat16"),
    "fp8": Format(Fraction(8), "8-bit float (e4m3 or e5m2)"),
    "fp8_e4m3": Format(Fraction(8), "8-bit float, 4 exponent and 3 mantissa bits (OCP FP8 E4M3)"),
    "fp8_e5m2": Format(Fraction(8), "8-bit float, 5 exponent and 2 mantissa bits (OCP FP8 E5M2)"),
    "int8": Format(Fraction(8), "8-bit integer"),
    "int4": Format(Fraction(4), "4-bit integer, two per byte (scales not counted)"),
    "fp4": Format(Fraction(4), "4-bit float e2m1, two per byte (scales not counted)"),
    # NVIDIA NVFP4: e2m1 values in blocks of 16 sharing one FP8 E4M3 scale: (16*4 + 8)/16 = 4.5
    "nvfp4": Format(
        Fraction(16 * 4 + 8, 16), "NVFP4: e2m1 values, one fp8 e4m3 scale per 16 (a per-tensor fp32 scale not counted)"
    ),  # fmt: skip
    # OCP Microscaling MXFP4: e2m1 values in blocks of 32 sharing one 8-bit E8M0 scale: (32*4 + 8)/32 = 4.25
    "mxfp4": Format(Fraction(32 * 4 + 8, 32), "OCP MXFP4: e2m1 values, one e8m0 scale per 32"),
    # llama.cpp ggml-common.h, QK4_0 = QK8_0 = 32 and QK_K = 256 weights per block:
    # block_q4_0 {ggml_half d; uint8_t qs[16]}                                      2 + 16 = 18 bytes / 32
    "q4_0": _gguf(18, 32, "block_q4_0 (fp16 scale, 32 4-bit quants)"),
    # block_q4_1 {ggml_half d, m; uint8_t qs[16]}                                   4 + 16 = 20 bytes / 32
    "q4_1": _gguf(20, 32, "block_q4_1 (fp16 scale and min, 32 4-bit quants)"),
    # block_q5_0 {ggml_half d; uint8_t qh[4]; uint8_t qs[16]}                       2 + 4 + 16 = 22 bytes / 32
    "q5_0": _gguf(22, 32, "block_q5_0 (fp16 scale, 32 5-bit quants)"),
    # block_q5_1 {ggml_half d, m; uint8_t qh[4]; uint8_t qs[16]}                    4 + 4 + 16 = 24 bytes / 32
    "q5_1": _gguf(24, 32, "block_q5_1 (fp16 scale and min, 32 5-bit quants)"),
    # block_q8_0 {ggml_half d; int8_t qs[32]}                                       2 + 32 = 34 bytes / 32
    "q8_0": _gguf(34, 32, "block_q8_0 (fp16 scale, 32 int8 quants)"),
    # block_q2_K {uint8_t scales[16]; uint8_t qs[64]; ggml_half d, dmin}            16 + 64 + 4 = 84 bytes / 256
    "q2_k": _gguf(84, 256, "block_q2_K (2-bit quants, 4-bit sub-block scales and mins)"),
    # block_q3_K {uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; ggml_half d} 32 + 64 + 12 + 2 = 110 / 256
    "q3_k": _gguf(110, 256, "block_q3_K (3-bit quants, 6-bit sub-block scales)"),
    # block_q4_K {ggml_half d, dmin; uint8_t scales[12]; uint8_t qs[128]}           4 + 12 + 128 = 144 bytes / 256
    "q4_k": _gguf(144, 256, "block_q4_K (4-bit quants, 6-bit sub-block scales and mins)"),
    # block_q5_K {ggml_half d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]}  4 + 12 + 32 + 128 = 176
    "q5_k": _gguf(176, 256, "block_q5_K (5-bit quants, 6-bit sub-block scales and mins)"),
    # block_q6_K {uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d}  128 + 64 + 16 + 2 = 210 / 256
    "q6_k": _gguf(210, 256, "block_q6_K (6-bit quants, 8-bit sub-block scales)"),
    # the file types that mix tensor types: costed at their base type
    "q3_k_m": _gguf(110, 256, "Q3_K_M costed as block_q3_K", _mix("Q3_K", "Q3_K_M", "3.4375")),
    "q4_k_s": _gguf(144, 256, "Q4_K_S costed as block_q4_K", _mix("Q4_K", "Q4_K_S", "4.5")),
    "q4_k_m": _gguf(144, 256, "Q4_K_M costed as block_q4_K", _mix("Q4_K", "Q4_K_M", "4.5")),
    "q5_k_s": _gguf(176, 256, "Q5_K_S costed as block_q5_K", _mix("Q5_K", "Q5_K_S", "5.5")),
    "q5_k_m": _gguf(176, 256, "Q5_K_M costed as block_q5_K", _mix("Q5_K", "Q5_K_M", "5.5")),
}


def check(name: str, what: str = "dtype") -> Format:
    """The format called ``name``; an unknown one suggests the closest."""
    if name not in FORMATS:
        raise UsageError(f"unknown {what} '{name}'{did_you_mean(name, FORMATS)}; choose from {', '.join(FORMATS)}")
    return FORMATS[name]


def bits(name: str) -> Fraction:
    """Bits per element of a format, exactly (``q6_k`` is 210·8/256 = 105/16 = 6.5625)."""
    return check(name).bits


def to_bytes(elements: int | Fraction, name: str) -> int:
    """Whole bytes for ``elements`` values of a format: elements × bits / 8, rounded up."""
    return math.ceil(elements * bits(name) / 8)


@dataclass(frozen=True)
class Precision:
    """The compute dtype (whose peak applies) and the three storage formats."""

    compute: str
    weight: str
    act: str
    kv: str

    @classmethod
    def of(cls, dtype: str, weight: str | None = None, act: str | None = None, kv: str | None = None) -> Precision:
        """``dtype`` computes and is the default of each format not given."""
        from .cost import dtype_bits

        if dtype not in FORMATS or dtype not in _compute_dtypes():
            if dtype in FORMATS:
                raise UsageError(
                    f"--dtype {dtype} is a storage format, not one of the compute dtypes devices have peaks for "
                    f"({', '.join(_compute_dtypes())}): pass it as --weight-dtype (or --act-dtype, --kv-dtype) "
                    "and --dtype the dtype the device computes in"
                )
            dtype_bits(dtype)  # the usual unknown-dtype message
        chosen = cls(dtype, weight or dtype, act or dtype, kv or dtype)
        for flag, value in (("--weight-dtype", chosen.weight), ("--act-dtype", chosen.act), ("--kv-dtype", chosen.kv)):
            check(value, f"{flag} format")
        return chosen

    @property
    def uniform(self) -> bool:
        """One format for everything, and the compute dtype's: bytes as the single-dtype path counts them."""
        return self.weight == self.act == self.kv == self.compute

    def weight_bytes(self, elements: int) -> int:
        return to_bytes(elements, self.weight)

    def act_bytes(self, elements: int) -> int:
        return to_bytes(elements, self.act)

    def kv_bytes(self, elements: int) -> int:
        return to_bytes(elements, self.kv)

    def traffic_bits(self, parts: Mapping[str, int]) -> Fraction:
        """Exact bits of a split (:func:`split`): each part at its format."""
        return Fraction(
            parts["weight_read"] * bits(self.weight)
            + (parts["act_read"] + parts["act_write"]) * bits(self.act)
            + (parts["kv_read"] + parts["kv_write"]) * bits(self.kv)
        )

    def traffic_bytes(self, parts: Mapping[str, int]) -> int:
        """Whole bytes of a split (:func:`split`): each part at its format, rounded up once."""
        return math.ceil(self.traffic_bits(parts) / 8)

    def notes(self) -> list[str]:
        """What is approximated, one line per format that is."""
        seen = dict.fromkeys((self.weight, self.act, self.kv))
        return [f"{name}: {FORMATS[name].approximation}" for name in seen if FORMATS[name].approximation]

    def data(self) -> dict[str, Any]:
        """The JSON record: the three formats with their exact bits (as "9/2" strings) and the notes."""
        return {
            "compute": self.compute,
            "weight": self.weight,
            "act": self.act,
            "kv": self.kv,
            "bits": {k: str(bits(getattr(self, k))) for k in ("weight", "act", "kv")},
            "notes": self.notes(),
        }


def _compute_dtypes() -> tuple[str, ...]:
    from .cost import DTYPE_BITS

    return tuple(DTYPE_BITS)


PARTS = ("weight_read", "act_read", "kv_read", "act_write", "kv_write")


def _split_one(op: str, read: Any, write: Any, sizes: list[Any], cached: list[bool], has_cache: bool,
               weights: Any, out_size: Any, mn: Any) -> dict[str, Any]:  # fmt: skip
    """One layer's split, for ints (``mn`` = min) and closed forms (``mn`` = sympy.Min) alike."""
    kv_in = sum((s for s, c in zip(sizes, cached) if c), 0 * read)
    act_in = sum((s for s, c in zip(sizes, cached) if not c), 0 * read)
    kv_read = mn(kv_in, read) if kv_in != 0 else 0 * read
    act_read = mn(act_in, read - kv_read)
    rest = read - kv_read - act_read
    if has_cache and op != "kv_cache":  # a caching attention layer: beyond its weights, the cached k and v
        own = mn(rest, weights)
        kv_read, rest = kv_read + rest - own, own
    if op == "kv_cache":
        act_write, kv_write = 0 * write, write
    elif has_cache:
        act_write = mn(write, out_size)
        kv_write = write - act_write
    else:
        act_write, kv_write = write, 0 * write
    return dict(weight_read=rest, act_read=act_read, kv_read=kv_read, act_write=act_write, kv_write=kv_write)


def _from_cache(graph: Any) -> set[int]:
    """Nodes whose output is cached keys or values: kv_cache layers, and views of them (no traffic)."""
    found: set[int] = set()
    for index, node in enumerate(graph.nodes):
        view = node.costs["read"] == 0 and node.costs["write"] == 0
        if node.op == "kv_cache" or (view and node.sources and all(s in found for s in node.sources)):
            found.add(index)
    return found


def split(result: Any) -> list[dict[str, int]]:
    """Per layer of a numeric result, its reads and writes in elements by what they are (see the module
    doc): ``weight_read``, ``act_read``, ``kv_read``, ``act_write``, ``kv_write``; every copy counted.
    The parts sum to the layer's ``read`` and ``write``.
    """
    from math import prod

    import sympy

    graph = result.graph
    symbols = {v.name: v.symbol for v in graph.arch.variables.values()}
    subs = {symbols[k]: sympy.Rational(v) for k, v in result.values.items() if k in symbols}
    cached = _from_cache(graph)
    out = []
    for r in result.nodes:
        node, v = graph.nodes[r.index], r.values
        sizes = [r.count * prod(int(d.xreplace(subs)) for d in shape) for shape in node.inputs]
        out.append(_split_one(node.op, v["read"], v["write"], sizes, [s in cached for s in r.sources],
                              bool(v["cache"]), v["params"] + v["buffers"], r.count * prod(r.output), min))  # fmt: skip
    return out


def split_symbolic(graph: Any, nodes: list[tuple[str, dict[str, Any]]], subs: Mapping[Any, Any]) -> list[dict]:
    """:func:`split` in closed form: ``nodes`` from :func:`symcost.evaluation.symbolic_nodes` of ``graph``
    (one per graph node, in order) with ``subs`` from :func:`symcost.evaluation.resolve` (symbolic)."""
    import sympy

    cached = _from_cache(graph)
    out = []
    for node, (_, v) in zip(graph.nodes, nodes):
        count = node.count.xreplace(subs)
        sizes = [count * sympy.Mul(*(d.xreplace(subs) for d in shape)) for shape in node.inputs]
        shape = next(iter(node.outputs.values()), ())
        out_size = count * sympy.Mul(*(d.xreplace(subs) for d in shape))
        has_cache = not (node.costs.get("cache", 0) == 0)
        out.append(_split_one(node.op, v["read"], v["write"], sizes, [s in cached for s in node.sources],
                              has_cache, v["params"] + v["buffers"], out_size, sympy.Min))  # fmt: skip
    return out


def symbolic_bytes(parts: Mapping[str, Any], precision: Precision) -> Any:
    """A split's bytes in closed form, rounded up to whole bytes as :meth:`Precision.traffic_bytes`."""
    import sympy

    def r(name: str) -> Any:
        b = bits(name)
        return sympy.Rational(b.numerator, b.denominator)

    exact = (
        parts["weight_read"] * r(precision.weight)
        + (parts["act_read"] + parts["act_write"]) * r(precision.act)
        + (parts["kv_read"] + parts["kv_write"]) * r(precision.kv)
    ) / 8
    return sympy.ceiling(exact)


def symbolic_class_bytes(elements: Any, name: str) -> Any:
    """Elements of one format in whole bytes, in closed form."""
    import sympy

    b = bits(name)
    return sympy.ceiling(elements * sympy.Rational(b.numerator, b.denominator) / 8)


def totals(result: Any) -> dict[str, int]:
    """The whole network's :func:`split`."""
    parts = split(result)
    return {key: sum(p[key] for p in parts) for key in PARTS}
