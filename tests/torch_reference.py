"""What the zoo tests share to count a torch reference and compare symcost against it.

A reference model is run on the meta device under FlopCounterMode and an :class:`ElementwiseCounter`, which adds
up the output elements of the aten ops behind symcost's elementwise counts (the category mapping is a parameter,
as the families use different ops). :func:`torch_counts` gives params, buffers, FLOPs, the elementwise counts,
the output shape and per-module FLOPs; :func:`check_equals_torch` and :func:`check_layer_names` are the two
comparisons every family makes.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import re
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from symcost.arch import load_path
from symcost.compile import Result, evaluate
from symcost.shapes import Graph, build

ARCHS = Path(__file__).resolve().parent.parent / "archs"
META = torch.device("meta")

# torch's add and relu/relu6 kernels: symcost's elementwise 'add' and 'activation'
CNN_CATEGORIES = {
    "aten.add.Tensor": "add",
    "aten.add_.Tensor": "add",
    "aten.relu.default": "activation",
    "aten.relu_.default": "activation",
    "aten.hardtanh.default": "activation",  # F.relu6
    "aten.hardtanh_.default": "activation",  # nn.ReLU6(inplace=True)
}

LEAF_TYPES = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)


class ElementwiseCounter(TorchDispatchMode):
    """Output elements of the aten ops in ``categories`` (aten op name -> symcost elementwise category).

    ``names`` are the categories reported (all of them, zero or not); by default those ``categories`` maps to."""

    CATEGORIES = CNN_CATEGORIES

    def __init__(self, categories: dict[str, str] | None = None, names: Iterable[str] | None = None):
        super().__init__()
        self.categories = self.CATEGORIES if categories is None else categories
        names = dict.fromkeys(self.categories.values()) if names is None else names
        self.counts = dict.fromkeys(names, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        category = self.categories.get(str(func))
        if category is not None:
            self.counts[category] += out.numel()
        return out


class Permute(nn.Module):
    """torchvision.ops.misc.Permute: ``torch.permute(x, dims)``."""

    def __init__(self, dims: list[int]):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return torch.permute(x, self.dims)


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth in eval mode: ``if not training or p == 0.0: return input``."""

    def __init__(self, p: float, mode: str = "row"):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        raise NotImplementedError("the reference runs in eval mode")


def torch_counts(
    model: nn.Module, *inputs, counter: ElementwiseCounter | None = None, modes: Iterable = (), **kwargs
) -> tuple[dict, tuple[int, ...], dict]:
    """``model(*inputs, **kwargs)`` counted: (totals, output shape, FLOPs per module). ``modes`` are further
    dispatch modes entered around the run."""
    elementwise = ElementwiseCounter() if counter is None else counter
    with FlopCounterMode(display=False) as flops, elementwise, contextlib.ExitStack() as stack:
        for mode in modes:
            stack.enter_context(mode)
        y = model(*inputs, **kwargs)
    totals = {
        "params": sum(p.numel() for p in model.parameters()),
        "buffers": sum(b.numel() for b in model.buffers()),
        "flops": flops.get_total_flops(),
        **{f"elementwise.{k}": v for k, v in elementwise.counts.items()},
    }
    per_module = {name: sum(ops.values()) for name, ops in flops.get_flop_counts().items()}
    return totals, tuple(y.shape), per_module


def image(shape: tuple[int, int, int], channels: int = 3) -> torch.Tensor:
    """A meta input N x channels x H x W."""
    n, h, w = shape
    return torch.empty(n, channels, h, w, device=META)


@functools.cache
def graph(arch: str) -> Graph:
    return build(load_path(ARCHS / f"{arch}.yaml"))


def at(g: Graph, shape: tuple[int, int, int], **values) -> Result:
    """``g`` evaluated at N, H, W = ``shape`` (and ``values``)."""
    n, h, w = shape
    return evaluate(g, {**values, "N": n, "H": h, "W": w})


def pair_ids(pairs) -> list[str]:
    return [f"{a}-{'x'.join(map(str, s))}" for a, s in pairs]


def check_equals_torch(r: Result, totals: dict, out_shape: tuple[int, ...], label: str) -> None:
    """symcost's totals (0 where absent) equal torch's, and its one output has torch's shape."""
    got = {key: r.totals.get(key, 0) for key in totals}
    assert got == totals, label
    assert list(r.outputs.values()) == [out_shape]


_RANGE = re.compile(r"\.(\d+)-(\d+)(?=\.|$)")


def copies(path: str, count: int) -> list[str]:
    """A repeated node's path ``layer1.1-2.conv1`` as the paths of its copies."""
    match = _RANGE.search(path)
    if match is None:
        assert count == 1, path
        return [path]
    first, last = int(match[1]), int(match[2])
    assert last - first + 1 == count, path
    return [f"{path[: match.start()]}.{i}{path[match.end() :]}" for i in range(first, last + 1)]


def check_layer_names(
    r: Result, model: nn.Module, per_module: dict, label: str, root: str | None = None, leaf_types=LEAF_TYPES
) -> int:
    """Every layer with parameters or FLOPs is the torch module of the same name, with the same counts; as many
    as ``model`` has modules of ``leaf_types``. Returns how many were checked."""
    root = type(model).__name__ if root is None else root
    modules = dict(model.named_modules())
    checked = 0
    for node in r.nodes:
        if not (node.values["params"] or node.values["flops"]):
            continue
        for path in copies(node.path, node.count):
            assert path in modules, f"{label}: no torch module named {path}"
            module = modules[path]
            assert sum(p.numel() for p in module.parameters()) * node.count == node.values["params"], path
            assert per_module.get(f"{root}.{path}", 0) * node.count == node.values["flops"], path
            checked += 1
    assert checked == sum(1 for m in modules.values() if isinstance(m, leaf_types))
    return checked


def peer_counts(model: nn.Module, tool: str) -> tuple[int, int | None]:
    """What thop 0.1.1, ptflops 0.7.5 or fvcore 0.1.5 count on ``model`` at 1x3x224x224: (FLOPs, params; None for
    fvcore, which reports no params). Run as tests/test_peer_conventions.py runs them: thop on meta, the others
    on CPU with zeroed weights, in eval mode and on one thread; ``model`` itself is left as it was."""
    from .test_peer_conventions import _fvcore, _one_thread, _ptflops, _thop

    if tool == "thop":
        flops, params, _ = _thop(copy.deepcopy(model), torch.empty(1, 3, 224, 224, device=META))
        return flops, params
    cpu = copy.deepcopy(model).to_empty(device="cpu")
    with torch.no_grad():
        for tensor in [*cpu.parameters(), *cpu.buffers()]:
            tensor.zero_()
    with _one_thread():
        if tool == "ptflops":
            return _ptflops(cpu.eval(), (3, 224, 224))
        return _fvcore(cpu.eval(), torch.zeros(1, 3, 224, 224))[0], None
