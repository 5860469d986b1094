"""Device files: the bundled library, the user's own files, and broken files users write.

Every broken file in ``tests/bad_devices`` gives one located ``Error:`` line and exit 1. Each
file's first line says what: ``# expect: LINE:COL: text``.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

from symcost import devices, runtimes
from symcost.errors import DeviceError
from tests.helpers import invoke

BAD = sorted((Path(__file__).parent / "bad_devices").glob("*.yaml"))

NPU = """\
# TOPS = clock x MAC units x 2: 1.0 GHz x 3000 x 2 = 6 TOPS
name: my_npu
summary: the reader's NPU
aliases: [npu]
kind: npu
peak:
  int8: {clock: 1.0, mac_units: 3000}
  fp16: 1.5
sparse: {int8: 12}
memory: {bandwidth: 34.1, capacity: 8, capacity_unit: GiB, type: LPDDR4X}
units: 3
unit_name: NPU core
clock: 1.0
source: the vendor's brief
verified: false
"""


def test_bad_corpus_is_large():
    assert len(BAD) >= 20


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_device_file_is_one_located_error(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.match(r"# expect: (\d+):(\d+): (.+)$", first)
    assert match, f"{path.name} must start with '# expect: LINE:COL: text'"
    line, col, needle = match.groups()
    for args in (["list", "devices", "--device-file", str(path)], ["eval", "seed_fc", "--device", str(path)]):
        result = invoke(*args)
        assert result.exit_code == 1, result.stdout
        assert result.stderr.startswith(f"Error: {path}:{line}:{col}: "), result.stderr
        assert needle in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not Path("/tmp/symcost-pwned").exists()


def test_every_bundled_device_loads_with_a_source():
    found = devices.bundled()
    names = {d.name for d in found}
    assert len(found) >= 14
    assert names == {p.stem for p in (Path(__file__).resolve().parent.parent / "devices").glob("*.yaml")}
    assert {"a100", "h100_sxm", "h100_pcie", "h200", "l4", "t4", "v100", "rtx_4090", "jetson_agx_orin",
            "tpu_v4", "tpu_v5e", "apple_m2", "rk3588", "cpu"} <= names  # fmt: skip
    for d in found:
        assert d.source and d.peaks and d.bandwidth > 0 and d.capacity > 0, d.name
        assert d.path == f"devices/{d.name}.yaml"
        # a sparse figure is never smaller than the dense one it is kept apart from
        for dtype, sparse in d.sparse.items():
            assert sparse >= d.peaks.get(dtype, 0), (d.name, dtype)


DEVICES = Path(__file__).resolve().parent.parent / "devices"

# The bundled files whose figures are not all confirmed by a stored vendor document (each file's header quotes where
# every figure comes from; docs/devices.md lists why). A file leaves this set only when every figure in it is.
UNVERIFIED = {"apple_m2", "apple_m3", "b200", "cpu", "h200", "jetson_agx_orin", "jetson_agx_orin_dla",
              "jetson_agx_orin_gpu", "jetson_orin_nano", "l4", "rk3588", "rk3588_npu_core", "rtx_4090"}  # fmt: skip


def test_unverified_entries_are_the_listed_ones():
    found = devices.bundled()
    assert {d.name for d in found if not d.verified} == UNVERIFIED
    for d in found:
        if not d.verified:
            assert d.verification, f"{d.name}: say how far its figures were checked"
    # checked against a stored vendor table (H100 PCIe datasheet table; AMD's ROCm MI300X peak table)
    for name in ("h100_pcie", "mi300x"):
        assert devices.find(name).verified is True, name


def test_every_unverified_entry_is_explained_in_the_docs():
    text = (DEVICES.parent / "docs" / "devices.md").read_text(encoding="utf-8")
    section = text[text.index("### The bundled devices, and which are unverified") :]
    section = section[: section.index("\n## ")]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([a-z0-9_]+)`", row.split("|")[1])}
    assert named == UNVERIFIED


@pytest.mark.parametrize("name", sorted(path.stem for path in DEVICES.glob("*.yaml")))
def test_no_figure_stays_as_recalled(name):
    """A figure from memory is sourced, derived from sourced figures, or removed; never left as if sourced.

    Every bundled file, verified or not: a verified file's SM count or L2 size is as much a figure as its peaks.
    """
    text = (DEVICES / f"{name}.yaml").read_text(encoding="utf-8")
    assert not re.search(r"\b(as recalled|recalled from)\b", text, re.IGNORECASE), name


def test_vendor_figures_exactly():
    a100 = devices.find("a100")
    # datasheet: BF16 Tensor Core 624 TFLOPS with sparsity; dense 312
    assert a100.peak("bf16") == 312 * 10**12 and a100.sparse["bf16"] == 624 * 10**12
    assert a100.bandwidth == 2039 * 10**9
    assert a100.ridge("bf16") == Fraction(312 * 10**12, 2039 * 10**9)
    assert devices.find("h100").name == "h100_sxm"  # an alias
    assert devices.find("rk3588").peak("int8") == 6 * 10**12
    # NVIDIA's 'GB200 NVL72 | HGX B200' table, HGX B200 column: "FP32 | 80 TFLOPS | 75 TFLOPS",
    # "FP64/FP64 Tensor Core | 40 TFLOPS | 37 TFLOPS", "... | 180GB HBM3E | 7.7TB/s" (80 / 40 / 8 TB/s are the GB200's)
    b200 = devices.find("b200")
    assert (b200.peak("fp32"), b200.peak("fp64")) == (75 * 10**12, 37 * 10**12)
    assert b200.bandwidth == 7700 * 10**9 and b200.capacity == 180 * 10**9
    # Ada whitepaper v2.02, Appendix A: FP32-accumulate rows for fp16 and fp8 alike, "165.2/330.4" and "330.3/660.6"
    rtx = devices.find("rtx_4090")
    assert (rtx.peak("fp16"), rtx.peak("fp8")) == (Fraction(1652, 10) * 10**12, Fraction(3303, 10) * 10**12)
    assert (rtx.sparse["fp16"], rtx.sparse["fp8"]) == (Fraction(3304, 10) * 10**12, Fraction(6606, 10) * 10**12)
    # NVIDIA's DLA repository, Jetson AGX Orin 64GB at MAXN: total 275 sparse TOPS, GPU 171, two DLAs 105
    assert devices.find("jetson_agx_orin").sparse["int8"] == 275 * 10**12
    assert devices.find("jetson_agx_orin_gpu").sparse["int8"] == 171 * 10**12
    assert devices.find("jetson_agx_orin_dla").sparse["int8"] == 105 * 10**12
    # the generic CPU is written as TOPS = clock x MAC units x 2: 2 x 3.0 GHz x 128 MAC units = 768 GFLOP/s
    assert devices.find("cpu").peak("fp32") == 768 * 10**9


def test_one_tflops_is_not_two_tops():
    """int8 TOP/s / fp16 TFLOP/s is a property of each chip (each device file's datasheet figures)."""
    ratio = {n: devices.find(n).peak("int8") / devices.find(n).peak(dt) for n, dt in
             (("a100", "fp16"), ("t4", "fp16"), ("tpu_v4", "bf16"), ("rtx_4090", "fp16"))}  # fmt: skip
    assert {k: v for k, v in ratio.items() if k != "rtx_4090"} == {"a100": 2, "t4": 2, "tpu_v4": 1}
    # 660.6 / 165.2 = 3.9988: the whitepaper's rounded figures, a ratio of 4
    assert round(float(ratio["rtx_4090"]), 2) == 4.0


def test_device_file_round_trip(tmp_path):
    path = tmp_path / "my_npu.yaml"
    path.write_text(NPU)
    d = devices.load_path(path)
    assert d.peak("int8") == 6 * 10**12  # 2 x 1.0e9 x 3000
    assert d.peak("fp16") == Fraction(3, 2) * 10**12
    assert d.bandwidth == Fraction(341, 10) * 10**9
    assert d.capacity == 8 * 2**30
    assert d.clock == 10**9 and d.units == 3
    listed = json.loads(invoke("list", "devices", "--device-file", str(path), "--format", "json").stdout)
    mine = next(r for r in listed if r["name"] == "my_npu")
    assert mine["peak_tflop_per_s"] == {"fp16": 1.5, "int8": 6.0}
    assert mine["sparse_tflop_per_s"] == {"int8": 12.0}
    assert mine["bandwidth_gb_per_s"] == 34.1 and mine["capacity_bytes"] == 8 * 2**30
    # found by name and by alias through --device-file, and used by eval
    for name in ("my_npu", "npu"):
        result = invoke("eval", "seed_conv", "--device", name, "--device-file", str(path), "--dtype", "int8")
        assert result.exit_code == 0, result.stderr
        assert f"Runtime {runtimes.DEFAULT} on my_npu" in result.stdout


def test_missing_peak_for_the_asked_dtype_is_located(tmp_path):
    path = tmp_path / "my_npu.yaml"
    path.write_text(NPU)
    result = invoke("eval", "seed_fc", "--device", str(path), "--dtype", "bf16")
    assert result.exit_code == 1
    # located at the 'peak' table of the file (line 7, its first entry)
    assert result.stderr.startswith(f"Error: {path}:7:3: device 'my_npu' has no bf16 peak (it has int8, fp16)")
    result = invoke("eval", "seed_fc", "--device", "v100", "--dtype", "bf16")
    assert result.exit_code == 1 and result.stderr.startswith("Error: devices/v100.yaml:")
    assert "no bf16 peak" in result.stderr


def test_unknown_device_suggests():
    result = invoke("eval", "seed_fc", "--device", "a10O")
    assert result.exit_code == 1 and "unknown device 'a10O' (did you mean 'a100'?)" in result.stderr


def test_list_devices_text():
    result = invoke("list", "devices")
    assert result.exit_code == 0
    line = next(x for x in result.stdout.splitlines() if x.startswith("a100 "))
    assert line.split()[:9] == ["a100", "gpu", "19.5", "19.5", "156", "312", "312", "-", "624"]
    assert "sparse figures are kept apart" in result.stdout


def test_user_file_wins_a_name_clash(tmp_path):
    path = tmp_path / "a100.yaml"
    path.write_text(NPU.replace("name: my_npu", "name: a100"))
    assert devices.find("a100", (str(path),)).summary == "the reader's NPU"


def test_device_error_class():
    with pytest.raises(DeviceError):
        devices.load_text("name: x\n", "x.yaml")
