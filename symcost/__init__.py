"""symcost: closed-form FLOPs, MACs, parameters and memory traffic of neural networks.

A whole network, as ``symcost eval resnet50 --device a100 --dtype bf16`` prints it, as data:

>>> import symcost
>>> symcost.estimate("resnet50", device="a100", dtype="bf16").totals["flops"]
8178368512

One layer's closed form:

>>> from symcost import formulas
>>> formulas.conv2d.evaluate(N=1, C_in=3, H=224, W=224, C_out=64, kernel=3, stride=2, padding=1).flops
43352064

Submodules load lazily, so ``import symcost`` stays cheap (no torch or matplotlib, ever; numpy only when a sweep or a solve runs).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["formulas", "get_formula", "__version__", "load", "evaluate", "estimate", "derive", "sweep", "solve",
           "compare", "Options", "from_torch", "from_onnx"]  # fmt: skip
#: The whole-network functions (symcost.api); ``sweep``, ``solve`` and ``compare`` are their modules, callable.
_API = {"load", "evaluate", "estimate", "derive", "Options", "NetworkCost", "Derivation", "from_torch", "from_onnx"}


def get_formula(name: str) -> Any:
    """The formula called ``name`` (``symcost.get_formula("conv2d")``)."""
    from .registry import get

    return get(name)


def __getattr__(name: str) -> Any:
    if name in {"formulas", "registry", "formula", "cost", "expr", "errors", "yamlio", "report", "cli", "arch",
                "shapes", "compile", "devices", "roofline", "memory", "plot", "program", "metrics", "sweep",
                "solve", "compare", "simplify", "report_analysis", "api", "inputs", "formats", "keys", "printer",
                "bundled", "evaluation", "display", "zoo"}:  # fmt: skip
        return importlib.import_module(f".{name}", __name__)
    if name in _API:
        return getattr(importlib.import_module(".api", __name__), name)
    raise AttributeError(f"module 'symcost' has no attribute {name!r}")
