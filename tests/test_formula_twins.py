"""Every formula with a torch twin equals torch exactly: FlopCounterMode FLOPs, parameters,
buffers and output shapes, at points Hypothesis draws from the formula's declared domains."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from symcost import registry

from .twins import BUILDERS, build_twin, count, draw_values, evaluate_or_none

TWINNED = [f.name for f in registry.all_formulas() if f.torch is not None]


def test_catalog_has_twins():
    assert len(TWINNED) >= 2
    # every formula is checked against torch or says why it cannot be, and every twin resolves:
    # a torch.nn module, a torch(.nn.functional) function, or a builder in tests/builders_*.py
    for formula in registry.all_formulas():
        twin = formula.torch
        if twin is None:
            assert formula.no_torch_twin.strip(), formula.name
        elif twin.builder:
            assert twin.builder in BUILDERS, f"{formula.name}: no @builder {twin.builder}"
        elif twin.module:
            assert isinstance(getattr(torch.nn, twin.module, None), type), f"{formula.name}: torch.nn.{twin.module}"
        else:
            assert callable(getattr(F, twin.function, None) or getattr(torch, twin.function, None)), formula.name
    # and no builder is left over from a formula that stopped using it
    used = {f.torch.builder for f in registry.all_formulas() if f.torch is not None and f.torch.builder}
    assert set(BUILDERS) == used


@pytest.mark.parametrize("name", TWINNED)
@given(data=st.data())
def test_formula_equals_torch(name, data):
    formula = registry.get(name)
    values = draw_values(formula, data)
    ours = evaluate_or_none(formula, values)
    assume(ours is not None)
    fn, inputs, module = build_twin(formula, values)
    torch_flops, outputs = count(fn, inputs)
    assert ours.flops == torch_flops, f"{name} at {values}: symcost {ours.flops} vs torch {torch_flops}"
    for (out_name, shape), tensor in zip(ours.outputs.items(), outputs):
        assert shape == tuple(tensor.shape), f"{name} output {out_name} at {values}"
    assert len(outputs) >= len(ours.outputs)
    if module is not None:
        assert ours.params == sum(p.numel() for p in module.parameters()), f"{name} params at {values}"
        assert ours.buffers == sum(b.numel() for b in module.buffers()), f"{name} buffers at {values}"
