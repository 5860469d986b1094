"""The latency validation set (benchmarks/latency/dataset.csv), `symcost measure`, `symcost probe` and
benchmarks/bench_latency.py.

The dataset's rows are published measurements: these tests check that each is well formed and sourced and that
the calibration/held-out split keeps whole sources apart, not what symcost predicts for them. measure and probe
run on a one-layer architecture at tiny sizes, so they take seconds on a CPU.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import sys
from pathlib import Path

import pytest

from symcost import arch, bundled, devices
from symcost.cost import DTYPE_BITS
from symcost.precision import FORMATS
from tests.helpers import invoke

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "latency"
REGIMES = {"cnn-b1", "cnn-large-batch", "transformer-prefill", "llm-decode-b1", "llm-decode-large-batch", "edge"}
RUNTIMES = {"eager", "compiled", "xla", "tensorrt", "onnxruntime", "vllm", "tensorrt-llm", "llama.cpp", "rknn",
            "triton-client"}  # fmt: skip
#: runtimes a row may name that symcost does not model (the row says `pending: runtime`)
UNMODELLED = {"triton-client"}
OPTIONAL = ["weight_dtype", "kv_dtype"]  # storage formats, blank where they are the row's dtype
COLUMNS = ["id", "model", "set", "phase", "batch", "dtype", *OPTIONAL, "device", "runtime", "measured_ms", "regime",
           "source", "source_group", "split", "pending", "notes"]  # fmt: skip


@functools.cache
def rows() -> list[dict[str, str]]:
    with open(DATA / "dataset.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS
        return list(reader)


@functools.cache
def bench():
    spec = importlib.util.spec_from_file_location("bench_latency", ROOT / "benchmarks" / "bench_latency.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_latency"] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def device_names() -> frozenset[str]:
    return frozenset(n for d in devices.catalog() for n in (d.name, *d.aliases))


@functools.cache
def variables(model: str) -> frozenset[str]:
    return frozenset(arch.load_path(model).variables)


def test_enough_rows_with_unique_ids():
    ids = [r["id"] for r in rows()]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("row", rows(), ids=lambda r: r["id"])
def test_row_is_well_formed(row):
    pending = set(row["pending"].split())
    assert pending <= {"device", "model", "runtime"}
    if "model" not in pending:
        assert row["model"] in bundled.names("archs")
        # every binding names one of the architecture's variables, with a whole-number value
        assert set(bench().bindings(row["set"])) <= variables(row["model"])
    if "device" not in pending:
        assert row["device"] in device_names()
    assert row["runtime"] in RUNTIMES
    assert ("runtime" in pending) == (row["runtime"] in UNMODELLED)
    assert row["dtype"] in DTYPE_BITS
    for column in OPTIONAL:  # a storage format other than the compute dtype, or blank
        assert row[column] == "" or (row[column] in FORMATS and row[column] != row["dtype"])
    assert row["phase"] in {"prefill", "decode", "-"}
    assert int(row["batch"]) >= 1
    assert float(row["measured_ms"]) > 0
    assert row["regime"] in REGIMES
    assert row["split"] in {"calibration", "heldout"}
    assert row["source"].startswith("https://") and row["source_group"]
    assert row["notes"]


def test_split_keeps_sources_apart_and_covers_every_regime():
    halves: dict[str, set[str]] = {}
    for r in rows():
        halves.setdefault(r["source_group"], set()).add(r["split"])
    mixed = sorted(g for g, s in halves.items() if len(s) > 1)
    assert not mixed, f"source groups in both halves: {mixed}"
    for split in ("calibration", "heldout"):
        assert {r["regime"] for r in rows() if r["split"] == split} == REGIMES
    counts = {s: sum(r["split"] == s for r in rows()) for s in ("calibration", "heldout")}
    assert min(counts.values()) >= 0.4 * len(rows())


def test_bindings_parse_and_refuse():
    assert bench().bindings("B=1 S=128 ctx=0") == {"B": 1, "S": 128, "ctx": 0}
    with pytest.raises(ValueError):
        bench().bindings("S=1.5")


def test_bench_latency_runs_on_a_three_row_sample(tmp_path, capsys):
    sample = [r for r in rows() if not r["pending"]]
    picked = [next(r for r in sample if r["regime"] == g) for g in ("cnn-b1", "llm-decode-b1", "edge")]
    path = tmp_path / "sample.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(picked)
    plot = tmp_path / "scatter.png"
    assert bench().main(["--data", str(path), "--rows", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "rows: 3" in out and "predicted 3" in out
    for r in picked:
        assert r["id"] in out
    assert plot.stat().st_size > 1000


def test_bench_latency_counts_pending_rows_as_skipped(tmp_path, capsys):
    """A row whose device symcost lacks is skipped with its reason (once symcost has it, it is predicted)."""
    pending = [dict(r, device="no_such_device", pending="device") for r in rows()[:2]]
    path = tmp_path / "pending.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(pending)
    assert bench().main(["--data", str(path)]) == 0
    out = capsys.readouterr().out
    assert "predicted 0; skipped 2" in out and "pending: device" in out


def test_bench_latency_reads_weights_at_the_weight_dtype():
    """seed_fc (a 100 -> 50 linear layer, 5,050 weights) at batch 1 under the roofline is memory-bound: its time is
    its bytes over the bandwidth. bf16: 5,050 x 2 weight bytes + (100 + 50) x 2 activation bytes = 10,400;
    weight_dtype int4: 5,050 x 4 / 8 = 2,525 weight bytes + 300 = 2,825; kv_dtype changes nothing (no cache)."""
    row = {"model": "seed_fc", "set": "N=1", "phase": "-", "dtype": "bf16", "device": "a100", "runtime": "eager",
           "pending": "", "weight_dtype": "", "kv_dtype": ""}  # fmt: skip
    seconds_per_byte = 1000 / devices.find("a100").bandwidth  # ms per byte at the A100's 2,039 GB/s
    plain = bench().predict(row, True, roofline=True)
    int4 = bench().predict(dict(row, weight_dtype="int4", kv_dtype="fp8"), True, roofline=True)
    assert plain.predicted_ms == pytest.approx(float(10_400 * seconds_per_byte), rel=1e-12)
    assert int4.predicted_ms == pytest.approx(float(2_825 * seconds_per_byte), rel=1e-12)
    # a CSV without the columns (symcost measure's, cpu_measurements.csv) is priced at its dtype
    without = {k: v for k, v in row.items() if k not in OPTIONAL}
    assert bench().predict(without, True, roofline=True).predicted_ms == plain.predicted_ms
    assert bench().precision(dict(row, weight_dtype="int4")) == "bf16 (weights int4)"


torch = pytest.importorskip("torch")


def test_measure_writes_a_csv_in_the_dataset_columns(tmp_path):
    out = tmp_path / "measured.csv"
    result = invoke("measure", "seed_conv", "--set", "N=1", "H=16", "W=16", "--repeat", "2", "--warmup", "1",
                    "--threads", "1", "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as f:
        got = list(csv.DictReader(f))
    whole, layers = got[0], got[1:]
    assert list(whole)[: len(COLUMNS) - len(OPTIONAL)] == [c for c in COLUMNS if c not in OPTIONAL]
    assert whole["layer"] == "" and float(whole["measured_ms"]) > 0
    assert whole["model"] == "seed_conv" and whole["set"] == "N=1 H=16 W=16" and whole["batch"] == "1"
    assert [r["op"] for r in layers] == ["conv2d"] and float(layers[0]["measured_ms"]) > 0
    # the whole-model row is one the benchmark reads
    assert bench().bindings(whole["set"]) == {"N": 1, "H": 16, "W": 16}


def _measured_ops(tmp_path, model: str, *args: str) -> set[str]:
    """The ops of the per-layer rows that ``symcost measure MODEL ARGS...`` writes, each layer timed once."""
    out = tmp_path / f"{model}.csv"
    result = invoke("measure", model, *args, "--repeat", "1", "--warmup", "0", "--threads", "1", "-o", str(out))
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as f:
        return {r["op"] for r in csv.DictReader(f) if r["layer"]}


def test_measure_times_every_op_of_a_small_transformer(tmp_path):
    """GPT-2's ops (embedding, layernorm, attention, linear, gelu, add) at two layers and a narrow width."""
    ops = _measured_ops(tmp_path, "gpt2", "--set", "B=1", "S=8", "n_layer=2", "d_model=64", "n_head=2", "vocab=100",
                        "--phase", "prefill")  # fmt: skip
    assert {"embedding", "layernorm", "multi_head_attention", "linear", "gelu", "add"} <= ops


