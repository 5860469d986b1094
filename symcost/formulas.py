"""Attribute access to the catalog: ``from symcost import formulas; formulas.conv2d.flops``.

>>> from symcost import formulas
>>> formulas.linear.params
bias*out_features + in_features*out_features
>>> formulas.linear.evaluate(batch=1, in_features=100, out_features=50).params
5050
"""

from __future__ import annotations

from . import registry
from .formula import Formula


def __getattr__(name: str) -> Formula:
    if name.startswith("__"):
        raise AttributeError(name)
    return registry.get(name)


def __dir__() -> list[str]:
    return registry.names()
