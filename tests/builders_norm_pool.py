"""Twins of the norm and pooling formulas that the ``torch:`` grammar cannot state alone.

- ``batchnorm*``, ``instancenorm*``: their formulas take a ``training`` attribute; the module is
  put in ``train()`` or ``eval()`` mode by it, which decides whether batch (or instance) statistics
  are used, and so what torch accepts and which running statistics it reads and updates.
- pooling: ``nn.MaxPool2d`` and the other pooling modules have no parameters and take no
  ``device`` argument, so the module is built without one; the input is on the meta device.

Each builder takes the drawn values (plus ``"_args"``, the formula's evaluated ``torch.args``) and
returns ``(module, input tensors)``, the input ``[N, C, *spatial]``.
"""

from __future__ import annotations

from typing import Any

import torch

from .twins import META, builder

SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _norm_twin(module_name: str, dims: int, values: dict[str, Any]):
    module = getattr(torch.nn, module_name)(**values["_args"], device=META)
    module.train(bool(values["training"]))
    shape = (values["N"], values["C"], *(values[s] for s in SPATIAL[dims]))
    return module, [torch.empty(shape, device=META)]


@builder
def batchnorm1d_twin(values: dict[str, Any]):
    return _norm_twin("BatchNorm1d", 1, values)


@builder
def batchnorm2d_twin(values: dict[str, Any]):
    return _norm_twin("BatchNorm2d", 2, values)


@builder
def batchnorm3d_twin(values: dict[str, Any]):
    return _norm_twin("BatchNorm3d", 3, values)


@builder
def instancenorm1d_twin(values: dict[str, Any]):
    return _norm_twin("InstanceNorm1d", 1, values)


@builder
def instancenorm2d_twin(values: dict[str, Any]):
    return _norm_twin("InstanceNorm2d", 2, values)


@builder
def instancenorm3d_twin(values: dict[str, Any]):
    return _norm_twin("InstanceNorm3d", 3, values)


def _pool_twin(module_name: str, dims: int, values: dict[str, Any]):
    module = getattr(torch.nn, module_name)(**values["_args"])
    shape = (values["N"], values["C"], *(values[s] for s in SPATIAL[dims]))
    return module, [torch.empty(shape, device=META)]


@builder
def maxpool1d_twin(values: dict[str, Any]):
    return _pool_twin("MaxPool1d", 1, values)


@builder
def maxpool2d_twin(values: dict[str, Any]):
    return _pool_twin("MaxPool2d", 2, values)


@builder
def maxpool3d_twin(values: dict[str, Any]):
    return _pool_twin("MaxPool3d", 3, values)


@builder
def avgpool1d_twin(values: dict[str, Any]):
    return _pool_twin("AvgPool1d", 1, values)


@builder
def avgpool2d_twin(values: dict[str, Any]):
    return _pool_twin("AvgPool2d", 2, values)


@builder
def avgpool3d_twin(values: dict[str, Any]):
    return _pool_twin("AvgPool3d", 3, values)


@builder
def adaptive_avg_pool1d_twin(values: dict[str, Any]):
    return _pool_twin("AdaptiveAvgPool1d", 1, values)


@builder
def adaptive_avg_pool2d_twin(values: dict[str, Any]):
    return _pool_twin("AdaptiveAvgPool2d", 2, values)


@builder
def adaptive_avg_pool3d_twin(values: dict[str, Any]):
    return _pool_twin("AdaptiveAvgPool3d", 3, values)


@builder
def adaptive_max_pool2d_twin(values: dict[str, Any]):
    return _pool_twin("AdaptiveMaxPool2d", 2, values)


@builder
def global_avg_pool2d_twin(values: dict[str, Any]):
    return _pool_twin("AdaptiveAvgPool2d", 2, values)