def test_measure_refuses_what_it_cannot_time(tmp_path):
    result = invoke("measure", "seed_conv", "--dtype", "int8", "-o", str(tmp_path / "x.csv"))
    assert result.exit_code == 1 and "int8" in result.output
    assert not (tmp_path / "x.csv").exists()


def test_probe_writes_a_device_file_that_loads(tmp_path):
    out = tmp_path / "mycpu.yaml"
    result = invoke("probe", "-o", str(out), "--gemm-size", "64", "--copy-mb", "4", "--repeat", "2", "--threads", "1")
    assert result.exit_code == 0, result.output
    device = devices.load_path(str(out))
    assert device.name == "mycpu" and device.kind == "cpu" and not device.verified
    assert device.peak("fp32") > 0 and device.bandwidth > 0
    assert "symcost probe" in device.source
    # and eval uses it
    result = invoke("eval", "seed_conv", "--device-file", str(out), "--device", "mycpu")
    assert result.exit_code == 0, result.output


def test_probe_needs_an_output():
    result = invoke("probe")
    assert result.exit_code == 1 and "-o" in result.output


def test_docs_page_shows_the_current_dataset():
    page = (ROOT / "docs" / "latency-validation.md").read_text(encoding="utf-8")
    table = bench().markdown(rows())
    assert table in page, "regenerate: python benchmarks/bench_latency.py --markdown (the table ends the page)"
    assert (ROOT / "docs" / "img" / "latency_validation.png").stat().st_size > 10_000


