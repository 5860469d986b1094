"""What every torchvision-family test (test_zoo_shufflenet, test_zoo_squeezenet, test_zoo_densenet) checks.

A family test gives a :class:`Zoo`: for each bundled architecture, a factory for its torch.nn reference (written in
the test following torchvision's source; torchvision is not a dependency) and the input sizes (N, H, W) to compare
at, the first being the published 1x3x224x224. The reference is built on the meta device and run under
FlopCounterMode on a meta input; symcost's params, buffers, FLOPs and output shape must equal torch's, and so
must the elements written by torch's add and ReLU kernels (symcost's elementwise 'add' and 'activation') and by
its copying shape ops: aten.cat and aten.clone (ShuffleNet's .contiguous()) against symcost's cat, concat,
channel_shuffle and contiguous layers, with as many aten.cat calls as cat layers. Graphs, references and counts
are cached per session, so each model is built once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from typer.testing import CliRunner

from symcost.cli import app
from symcost.compile import Result, evaluate
from tests.torch_reference import META, check_layer_names, graph, torch_counts

COPY_OPS = {"aten.cat.default", "aten.clone.default"}
SYMCOST_COPY_LAYERS = {"cat", "concat", "channel_shuffle", "contiguous"}

Shape3 = tuple[int, int, int]


class CopyCounter(TorchDispatchMode):
    """Elements written by torch's copying shape ops (cat, and the clone behind .contiguous()), and cat calls."""

    def __init__(self):
        super().__init__()
        self.written = 0
        self.cat_calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = str(func)
        if name in COPY_OPS:
            self.written += out.numel()
            self.cat_calls += name == "aten.cat.default"
        return out


@functools.cache
def ours(arch: str, shape: Shape3 | None = None) -> Result:
    if shape is None:
        return evaluate(graph(arch))
    n, h, w = shape
    return evaluate(graph(arch), {"N": n, "H": h, "W": w})


def _our_totals(r: Result, keys) -> dict:
    copies = [node for node in r.nodes if node.op in SYMCOST_COPY_LAYERS]
    derived = {
        "copy_written": sum(node.values["write"] for node in copies),
        "cat_calls": sum(node.count for node in copies if node.op in {"cat", "concat"}),
    }
    return {key: derived[key] if key in derived else r.totals.get(key, 0) for key in keys}


class Zoo:
    """One family's cases: arch -> (torch reference factory, [(N, H, W), ...]); the first size is 1x224x224."""

    def __init__(self, cases: dict[str, tuple[Callable[[], nn.Module], list[Shape3]]]):
        self.cases = cases
        self.pairs = [(arch, shape) for arch, (_, shapes) in cases.items() for shape in shapes]
        self.ids = [f"{a}-{'x'.join(map(str, s))}" for a, s in self.pairs]
        self.reference = functools.cache(self._reference)
        self.torch_counts = functools.cache(self._torch_counts)

    def _reference(self, arch: str) -> nn.Module:
        with META:
            return self.cases[arch][0]().eval()

    def _torch_counts(self, arch: str, shape: Shape3) -> tuple[dict, tuple[int, ...], dict]:
        n, h, w = shape
        copies = CopyCounter()
        totals, out_shape, per_module = torch_counts(
            self.reference(arch), torch.empty(n, 3, h, w, device=META), modes=(copies,)
        )
        return {**totals, "copy_written": copies.written, "cat_calls": copies.cat_calls}, out_shape, per_module

    def check_equals_torch(self, arch: str, shape: Shape3) -> None:
        totals, out_shape, _ = self.torch_counts(arch, shape)
        r = ours(arch, shape)
        assert _our_totals(r, totals) == totals, f"{arch} at N, H, W = {shape}"
        assert list(r.outputs.values()) == [out_shape]

    def check_layer_names(self, arch: str) -> None:
        """Every layer with parameters or FLOPs is the torch module of the same name, with the same counts."""
        shape = self.cases[arch][1][0]
        _, _, per_module = self.torch_counts(arch, shape)
        check_layer_names(ours(arch, shape), self.reference(arch), per_module, arch)

    def check_published(self, arch: str, params: int, gmacs: float, flops: int) -> None:
        """torchvision's published num_params (exact) and _ops (GMACs to 3 decimals) at 1x3x224x224; ``flops`` is
        2 x the MACs worked out in the architecture file's header."""
        r = ours(arch)
        assert (r.values["N"], r.values["H"], r.values["W"]) == self.cases[arch][1][0], "defaults: the published size"
        assert r.totals["params"] == params
        assert round(r.totals["flops"] / 2e9, 3) == gmacs
        assert r.totals["flops"] == flops
        totals, _, _ = self.torch_counts(arch, self.cases[arch][1][0])
        assert (totals["params"], totals["flops"]) == (params, flops)

    def tests(self, published: dict[str, tuple[int, float, int]]):
        """The three tests every family runs, for its module to bind as ``test_arch_equals_torch,
        test_layers_name_torch_modules, test_published_numbers`` (pytest collects them there)."""

        @pytest.mark.parametrize(("arch", "shape"), self.pairs, ids=self.ids)
        def test_arch_equals_torch(arch, shape):
            self.check_equals_torch(arch, shape)

        @pytest.mark.parametrize("arch", list(self.cases))
        def test_layers_name_torch_modules(arch):
            self.check_layer_names(arch)

        @pytest.mark.parametrize("arch", list(published))
        def test_published_numbers(arch):
            self.check_published(arch, *published[arch])

        return test_arch_equals_torch, test_layers_name_torch_modules, test_published_numbers


def cli_eval(*args: str):
    """``symcost eval ...`` in this process (typer's CliRunner), run from the repository root."""
    return CliRunner().invoke(app, ["eval", *args])
