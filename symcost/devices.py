"""Device specs: peak throughput per dtype, memory bandwidth and capacity, from sourced YAML files.

One file per device in ``devices/`` (shipped in the wheel), plus the user's own with
``--device-file``. Every figure is kept exactly (``19.5`` TFLOP/s is ``Fraction(39, 2) * 10**12``),
so a hand-computed roofline case comes out exact.

A peak is *dense* throughput in 10^12 operations per second (TFLOP/s for floating point, TOP/s for
integers; a multiply-accumulate is 2 operations, the vendors' convention). It is written as a
number or as ``TOPS = clock × MAC units × 2``, the usual rule for a MAC array. Google's first TPU is
counted so: "a 65,536 8-bit MAC matrix multiply unit that offers a peak throughput of 92 TeraOps/second"
at its 700 MHz clock, 2 × 0.7 GHz × 65,536 = 91.75 (Jouppi et al., "In-Datacenter Performance Analysis
of a Tensor Processing Unit", ISCA 2017):

>>> d = load_text('''
... name: npu
... summary: a 1 GHz NPU with 3,000 int8 MAC units
... kind: npu
... peak: {int8: {clock: 1.0, mac_units: 3000}}
... memory: {bandwidth: 34, capacity: 8}
... source: the reader's own datasheet
... verified: false
... ''', "npu.yaml")
>>> d.peak("int8") == 6 * 10**12, d.bandwidth == 34 * 10**9
(True, True)

Which peak applies follows the compute dtype. "1 TFLOPS ≈ 2 TOPS" is a ratio of one chip's int8 and
fp16 rates (2 on an A100, 1 on a TPU v4), not a unit conversion: both count operations per second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from . import cost
from .cost import DTYPE_BITS
from .errors import DeviceError, Location, UsageError, did_you_mean
from .yamlio import Mapping, check_keys, load_file, mapping_at, text_at, texts_at
from .yamlio import load_text as yaml_load_text

TERA = 10**12
GIGA = 10**9
MEGA = 10**6

KINDS = ("gpu", "tpu", "npu", "cpu", "soc")
_TOP_KEYS = {
    "name", "summary", "aliases", "kind", "peak", "sparse", "memory", "cache", "units", "unit_name",
    "clock", "tile", "source", "verified", "verification", "notes",
}  # fmt: skip
_MEMORY_KEYS = {"bandwidth", "capacity", "capacity_unit", "type"}
_CAPACITY_UNITS = {"GB": GIGA, "GiB": 2**30}


@dataclass(frozen=True)
class Device:
    """One device. Rates are exact: ``peaks`` in operations/s, ``bandwidth`` in bytes/s."""

    name: str
    summary: str
    kind: str
    peaks: dict[str, Fraction]  # dtype -> dense ops/s
    sparse: dict[str, Fraction]  # dtype -> ops/s with 2:4 sparsity (shown, never used by default)
    bandwidth: Fraction  # bytes/s
    capacity: int  # bytes
    source: str
    verified: bool
    aliases: tuple[str, ...] = ()
    memory_type: str = ""
    cache: int | None = None  # bytes of on-chip last-level cache
    units: int | None = None  # parallel units (SMs, cores)
    unit_name: str = ""
    clock: Fraction | None = None  # Hz
    tile: tuple[int, int] | None = None  # (rows, cols) of one GEMM work unit
    verification: str = ""
    notes: tuple[str, ...] = ()
    path: str = ""
    peak_loc: Location | None = field(default=None, compare=False)

    def peak(self, dtype: str) -> Fraction:
        """Dense operations/s at ``dtype``; a located error when the device has no such figure."""
        cost.dtype_bits(dtype)  # the one check of a dtype's name (an unknown one is a UsageError there)
        if dtype not in self.peaks:
            raise DeviceError(
                f"device '{self.name}' has no {dtype} peak (it has {', '.join(self.peaks)}): "
                f"choose one of those with --dtype, or add '{dtype}' under 'peak'",
                self.peak_loc,
            )
        return self.peaks[dtype]

    def ridge(self, dtype: str) -> Fraction:
        """The roofline's ridge point in FLOP/byte: peak ÷ bandwidth (Williams et al. 2009)."""
        return self.peak(dtype) / self.bandwidth


