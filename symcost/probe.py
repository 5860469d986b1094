"""``symcost probe``: measure this machine's GEMM FLOP/s and memory bandwidth into a device file.

Two micro-benchmarks, each the best of ``repeat`` timed runs after one untimed run:

- compute: an ``n x n`` by ``n x n`` matrix product in torch (``torch.mm``), ``2 n^3`` floating-point operations
  (FlopCounterMode's count for mm) per run, for each dtype asked for (fp32 by default);
- memory: a copy of a ``size`` MB fp32 tensor into another (``Tensor.copy_``), which reads and writes every byte:
  ``2 x size`` bytes moved per run.

The best run, not the median, is what a peak means: the device files hold the attainable ceilings that the
roofline divides by. The written file has the fields of ``devices/*.yaml`` (see symcost/devices.py), ``kind:
cpu``, ``verified: false`` and notes that say it was probed, when, and how; ``--device-file`` takes it:

    symcost probe -o mycpu.yaml
    symcost eval resnet50 --device-file mycpu.yaml --device mycpu

torch is imported here only (the ``torch`` extra). A probe of 87.25 GFLOP/s and 6.049 GB/s (one core of a
shared x86 machine) becomes this device, figures kept to four digits:

>>> from symcost.devices import load_text
>>> d = load_text(device_yaml("mycpu", Probe({"fp32": 87.25e9}, 6.049e9, 2048, 256, 5)), "mycpu.yaml")
>>> d.peak("fp32"), d.bandwidth, d.kind, d.verified
(Fraction(87250000000, 1), Fraction(6049000000, 1), 'cpu', False)
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .errors import UsageError
from .files import write_atomic
from .measure import TORCH_DTYPES, _torch, describe_machine


def quote(text: str) -> str:
    """A YAML string that cannot open a key, a comment or a tag: JSON's quoting (JSON is YAML)."""
    return json.dumps(text)


@dataclass
class Probe:
    peaks: dict[str, float]  # dtype -> FLOP/s
    bandwidth: float  # bytes/s
    gemm_n: int
    copy_mb: int
    repeat: int


def _best_seconds(torch: Any, call: Any, repeat: int) -> float:
    with torch.inference_mode():
        call()  # warm-up: allocation, thread pool start, first-touch of the pages
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            call()
            best = min(best, time.perf_counter() - start)
    return best


def run(*, dtypes: tuple[str, ...] = ("fp32",), gemm_n: int = 2048, copy_mb: int = 256, repeat: int = 5,
        threads: int | None = None) -> Probe:  # fmt: skip
    """Time the GEMM at each dtype and the copy; rates are the best of ``repeat`` runs."""
    torch = _torch(threads)
    if gemm_n < 1 or copy_mb < 1 or repeat < 1:
        raise UsageError("--gemm-size, --copy-mb and --repeat must be at least 1")
    peaks: dict[str, float] = {}
    for dtype in dtypes:
        if dtype not in TORCH_DTYPES:
            raise UsageError(f"symcost probe times {', '.join(TORCH_DTYPES)}, not '{dtype}'")
        t = getattr(torch, TORCH_DTYPES[dtype])
        a, b = torch.randn(gemm_n, gemm_n, dtype=t), torch.randn(gemm_n, gemm_n, dtype=t)
        seconds = _best_seconds(torch, lambda a=a, b=b: torch.mm(a, b), repeat)
        peaks[dtype] = 2 * gemm_n**3 / seconds
    elements = copy_mb * 10**6 // 4
    src, dst = torch.randn(elements), torch.empty(elements)
    seconds = _best_seconds(torch, lambda: dst.copy_(src), repeat)
    return Probe(peaks, 2 * elements * 4 / seconds, gemm_n, copy_mb, repeat)


def _sig(value: float) -> float:
    """Four significant digits: a probe is not more precise than that."""
    return float(f"{value:.4g}")


def memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def device_yaml(name: str, probe: Probe) -> str:
    """The device file's text (the schema of symcost/devices.py)."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = describe_machine()
    capacity = memory_bytes()
    lines = [
        f"# Probed by symcost probe on {when}: {machine}.",
        "# peak: the best of the timed torch.mm runs, 2 n^3 operations each; bandwidth: the best timed copy of",
        "# an fp32 tensor, 2 x its bytes moved (read + written). Measured ceilings, not a datasheet's.",
        f"name: {quote(name)}",
        f"summary: {quote(f'this machine, probed {when} ({platform.machine()}, {os.cpu_count()} CPUs)')}",
        "kind: cpu",
        "peak:                    # dense, 10^12 ops/s, measured",
    ]
    for dtype, flops in probe.peaks.items():
        lines.append(f"  {dtype}: {_sig(flops / 1e12)}")
    lines += [
        "memory:",
        f"  bandwidth: {_sig(probe.bandwidth / 1e9)}        # GB/s, measured",
    ]
    if capacity:
        lines += [f"  capacity: {_sig(capacity / 2**30)}", "  capacity_unit: GiB"]
    else:  # pragma: no cover
        lines += ["  capacity: 1", "  capacity_unit: GiB"]
    units = os.cpu_count()
    if units:
        lines += [f"units: {units}", "unit_name: CPU"]
    source = f"symcost probe, {when}, on {machine}"
    lines += [
        f"source: {quote(source)}",
        "verified: false",
        f"verification: {quote('measured on this machine by symcost probe; no datasheet')}",
        "notes:",
        f"  - {quote(f'peak: torch.mm of two {probe.gemm_n} x {probe.gemm_n} matrices, best of {probe.repeat} runs after one warm-up')}",
        f"  - {quote(f'bandwidth: Tensor.copy_ of {probe.copy_mb} MB of fp32, best of {probe.repeat} runs after one warm-up')}",
        f"  - {quote('a shared or throttled machine measures lower than its ceiling: probe it idle')}",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def write(path: str, name: str, probe: Probe) -> str:
    text = device_yaml(name, probe)
    write_atomic(path, text)
    return text
