"""Importers: another framework's description of a model, written as a symcost architecture file.

Each importer is a module of its own, imported only by the command that uses it, so that
``import symcost`` never imports torch or onnx:

- :mod:`symcost.importing.torch`: an ``nn.Module`` traced on fake tensors (``symcost import torch``,
  :func:`symcost.from_torch`); needs the ``torch`` extra (``pip install "symcost[torch]"``).
- :mod:`symcost.importing.onnx`: a local ``.onnx`` file (``symcost import onnx``,
  :func:`symcost.from_onnx`); needs the ``onnx`` extra (``pip install "symcost[onnx]"``).

What every importer returns is an :class:`Imported`-like object: ``.to_yaml()`` (the text a person
reads and edits) and ``.arch`` (the loaded architecture, which every symcost function accepts).
"""

from __future__ import annotations

from ..errors import SymcostError


class ImporterError(SymcostError):
    """A model symcost cannot import: a missing extra, an op with no formula, a trace that failed."""


def missing_extra(extra: str, package: str) -> ImporterError:
    """The error for an importer whose optional dependency is not installed, naming the extra.

    >>> str(missing_extra("torch", "torch"))
    'symcost import torch needs torch, which is not installed: pip install "symcost[torch]"'
    """
    return ImporterError(
        f'symcost import {extra} needs {package}, which is not installed: pip install "symcost[{extra}]"'
    )