@functools.cache
def bench_output(*flags: str) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert bench().main(list(flags)) == 0
    return out.getvalue()


def _figures(text: str) -> list[str]:
    """The summary tables: from the first split's header to the target line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("rows: "))
    end = next(i for i, line in enumerate(lines) if line.startswith("held-out target"))
    return [line.rstrip() for line in lines[start : end + 1]]


@pytest.mark.parametrize("flags", [(), ("--roofline",)], ids=["runtimes", "roofline"])
def test_docs_page_shows_the_benchmarks_current_figures(flags):
    """The held-out figures docs/latency-validation.md prints are what benchmarks/bench_latency.py prints now
    (the page would otherwise report an error figure that the runtimes no longer have)."""
    page = (ROOT / "docs" / "latency-validation.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in page.split("```text\n")[1:]]
    shown = [_figures(b) for b in blocks if "held-out target" in b]
    assert _figures(bench_output(*flags)) in shown, (
        f"update docs/latency-validation.md from: python benchmarks/bench_latency.py {' '.join(flags)}"
    )


def test_readme_quotes_the_current_held_out_figures():
    lines = bench_output().splitlines()
    held = lines[lines.index("heldout:") + 2].split()  # "all  64  0.99  72%  98%"
    assert held[0] == "all"
    readme = (ROOT / "README.md").read_text(encoding="utf-8").replace("\n", " ")
    assert f"on the {held[1]} held out from fitting" in readme
    assert f"median measured ÷ predicted is {held[2]}, {held[3]} within ±25% and {held[4]} within 2×" in readme


def test_measure_times_a_small_vision_transformer(tmp_path):
    """ViT's pieces (patch conv, flatten_spatial, prepend_tokens, add_learned, attention, MLP) at one narrow layer."""
    ops = _measured_ops(tmp_path, "vit_b_16", "--set", "N=1", "H=32", "W=32", "d_model=32", "n_head=2", "n_layer=1",
                        "d_ff=64", "num_classes=10")  # fmt: skip
    assert {"conv2d", "flatten_spatial", "prepend_tokens", "add_learned", "linear"} <= ops


def test_runtime_files_hold_a_fresh_fit_of_the_dataset(capsys):
    """Each runtime's constants and its printed '±X%, held out on N measurements' are what
    scripts/fit_runtimes.py fits and measures on the dataset as committed: no stale error figure."""
    spec = importlib.util.spec_from_file_location("fit_runtimes", ROOT / "scripts" / "fit_runtimes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, capsys.readouterr().out.splitlines()[-1]
