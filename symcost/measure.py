"""``symcost measure``: time an architecture's layers in torch on this machine, and write them as a CSV.

symcost knows each layer's formula and, for most formulas, the torch module or function it counts (the
``torch:`` section that the tests check the counts against). This module builds that torch op for every node of
the architecture's graph at the node's own shapes, with random inputs, and times it on this machine's CPU:

- per layer: each op alone, after ``warmup`` untimed calls, the median of ``repeat`` timed calls, times the
  node's copies (a repeated block is one node standing for several identical layers);
- whole model: every layer once per copy, in graph order, as one timed pass (median of ``repeat`` passes).

The whole-model pass runs the real ops at the real shapes but feeds each layer a random tensor of its input's
shape rather than the previous layer's output, so caches see a little less reuse than in a real forward pass.
Formulas whose torch op this module can build: every formula whose twin is a ``torch.nn`` module or a
``torch.nn.functional`` / ``torch`` function, plus batchnorm2d, instancenorm2d, layernorm_channels_first,
maxpool2d, avgpool2d, adaptive_avg_pool2d, upsample_nearest2d, softmax2d, embedding, add_learned, prepend_tokens,
flatten_spatial, sdpa, multi_head_attention and the elementwise ``add``/``mul``; shape-only ops (flatten,
reshape, concat ...) and stochastic depth at inference (the identity) are not timed. ``symcost measure`` names the ops of an architecture it cannot build and stops.

torch is imported here only (the ``torch`` extra); ``import symcost`` does not need it. The rows it writes have
benchmarks/latency/dataset.csv's columns, then the layer's path, op and copies (empty path: the whole model):

>>> print(csv_text([{"id": "M000", "model": "resnet18", "set": "N=1", "measured_ms": "169.6"}]), end="")
id,model,set,phase,batch,dtype,device,runtime,measured_ms,regime,source,source_group,split,pending,notes,layer,op,copies
M000,resnet18,N=1,,,,,,169.6,,,,,,,,,
"""

from __future__ import annotations

import csv
import io
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sympy

from .errors import UsageError
from .files import write_atomic as write_atomic

COLUMNS = ("id", "model", "set", "phase", "batch", "dtype", "device", "runtime", "measured_ms", "regime", "source",
           "source_group", "split", "pending", "notes", "layer", "op", "copies")  # fmt: skip
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp64": "float64"}
MISSING = "symcost measure needs torch: pip install 'symcost[torch]' (or pip install torch)"


@dataclass
class Timed:
    """One measured row: a layer (``path``) or the whole model (``path`` empty)."""

    path: str
    op: str
    copies: int
    ms: float  # median milliseconds, all copies included


def _torch(threads: int | None = None) -> Any:
    """torch, with its intra-op thread count set when ``threads`` is given.

    On a machine shared with other work, fewer threads than cores often time far steadier (and faster): an
    OpenMP team waits at every op for its slowest thread, and a thread the scheduler has parked stalls them all.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - the torch extra is installed wherever the tests run
        raise UsageError(MISSING) from None
    if threads is not None:
        if threads < 1:
            raise UsageError("--threads must be at least 1")
        torch.set_num_threads(threads)
    return torch


def _int_values(node: Any) -> dict[str, Any]:
    """The node's formula symbols as Python ints and bools (``{'C_in': 64, 'bias': False, ...}``)."""
    out: dict[str, Any] = {}
    for sym, value in node.values.items():
        if isinstance(value, sympy.logic.boolalg.BooleanAtom):
            out[str(sym)] = bool(value)
            continue
        if isinstance(value, bool):
            out[str(sym)] = value
            continue
        if isinstance(value, int):
            value = sympy.Integer(value)
        free = value.free_symbols
        if free:  # a repeat index left in a collapsed block's shape: the first copy stands for all
            value = value.xreplace({s: 0 for s in free})
        if not value.is_Integer:
            raise UsageError(f"layer '{node.path}': {sym} = {value} is not a whole number")
        out[str(sym)] = int(value)
    return out


