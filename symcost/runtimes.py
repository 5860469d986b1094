"""Runtimes: how a framework runs a network on a device, as data beside the devices.

A roofline (:mod:`symcost.roofline`) charges every layer its own trip to memory at the datasheet's
peaks. A real runtime fuses layers into kernels (a batch norm folded into the convolution before
it, an activation run as the convolution's epilogue), reaches only part of the peaks, and pays a
fixed cost per kernel it launches (and, in PyTorch eager, per operation it dispatches from Python).
One file per runtime in ``runtimes/`` (shipped in the wheel) states those rules and constants; the
user's own (``--runtime-file``, or what ``symcost calibrate`` writes) the same way.

>>> r = load_text('''
... name: mine
... summary: a runtime that fuses epilogues
... fuse: [epilogue]
... overhead: {kernel_us: 4}
... compute: {efficiency: 0.5}
... memory: {efficiency: 0.8}
... ''', "mine.yaml")
>>> r.kernel_s, r.compute_efficiency, r.memory_efficiency, r.fuse
(Fraction(1, 250000), Fraction(1, 2), Fraction(4, 5), ('epilogue',))

Only the ``roofline`` runtime (no fusion, no overhead, the full peaks) may call its latency a bound:

>>> find("roofline").bound, find("tensorrt").bound
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import DeviceError, Location, UsageError, did_you_mean
from .yamlio import check_keys, load_file, mapping_at, text_at, texts_at
from .yamlio import load_text as yaml_load_text

#: The runtime an estimate assumes when none is named (see docs/devices.md, "Runtimes"): an optimized
#: deployment of any network, the case a user asking "how fast will it run" most often means. Its held-out
#: error is printed with every estimate; for LLM serving name `tensorrt-llm` or `vllm`.
DEFAULT = "tensorrt"

#: The fusion rules a runtime may state, each a rule on the graph (see :mod:`symcost.latency`):
FUSION_RULES = {
    "bn_fold": "a batch norm right after a convolution or linear layer is folded into its weights: no bytes",
    "epilogue": "an activation right after a GEMM-class kernel (convolution, linear, attention) runs as its "
    "epilogue: its bytes are read + write - 2 x the chained tensor (0 for a unary op)",
    "pointwise": "an activation, batch norm, add or norm right after a kernel that is not GEMM-class joins it "
    "(Inductor's and TensorRT's pointwise fusion): read + write - 2 x the chained tensor",
    "residual": "with epilogue or pointwise: an add, sub or mul fuses too, reading only its other operand",
    "norm": "with epilogue or pointwise: a layer norm or RMS norm fuses too, reading only its weights",
    "horizontal": "a linear layer reading the same tensor as an earlier kernel of linear layers of the same module "
    "joins it: one GEMM over the concatenated weights (fused QKV, merged gate/up); its bytes are its weights + its "
    "output",
    "cache": "a kv_cache write joins the kernel that produced the new keys or values, moving only its write; a "
    "contiguous right after an attention kernel joins it with no bytes (the attention writes that layout)",
}
_TOP_KEYS = {"name", "summary", "bound", "fuse", "autocast", "overhead", "compute", "memory", "l2", "validation", "fitted",
             "sources", "notes"}  # fmt: skip
_VALIDATION_KEYS = {"error_pct", "measurements", "median_ratio", "within_25_pct", "within_2x_pct", "how"}


@dataclass(frozen=True)
class Runtime:
    """One runtime's rules and constants, exact (``Fraction`` seconds and fractions)."""

    name: str
    summary: str
    bound: bool = False  # only the pure roofline: its latency is a lower bound
    fuse: tuple[str, ...] = ()
    kernel_s: Fraction = Fraction(0)  # per launched kernel
    op_s: Fraction = Fraction(0)  # per operation dispatched by the framework (eager)
    overlap: bool = False  # the CPU dispatches while the GPU runs: a kernel takes max(its work, its dispatch)
    autocast: bool = False  # at a 16-bit dtype, torch.autocast casts each GEMM's fp32 weights every pass
    compute_efficiency: Fraction = Fraction(1)  # of the dtype's peak, on GEMM-class kernels
    half_flops: Fraction = Fraction(0)  # a kernel of this many FLOPs reaches half the efficiency
    waves: bool = False  # tile and wave quantization on GEMM-class kernels
    tiles: tuple[tuple[int, int], ...] = ()  # the GEMM tiles a library chooses from (default: the device's)
    memory_efficiency: Fraction = Fraction(1)  # of the bandwidth
    l2_fraction: Fraction = Fraction(0)  # a producer's output up to this share of L2 is read from L2
    validation: dict[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    path: str = ""

    def error_text(self) -> str:
        """The validation's expected error, as an estimate prints it ('' when not validated)."""
        v = self.validation
        if not v:
            return "not validated against measurements"
        return f"±{v['error_pct']}%, held out on {v['measurements']} measurements"


def _fraction(value: Any, what: str, loc: Location | None, *, low: int = 0, high: int | None = None) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceError(f"{what} must be a number, got {value!r}", loc)
    exact = Fraction(value) if isinstance(value, int) else Fraction(getattr(value, "text", repr(value)))
    if exact < low or (high is not None and exact > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise DeviceError(f"{what} must be {bounds}, got {value}", loc)
    return exact


def load_data(top: Any, path: str) -> Runtime:
    """A parsed runtime file (located YAML) → a :class:`Runtime`; every mistake is one located error."""
    top = mapping_at(top, "a runtime file", getattr(top, "loc", Location(path, 1, 1)), DeviceError)
    check_keys(top, _TOP_KEYS, "runtime", DeviceError)
    name = text_at(top, "name", DeviceError, required=True)
    bound = top.get("bound", False)
    if not isinstance(bound, bool):
        raise DeviceError("'bound' must be true or false", top.loc_of("bound"))
    fuse = texts_at(top, "fuse", DeviceError)
    for i, rule in enumerate(fuse):
        if rule not in FUSION_RULES:
            loc = top["fuse"].item_locs[i] if hasattr(top["fuse"], "item_locs") else top.loc_of("fuse")
            raise DeviceError(
                f"unknown fusion rule '{rule}'{did_you_mean(rule, FUSION_RULES)}; known: {', '.join(FUSION_RULES)}", loc
            )
    sections = {}
    for key, allowed in (("overhead", {"kernel_us", "op_us", "overlap"}), ("compute", {"efficiency", "half_flops", "waves", "tiles"}),
                         ("memory", {"efficiency"}), ("l2", {"fraction"})):  # fmt: skip
        section = mapping_at(top.get(key), f"'{key}'", top.loc_of(key) if key in top else top.loc, DeviceError,
                             optional=True)  # fmt: skip
        check_keys(section, allowed, key, DeviceError)
        sections[key] = section

    def number(key: str, sub: str, default: int, high: int | None = None, low: int = 0) -> Fraction:
        section = sections[key]
        if sub not in section:
            return Fraction(default)
        return _fraction(section[sub], f"{key} {sub}", section.loc_of(sub), low=low, high=high)

    compute_eff = number("compute", "efficiency", 1, high=1)
    memory_eff = number("memory", "efficiency", 1, high=1)
    for key, value in (("compute", compute_eff), ("memory", memory_eff)):
        if value == 0:
            raise DeviceError(f"{key} efficiency must be above 0", sections[key].loc_of("efficiency"))
    waves = sections["compute"].get("waves", False)
    if not isinstance(waves, bool):
        raise DeviceError("compute waves must be true or false", sections["compute"].loc_of("waves"))
    overlap = sections["overhead"].get("overlap", False)
    if not isinstance(overlap, bool):
        raise DeviceError("overhead overlap must be true or false", sections["overhead"].loc_of("overlap"))
    autocast = top.get("autocast", False)
    if not isinstance(autocast, bool):
        raise DeviceError("'autocast' must be true or false", top.loc_of("autocast"))
    tiles = []
    raw_tiles = sections["compute"].get("tiles", [])
    if not isinstance(raw_tiles, list) or not all(
        isinstance(t, list)
        and len(t) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in t)
        for t in raw_tiles
    ):
        raise DeviceError("compute tiles must be a list of [rows, cols] pairs of whole numbers",
                          sections["compute"].loc_of("tiles"))  # fmt: skip
    tiles = [(t[0], t[1]) for t in raw_tiles]
    validation: dict[str, Any] = {}
    if "validation" in top:
        raw = mapping_at(top["validation"], "'validation'", top.loc_of("validation"), DeviceError)
        check_keys(raw, _VALIDATION_KEYS, "validation", DeviceError)
        for key in ("error_pct", "measurements"):
            if key not in raw:
                raise DeviceError(f"validation: missing '{key}'", raw.loc)
        validation = {k: raw[k] for k in raw}
    if bound and (fuse or autocast or compute_eff != 1 or memory_eff != 1 or sections["overhead"]):
        raise DeviceError("a runtime with 'bound: true' must be the pure roofline: no fusion, no overhead, "
                          "efficiencies 1", top.loc_of("bound"))  # fmt: skip
    return Runtime(
        name=name,
        summary=text_at(top, "summary", DeviceError, required=True),
        bound=bound,
        fuse=tuple(fuse),
        kernel_s=number("overhead", "kernel_us", 0) / 10**6,
        op_s=number("overhead", "op_us", 0) / 10**6,
        overlap=overlap,
        autocast=autocast,
        compute_efficiency=compute_eff,
        half_flops=number("compute", "half_flops", 0),
        waves=waves,
        tiles=tuple(tiles),
        memory_efficiency=memory_eff,
        l2_fraction=number("l2", "fraction", 0, high=1),
        validation=validation,
        sources=tuple(texts_at(top, "sources", DeviceError)),
        notes=tuple(texts_at(top, "notes", DeviceError)),
        path=path,
    )


def load_text(text: str, name: str = "<string>") -> Runtime:
    return load_data(yaml_load_text(text, name), name)


def load_path(path: str | Path, display_name: str | None = None) -> Runtime:
    shown = display_name or str(path)
    return load_data(load_file(path, shown), shown)


def bundled() -> list[Runtime]:
    """Every bundled runtime, sorted by name."""
    from .bundled import data_dir

    found = []
    for path in sorted(data_dir("runtimes").glob("*.yaml")):
        runtime = load_path(path, f"runtimes/{path.name}")
        if runtime.name != path.stem:
            raise DeviceError(f"runtime '{runtime.name}' must be in a file named {runtime.name}.yaml",
                              Location(runtime.path))  # fmt: skip
        found.append(runtime)
    return found


def find(name: str | None = None, file: str | None = None) -> Runtime:
    """A runtime by name (default :data:`DEFAULT`), or from a runtime file."""
    if file is not None:
        if name is not None:
            raise UsageError("give --runtime or --runtime-file, not both")
        return load_path(file)
    name = name or DEFAULT
    if Path(name).suffix in (".yaml", ".yml"):
        return load_path(name)
    known = bundled()
    for runtime in known:
        if runtime.name == name:
            return runtime
    names = [r.name for r in known]
    raise UsageError(f"unknown runtime '{name}'{did_you_mean(name, names)}; known: {', '.join(names)}")
