"""The zoo page's closed forms in the input size, checked against torch at sizes the page's
arithmetic has not seen."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from symcost import zoo

from .test_archs_cnn import reference


@pytest.mark.parametrize(("name", "h", "w"), [("resnet50", 8, 10), ("resnet18", 3, 5)])
def test_resnet_size_form_equals_torch_at_other_sizes(name, h, w):
    """ResNet's FLOPs for H = 32h, W = 32w, against FlopCounterMode on the torch.nn reference."""
    row = zoo.size_form(name)
    assert row.divisor == 32 and row.remainders == (0, 0)
    symbols = {s.name: s for s in row.expression.free_symbols}
    model = reference(name)
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, 32 * h, 32 * w, device="meta"))
    assert row.expression.xreplace({symbols["h"]: h, symbols["w"]: w}) == counter.get_total_flops()