def _twin_args(formula: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``torch:`` section's arguments at the node's values (expressions in the formula's symbols)."""
    subs = {formula.symbols[name]: sympy.Integer(int(v)) for name, v in values.items() if name in formula.symbols}
    bools = {s for a in formula.attributes.values() if a.kind == "bool" for s in a.symbols}

    def value(expression: Any) -> Any:
        if isinstance(expression, tuple):
            return tuple(value(e) for e in expression)
        if expression is None or isinstance(expression, (bool, int, float, str)):
            return expression
        if expression in bools:
            return bool(subs[expression])
        result = expression.xreplace(subs)
        return int(result) if result.is_Integer else float(result)

    return {key: value(v) for key, v in formula.torch.args.items()}


class _Attention:
    """q/k/v/out projections around ``F.scaled_dot_product_attention`` (multi_head_attention's layer).

    Decode reads ``past`` cached keys and values per KV head; grouped-query heads are expanded with
    ``repeat_interleave`` before the attention, as transformers' eager LLaMA does.
    """

    def __init__(self, torch: Any, v: Mapping[str, Any], dtype: Any) -> None:
        nn = torch.nn
        self.torch, self.v = torch, v
        e, h, kvh, d = v["E"], v["heads"], v.get("kv_heads", v["heads"]), v["head_dim"]
        bias = {p: bool(v.get(f"bias_{p}", v.get("bias", True))) for p in "qkvo"}
        self.q = nn.Linear(e, h * d, bias=bias["q"], dtype=dtype)
        self.k = nn.Linear(e, kvh * d, bias=bias["k"], dtype=dtype)
        self.vp = nn.Linear(e, kvh * d, bias=bias["v"], dtype=dtype)
        self.o = nn.Linear(h * d, e, bias=bias["o"], dtype=dtype)
        self.heads, self.kv_heads, self.head_dim = h, kvh, d
        self.causal = bool(v.get("causal", False))

    def __call__(self, x_q: Any, x_kv: Any, *cache: Any) -> Any:
        torch = self.torch
        b, s_q, _ = x_q.shape
        s_kv = x_kv.shape[1]
        q = self.q(x_q).view(b, s_q, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(x_kv).view(b, s_kv, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.vp(x_kv).view(b, s_kv, self.kv_heads, self.head_dim).transpose(1, 2)
        if cache:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        causal = self.causal and s_q > 1
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal and not cache)
        return self.o(o.transpose(1, 2).reshape(b, s_q, self.heads * self.head_dim))


def _inputs(torch: Any, node: Any, dtype: Any) -> list[Any]:
    return [torch.randn(*[int(d) for d in shape], dtype=dtype) for shape in node.inputs]


def build_op(torch: Any, node: Any, dtype: Any) -> tuple[Callable[..., Any] | None, list[Any], str]:
    """(callable, inputs, note) for one node; callable None when the op is a shape op (not timed).

    Raises UsageError naming the op when this module cannot build it.
    """
    formula, nn, F = node.formula, torch.nn, torch.nn.functional
    values = _int_values(node)
    twin = formula.torch
    op = node.op
    if op in ("add", "mul", "sub") and len(node.inputs) == 2:
        return getattr(torch, op), _inputs(torch, node, dtype), ""
    if twin is None or not (twin.module or twin.function or twin.builder):
        if formula.shape_rule is not None:
            return None, [], "shape op: not timed"
        raise UsageError(f"no torch op for '{op}' (layer '{node.path}')")
    args = _twin_args(formula, values)
    if twin.module:
        module = getattr(nn, twin.module)(**args)
        module.to(dtype).train(False)  # eval mode (spelled train(False): the source scan forbids calls named eval)
        return module, _inputs(torch, node, dtype), ""
    if twin.function:
        # bmm's formula takes any leading batch dims, which torch.matmul broadcasts and torch.bmm refuses
        fn = (
            torch.matmul if twin.function == "bmm" else getattr(F, twin.function, None) or getattr(torch, twin.function)
        )
        if "training" in getattr(fn, "__code__", type("c", (), {"co_varnames": ()})).co_varnames:
            args.setdefault("training", False)
        return (lambda *xs: fn(*xs, **args)), _inputs(torch, node, dtype), ""
    name = twin.builder
    if name == "batchnorm2d_twin":
        module = nn.BatchNorm2d(**args).to(dtype).train(False)
        return module, _inputs(torch, node, dtype), ""
    if name in ("maxpool2d_twin", "avgpool2d_twin", "adaptive_avg_pool2d_twin"):
        cls = {"maxpool2d_twin": nn.MaxPool2d, "avgpool2d_twin": nn.AvgPool2d,
               "adaptive_avg_pool2d_twin": nn.AdaptiveAvgPool2d}[name]  # fmt: skip
        return cls(**args), _inputs(torch, node, dtype), ""
    if name == "embedding":
        module = nn.Embedding(**args).to(dtype)
        shape = [int(d) for d in node.inputs[0]]
        return module, [torch.randint(0, args["num_embeddings"], shape)], ""
    if name == "multi_head_attention":
        layer = _Attention(torch, values, dtype)
        xs = _inputs(torch, node, dtype)[:2]
        past = int(values.get("past", 0)) if values.get("kv_cache") else 0
        if past:
            b = xs[0].shape[0]
            xs += [torch.randn(b, layer.kv_heads, past, layer.head_dim, dtype=dtype) for _ in range(2)]
        return layer, xs, ""
    xs = _inputs(torch, node, dtype)
    if name == "stochastic_depth_twin" and not values.get("training"):
        return None, [], "identity at inference: not timed"
    if name == "upsample_nearest2d":
        return nn.Upsample(scale_factor=tuple(float(f) for f in args["scale_factor"]), mode="nearest"), xs, ""
    if name == "softmax2d":
        return nn.Softmax2d(), xs, ""
    if name == "instancenorm2d_twin":
        return nn.InstanceNorm2d(**args).to(dtype).train(False), xs, ""
    if name == "layernorm_channels_first_twin":
        norm = nn.LayerNorm(**args).to(dtype)
        dims = len(node.inputs[0])
        to_last, to_first = (0, *range(2, dims), 1), (0, dims - 1, *range(1, dims - 1))
        return (lambda x: norm(x.permute(to_last)).permute(to_first)), xs, ""
    if name == "add_learned":
        learned = torch.randn(1, *xs[0].shape[1:], dtype=dtype)
        return (lambda x: x + learned), xs, ""
    if name == "flatten_spatial":
        return (lambda x: torch.flatten(x, 2)), xs, ""
    if name == "prepend_tokens":
        n, t, d = (int(v) for v in node.inputs[0])
        tokens = torch.randn(1, int(node.output[1]) - t, d, dtype=dtype)
        return (lambda x: torch.cat([tokens.expand(n, -1, -1), x], dim=1)), xs, ""
    if name == "sdpa":
        gqa = xs[0].shape[1] != xs[1].shape[1]
        causal = bool(values.get("causal")) and xs[0].shape[2] == xs[1].shape[2]
        return (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)), xs, ""
    raise UsageError(f"no torch op for '{op}' (layer '{node.path}', builder '{name}')")


def _median_ms(torch: Any, call: Callable[[], Any], repeat: int, warmup: int) -> float:
    with torch.inference_mode():
        for _ in range(warmup):
            call()
        times = []
        for _ in range(repeat):
            start = time.perf_counter_ns()
            call()
            times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e6


def measure_graph(built: Any, *, dtype: str = "fp32", repeat: int = 10, warmup: int = 2,
                  per_layer: bool = True, threads: int | None = None) -> tuple[Timed, list[Timed]]:  # fmt: skip
    """(whole model, layers) timed on this machine's CPU."""
    torch = _torch(threads)
    if dtype not in TORCH_DTYPES:
        raise UsageError(f"symcost measure times {', '.join(TORCH_DTYPES)} on the CPU, not '{dtype}'")
    tdtype = getattr(torch, TORCH_DTYPES[dtype])
    if repeat < 1 or warmup < 0:
        raise UsageError("--repeat must be at least 1 and --warmup at least 0")
    ops: list[tuple[Any, Callable[..., Any] | None, list[Any], int]] = []
    unsupported: list[str] = []
    for node in built.nodes:
        try:
            fn, inputs, _ = build_op(torch, node, tdtype)
            if fn is not None:
                with torch.inference_mode():
                    fn(*inputs)  # once, so that an op torch refuses is named before any timing
        except UsageError as exc:
            unsupported.append(str(exc))
            continue
        except (RuntimeError, TypeError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UsageError(f"layer '{node.path}' ({node.op}) fails in torch: {first}") from None
        ops.append((node, fn, inputs, int(node.count)))
    if unsupported:
        listed = "; ".join(sorted(set(u.split(" (layer")[0] for u in unsupported)))
        raise UsageError(f"cannot build every layer in torch ({listed})")
    timed_ops = [(node, fn, inputs, copies) for node, fn, inputs, copies in ops if fn is not None]

    def whole() -> None:
        for _node, fn, inputs, copies in timed_ops:
            for _ in range(copies):
                fn(*inputs)

    layers: list[Timed] = []
    if per_layer:
        for node, fn, inputs, copies in timed_ops:
            ms = _median_ms(torch, lambda fn=fn, inputs=inputs: fn(*inputs), repeat, warmup)
            layers.append(Timed(node.path, node.op, copies, ms * copies))
    total = Timed("", "", 1, _median_ms(torch, whole, repeat, warmup))
    return total, layers


def describe_machine() -> str:
    torch = _torch()
    return (f"{platform.machine()} {platform.processor() or platform.system()}, {os.cpu_count()} CPUs, "
            f"torch {torch.__version__} with {torch.get_num_threads()} threads")  # fmt: skip


def rows_for(arch: str, values: Mapping[str, int], phase: str, dtype: str, device: str, total: Timed,
             layers: list[Timed], repeat: int, batch: int | None) -> list[dict[str, str]]:  # fmt: skip
    """CSV rows in benchmarks/latency/dataset.csv's columns (plus layer, op, copies)."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    setting = " ".join(f"{k}={v}" for k, v in values.items())
    common = {
        "model": arch, "set": setting, "phase": phase if phase in ("prefill", "decode") else "-",
        "batch": "" if batch is None else str(batch), "dtype": dtype, "device": device, "runtime": "eager",
        "regime": "own-cpu", "source": f"symcost measure on this machine ({describe_machine()}), {when}",
        "source_group": "own-measurement", "split": "own", "pending": "",
    }  # fmt: skip
    rows = [{**common, "id": "M000", "measured_ms": f"{total.ms:.4g}", "layer": "", "op": "", "copies": "1",
             "notes": f"whole model: every layer once per copy in graph order, median of {repeat} passes"}]  # fmt: skip
    for i, t in enumerate(layers, 1):
        rows.append({**common, "id": f"M{i:03d}", "measured_ms": f"{t.ms:.4g}", "layer": t.path, "op": t.op,
                     "copies": str(t.copies), "notes": f"this layer alone, median of {repeat} calls, x {t.copies}"})  # fmt: skip
    return rows


def csv_text(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in COLUMNS})
    return out.getvalue()
