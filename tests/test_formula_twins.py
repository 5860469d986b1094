"""Every formula with a torch twin equals torch exactly: FlopCounterMode FLOPs, parameters,
buffers and output shapes, at points Hypothesis draws from the formula's declared domains."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from symcost import registry

from .twins import build_twin, count, draw_values, evaluate_or_none

TWINNED = [f.name for f in registry.all_formulas() if f.torch is not None]


def test_catalog_has_twins():
    assert len(TWINNED) >= 2


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
