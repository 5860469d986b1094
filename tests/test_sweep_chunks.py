"""Sweeps evaluated chunk by chunk give exactly what one whole evaluation gives, and CSV streamed
chunk by chunk keeps memory flat however large the grid.

The reference is the grid evaluated in one piece (a chunk larger than the grid: every axis a numpy
dimension, as symcost evaluated every sweep before chunks); the chunked runs force tiny chunks
(1 to 11 points) so that every way of splitting the axes is exercised: by flat index across
several axes, inside the last axis, and whole trailing axes per chunk.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symcost import devices, metrics, roofline
from symcost import sweep as sweep_module
from symcost.errors import UsageError
from symcost.sweep import Axis, parse_axis, plan
from tests.helpers import graph, invoke

ROOT = Path(__file__).resolve().parents[1]

A100 = devices.find("a100", ())
ROOF = metrics.Setting(dtype="bf16", roof=roofline.roof_for(A100, "bf16"), device=A100)

# (arch, axes: name -> (first value, step), metrics, values, setting, exact)
CASES = [
    ("resnet50", {"N": (1, 3), "H": (32, 61)}, ["flops", "params", "read"], {}, None, True),
    ("resnet50", {"H": (1, 45), "W": (7, 100), "N": (1, 1)}, ["flops", "macs"], {}, None, False),  # float64
    ("gpt2", {"n_head": (1, 5), "S": (1, 9)}, ["params", "flops"], {}, None, True),  # head_dim not whole: invalid
    ("vgg16", {"H": (1, 9), "W": (1, 11)}, ["flops", "params"], {}, None, True),  # small images invalid
    ("resnet50", {"N": (1, 2**61), "H": (224, 1)}, ["flops", "params"], {}, None, True),  # Python ints past N=2**62
    ("llama", {"B": (1, 7), "S": (1, 2)}, ["latency", "memory", "kv_cache_bytes"], {"S": 1, "ctx": 4095}, ROOF, True),
]


def _axes(spec: dict[str, tuple[int, int]], sizes: list[int]) -> list[Axis]:
    return [
        Axis(name, tuple(first + step * i for i in range(n))) for (name, (first, step)), n in zip(spec.items(), sizes)
    ]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.data())
def test_chunked_sweep_equals_whole_sweep(data):
    arch, spec, names, values, setting, exact = data.draw(st.sampled_from(CASES), label="case")
    sizes = [data.draw(st.integers(1, 3 if "memory" in names else 9), label=f"size of {n}") for n in spec]
    chunk = data.draw(st.integers(1, 11), label="chunk")
    axes = _axes(spec, sizes)
    whole_plan = plan(graph(arch), axes, names, values=values, setting=setting, exact=exact)
    whole = whole_plan.collect(chunk=10**9)
    chunked_plan = plan(graph(arch), axes, names, values=values, setting=setting, exact=exact)
    parts = list(chunked_plan.chunks(chunk))
    assert all(p.size <= chunk for p in parts) and sum(p.size for p in parts) == whole.size
    # every chunk computed as the whole grid is: int64 or Python ints alike, not chosen from the chunk's values
    assert all(p.metrics[n].dtype == whole.metrics[n].dtype for p in parts for n in names)
    assert [p.start for p in parts] == list(np.cumsum([0] + [p.size for p in parts[:-1]]))
    chunked = plan(graph(arch), axes, names, values=values, setting=setting, exact=exact).collect(chunk=chunk)
    assert list(chunked.metrics) == list(whole.metrics) == list(names)
    for name in names:
        assert _same(chunked.metrics[name], whole.metrics[name]), name
    assert (chunked.valid is None) == (whole.valid is None)
    if whole.valid is not None:
        assert _same(chunked.valid, whole.valid)
    assert chunked.reasons == whole.reasons and len(whole.reasons) <= 20
    assert (chunked.mode, chunked.approximate, chunked.fixed) == (whole.mode, whole.approximate, whole.fixed)
    assert list(chunked.rows()) == list(whole.rows())
    streamed = "".join(plan(graph(arch), axes, names, values=values, setting=setting, exact=exact).csv_chunks(chunk))
    assert streamed == whole.render("csv") + "\n"


def test_whole_evaluation_is_the_old_broadcast_one():
    # a chunk larger than the grid is one chunk with every axis its own numpy dimension
    axes = [parse_axis("N=1,8"), parse_axis("H=64:256:64")]
    parts = list(plan(graph("resnet50"), axes, ["flops"]).chunks(10**9))
    assert len(parts) == 1 and parts[0].size == 8
    # the 8 points by hand, row order first axis slowest: N=1 with H=64..256, then N=8
    assert parts[0].columns["N"].tolist() == [1, 1, 1, 1, 8, 8, 8, 8]
    assert parts[0].columns["H"].tolist() == [64, 128, 192, 256] * 2


def test_reasons_are_the_first_twenty_invalid_points_across_chunks():
    # vgg16 needs H, W >= 32 (five 2x2 poolings); H=1..30 with W=1 fails everywhere
    axes = [parse_axis("H=1:30"), parse_axis("W=1")]
    s = plan(graph("vgg16"), axes, ["flops"]).collect(chunk=3)
    assert sorted(s.reasons) == list(range(20))
    assert not s.valid.any()


def test_large_streamed_grids_are_counted_before_anything_is_built():
    # 10**9 values of one axis stay a range; 10**9 + 1 points are refused before any value exists
    axis = parse_axis("N=1:1000000000", limit=sweep_module.MAX_STREAMED_POINTS)
    assert isinstance(axis.values, range) and len(axis.values) == 10**9
    with pytest.raises(UsageError, match="at most 1,000,000,000 points"):
        parse_axis("N=1:1000000001", limit=sweep_module.MAX_STREAMED_POINTS)
    with pytest.raises(UsageError, match="the grid has 2,000,000,000 points; a grid has at most 1,000,000,000"):
        plan(graph("resnet50"), [axis, parse_axis("H=224,225")], ["flops"], limit=sweep_module.MAX_STREAMED_POINTS)
    with pytest.raises(UsageError, match="at most 2,000,000 points here; write it as CSV"):
        parse_axis("N=1:2000001")
    # a range axis evaluates by arithmetic: its last chunk holds the last values
    p = plan(graph("resnet50"), [axis], ["params"], limit=sweep_module.MAX_STREAMED_POINTS)
    assert p.size == 10**9
    first = next(p.chunks(4))
    assert first.columns["N"].tolist() == [1, 2, 3, 4]


def test_cli_streams_csv_beyond_the_whole_grid_limit(tmp_path):
    # 2,000,001 points: one past what a held grid may have, fine as CSV
    out = tmp_path / "big.csv"
    result = invoke("sweep", "vgg16", "--over", "H=32:2000032", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "2,000,001 points, flops" in result.output
    with out.open() as handle:
        assert handle.readline() == "H,flops\n"
    assert sum(1 for _ in out.open()) == 2_000_002
    table = invoke("sweep", "vgg16", "--over", "H=32:2000032")
    assert table.exit_code == 1 and "at most 2,000,000 points here; write it as CSV with -o FILE.csv" in table.output


def test_cli_stream_leaves_no_partial_file(tmp_path):
    # a refused sweep (an unknown metric) and a full disk midway through the rows
    # both leave nothing behind, not even the temporary file
    out = tmp_path / "x.csv"
    result = invoke("sweep", "vgg16", "--over", "H=32:64", "-o", str(out), "--metric", "nonsense")
    assert result.exit_code != 0 and not out.exists()
    script = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        import signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from symcost.cli import main
        sys.argv = ["symcost", "sweep", "vgg16", "--over", "H=32:400000", "-o", {str(out)!r}]
        main()
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)  # fmt: skip
    assert run.returncode == 1 and "cannot write" in run.stderr and "Traceback" not in run.stderr
    assert os.listdir(tmp_path) == []


PEAK = """
import resource, sys
from symcost.cli import main
sys.argv = ["symcost", "sweep", "resnet50", "--over", "N=1:{n}", "--over", "H=224,256", "-o", sys.argv[1]]
try:
    main()