# ---- reading --------------------------------------------------------------------------------


def _number(value: Any, what: str, loc: Location | None, *, positive: bool = True) -> Fraction:
    """A YAML int or float as an exact Fraction (``19.5`` → 39/2, via its shortest decimal form)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceError(f"{what} must be a number, got {value!r}", loc)
    from .budgets import exact_number

    exact = exact_number(value, what, loc, DeviceError)  # NaN, inf, a denormal or 1e400 refused, located
    if positive and exact <= 0:
        raise DeviceError(f"{what} must be positive, got {value}", loc)
    return exact


def _peaks(raw: Any, what: str, loc: Location, required: bool) -> dict[str, Fraction]:
    table = mapping_at(raw, f"'{what}'", loc, DeviceError, optional=not required)
    if required and not table:
        raise DeviceError(f"'{what}' needs at least one dtype (one of {', '.join(DTYPE_BITS)})", loc)
    peaks: dict[str, Fraction] = {}
    for dtype, value in table.items():
        key_loc = table.key_loc(dtype)
        if dtype not in DTYPE_BITS:
            raise DeviceError(
                f"{what}: unknown dtype '{dtype}'{did_you_mean(str(dtype), DTYPE_BITS)}; "
                f"known: {', '.join(DTYPE_BITS)}",
                key_loc,
            )
        value_loc = table.loc_of(dtype)
        if isinstance(value, Mapping):
            check_keys(value, {"clock", "mac_units"}, f"{what} {dtype}", DeviceError)
            for key in ("clock", "mac_units"):
                if key not in value:
                    raise DeviceError(
                        f"{what} {dtype}: give 'clock' (GHz) and 'mac_units' (TOPS = clock × MAC units × 2)", value_loc
                    )
            clock = _number(value["clock"], f"{what} {dtype} clock", value.loc_of("clock"))
            units = _number(value["mac_units"], f"{what} {dtype} mac_units", value.loc_of("mac_units"))
            peaks[dtype] = 2 * clock * GIGA * units  # TOPS = clock × MAC units × 2, a MAC being 2 ops
        else:
            peaks[dtype] = _number(value, f"{what} {dtype}", value_loc) * TERA
    return peaks


def load_data(top: Any, path: str) -> Device:
    """A parsed device file (located YAML) → a :class:`Device`."""
    top = mapping_at(top, "a device file", getattr(top, "loc", Location(path, 1, 1)), DeviceError)
    check_keys(top, _TOP_KEYS, "device", DeviceError)
    name = text_at(top, "name", DeviceError, required=True)
    kind = text_at(top, "kind", DeviceError, required=True)
    if kind not in KINDS:
        raise DeviceError(
            f"unknown kind '{kind}'{did_you_mean(kind, KINDS)}; choose from {', '.join(KINDS)}", top.loc_of("kind")
        )
    if "peak" not in top:
        raise DeviceError("missing 'peak' (dense TFLOP/s or TOP/s per dtype)", top.loc)
    peaks = _peaks(top["peak"], "peak", top.loc_of("peak"), required=True)
    sparse = _peaks(top.get("sparse"), "sparse", top.loc_of("sparse") if "sparse" in top else top.loc, required=False)
    if "memory" not in top:
        raise DeviceError("missing 'memory' (bandwidth in GB/s and capacity)", top.loc)
    memory = mapping_at(top["memory"], "'memory'", top.loc_of("memory"), DeviceError)
    check_keys(memory, _MEMORY_KEYS, "memory", DeviceError)
    for key in ("bandwidth", "capacity"):
        if key not in memory:
            raise DeviceError(f"memory: missing '{key}'", memory.loc)
    bandwidth = _number(memory["bandwidth"], "memory bandwidth (GB/s)", memory.loc_of("bandwidth")) * GIGA
    unit = text_at(memory, "capacity_unit", DeviceError) or "GB"
    if unit not in _CAPACITY_UNITS:
        raise DeviceError(f"capacity_unit must be GB or GiB, got '{unit}'", memory.loc_of("capacity_unit"))
    capacity = _number(memory["capacity"], "memory capacity", memory.loc_of("capacity")) * _CAPACITY_UNITS[unit]
    verified = top.get("verified")
    if not isinstance(verified, bool):
        raise DeviceError("'verified' must be true or false (say whether the figures were checked against the source)",
                          top.loc_of("verified") if "verified" in top else top.loc)  # fmt: skip
    units = None
    if "units" in top:
        count = _number(top["units"], "units", top.loc_of("units"))
        if count.denominator != 1:
            raise DeviceError(f"units must be a whole number, got {top['units']}", top.loc_of("units"))
        units = int(count)
        if not text_at(top, "unit_name", DeviceError):
            raise DeviceError("'units' needs a 'unit_name' (SM, core, ...)", top.loc_of("units"))
    tile = None
    if "tile" in top:
        raw = top["tile"]
        if (
            not isinstance(raw, list)
            or len(raw) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in raw)
        ):
            raise DeviceError("'tile' must be two whole numbers [rows, cols]", top.loc_of("tile"))
        tile = (raw[0], raw[1])
    aliases = tuple(texts_at(top, "aliases", DeviceError))
    return Device(
        name=name,
        summary=text_at(top, "summary", DeviceError, required=True),
        kind=kind,
        peaks=peaks,
        sparse=sparse,
        bandwidth=bandwidth,
        capacity=int(capacity),
        source=text_at(top, "source", DeviceError, required=True),
        verified=verified,
        aliases=aliases,
        memory_type=text_at(memory, "type", DeviceError),
        cache=int(_number(top["cache"], "cache (MB)", top.loc_of("cache")) * MEGA) if "cache" in top else None,
        units=units,
        unit_name=text_at(top, "unit_name", DeviceError),
        clock=_number(top["clock"], "clock (GHz)", top.loc_of("clock")) * GIGA if "clock" in top else None,
        tile=tile,
        verification=text_at(top, "verification", DeviceError),
        notes=tuple(texts_at(top, "notes", DeviceError)),
        path=path,
        peak_loc=top.loc_of("peak"),
    )


def load_text(text: str, name: str = "<string>") -> Device:
    return load_data(yaml_load_text(text, name), name)


def load_path(path: str | Path, display_name: str | None = None) -> Device:
    shown = display_name or str(path)
    return load_data(load_file(path, shown), shown)


# ---- finding --------------------------------------------------------------------------------


def bundled() -> list[Device]:
    """Every bundled device, sorted by name."""
    from .bundled import data_dir

    folder = data_dir("devices")
    found = []
    for path in sorted(folder.glob("*.yaml")):
        device = load_path(path, f"devices/{path.name}")
        if device.name != path.stem:  # bundled files are named after their device, so users can find them
            raise DeviceError(
                f"device '{device.name}' must be in a file named {device.name}.yaml", Location(device.path)
            )
        found.append(device)
    return found


def catalog(files: list[str] | tuple[str, ...] = ()) -> list[Device]:
    """The user's device files first (they win on a name clash), then the bundled ones."""
    own = [load_path(f) for f in files]
    names = {n for d in own for n in (d.name, *d.aliases)}
    return own + [d for d in bundled() if d.name not in names]


def find(name: str, files: list[str] | tuple[str, ...] = ()) -> Device:
    """A device by name or alias, or by the path of a device file."""
    if Path(name).suffix in (".yaml", ".yml"):
        return load_path(name)
    devices = catalog(files)
    for device in devices:
        if name == device.name or name in device.aliases:
            return device
    known = [d.name for d in devices]
    raise UsageError(
        f"unknown device '{name}'{did_you_mean(name, known + [a for d in devices for a in d.aliases])}; "
        f"`symcost list devices` shows {', '.join(known)}"
    )