except SystemExit as stop:
    assert not stop.code, stop.code
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_kib(points: int, folder: Path) -> int:
    run = subprocess.run([sys.executable, "-c", PEAK.format(n=points // 2), str(folder / f"{points}.csv")],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (folder / f"{points}.csv").stat().st_size > points * 10
    return int(run.stdout.split()[-1])


def test_streamed_csv_memory_does_not_grow_with_the_grid(tmp_path):
    # 2*10**6 and 8*10**6 rows of ResNet-50 FLOPs: held whole, the larger would take ~1 GB more
    # (a row is ~20 bytes of text plus int64s and Python ints while built); streamed, both peak alike
    small = _peak_kib(2_000_000, tmp_path)
    large = _peak_kib(8_000_000, tmp_path)
    assert large < small + 30_000, (small, large)  # 30 MB of slack, against ~1 GB if it grew


def test_python_api_holds_two_million_points_and_streams_more(tmp_path):
    import symcost

    with pytest.raises(UsageError, match=r"at most 2,000,000 points here; .*streamed=True") as caught:
        symcost.sweep("resnet50", {"N": "1:3000000"}, "params")
    assert "--" not in str(caught.value)
    planned = symcost.sweep("resnet50", {"N": "1:3000000"}, "params", streamed=True)
    assert planned.size == 3_000_000 and planned.names == ["params"]
    first = next(planned.csv_chunks(3))
    assert first == "N,params\n"


def test_cli_csv_to_stdout_is_streamed_and_unchanged():
    # the same text as the Sweep held whole renders, row order first axis slowest
    axes = [parse_axis("H=30:40:2"), parse_axis("W=31,64")]
    whole = sweep_module.sweep(graph("vgg16"), axes, ["flops", "params"])
    result = invoke("sweep", "vgg16", "--over", "H=30:40:2", "--over", "W=31,64", "-m", "flops,params", "-f", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == whole.render("csv") + "\n"
    assert result.stdout.splitlines()[1] == "30,31,,"  # H=30 is too small for vgg16: cells left empty


def test_a_runtime_s_latency_is_written_as_float_in_csv():
    """Under a runtime other than the roofline, latency is priced point by point; it is float64 and
    approximate like every timed metric, so CSV holds decimal seconds, not exact fractions (which no
    spreadsheet reads), and they equal the API's estimate at each point."""
    import symcost

    result = invoke("sweep", "resnet50", "--over", "N=1,2", "--metric", "latency", "--device", "a100",
                    "--runtime", "tensorrt", "--format", "csv")  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "N,latency"
    for line, n in zip(lines[1:], (1, 2)):
        value = line.split(",")[1]
        assert "/" not in value
        expected = symcost.estimate("resnet50", device="a100", runtime="tensorrt", N=n).performance["latency_s"]
        assert float(value) == pytest.approx(float(expected), rel=1e-12)
