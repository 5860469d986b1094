"""Memory a network needs on a device: weights, activations, KV cache, and training state.

Inference keeps a tensor only until its last reader has run, so the activation memory of a forward
pass is the largest set of tensors alive at once (a liveness peak over the layers in file order),
not the sum of every layer's output. A repeated block is walked once: its copies run one after
another and free their intermediates.

Training keeps every layer's output for the backward pass, and adds gradients and optimizer
state. ZeRO's accounting (Rajbhandari et al. 2020, section 3.1): mixed-precision Adam holds 16
bytes per parameter: 2 (fp16 weights) + 2 (fp16 gradients) + 4 (fp32 master weights) + 4 + 4
(Adam's two fp32 moments).

>>> training_state(1_000_000, "bf16", "adam")
{'weights': 2000000, 'gradients': 2000000, 'master_weights': 4000000, 'optimizer': 8000000}
>>> sum(training_state(1_000_000, "fp32", "adam").values())   # 4 + 4 + 8 bytes per parameter
16000000
"""

from __future__ import annotations

from math import prod
from typing import Any

from .cost import dtype_bits, to_bytes
from .errors import UsageError, did_you_mean

#: Optimizer state in fp32 values per parameter (Adam: two moments; SGD with momentum: one).
OPTIMIZERS = {"adam": 2, "sgd": 1, "none": 0}


def peak_activations(result: Any) -> int:
    """Elements alive at once at the worst layer of one forward pass (inference).

    A tensor is alive from the layer that writes it to the last layer that reads it; the
    architecture's inputs from the start, its outputs to the end. During each layer its inputs and
    its output are alive together.
    """
    nodes = {r.index: r for r in result.nodes if r.count}  # a repeat with no copies writes nothing
    size = {index: prod(r.output) for index, r in nodes.items()}
    for i, shape in enumerate(result.inputs.values()):
        size[-1 - i] = prod(shape)
    last_use = {key: key for key in size}  # an unread tensor dies after its own layer
    for i in range(len(result.inputs)):
        last_use[-1 - i] = -1
    for index, r in nodes.items():
        for source in r.sources:
            if source in last_use:
                last_use[source] = max(last_use[source], index)
    end = max(nodes, default=0)
    for source in result.graph.output_sources:
        if source in last_use:
            last_use[source] = end
    alive = sum(size[-1 - i] for i in range(len(result.inputs)))
    peak = alive
    dying: dict[int, int] = {}
    for i in range(len(result.inputs)):
        dying[last_use[-1 - i]] = dying.get(last_use[-1 - i], 0) + size[-1 - i]
    alive -= dying.pop(-1, 0)  # inputs nobody reads
    for index in sorted(nodes):
        alive += size[index]
        peak = max(peak, alive)
        dying[last_use[index]] = dying.get(last_use[index], 0) + size[index]
        alive -= dying.pop(index, 0)
    return peak


def training_state(params: int, dtype: str, optimizer: str) -> dict[str, int]:
    """Bytes of weights, gradients, fp32 master weights (when ``dtype`` is narrower than fp32) and
    optimizer state for ``params`` trainable parameters."""
    if optimizer not in OPTIMIZERS:
        raise UsageError(
            f"unknown optimizer '{optimizer}'{did_you_mean(optimizer, OPTIMIZERS)}; choose from {', '.join(OPTIMIZERS)}"
        )
    return {
        "weights": to_bytes(params, dtype),
        "gradients": to_bytes(params, dtype),
        "master_weights": to_bytes(params, "fp32") if dtype_bits(dtype) < 32 else 0,
        "optimizer": to_bytes(OPTIMIZERS[optimizer] * params, "fp32"),
    }


def needed(result: Any, dtype: str, *, training: bool = False, optimizer: str = "adam",
           precision: Any = None) -> dict[str, int]:  # fmt: skip
    """Bytes a device must hold for one pass of ``result``, by what they are.

    Inference: weights (params + buffers), the KV cache, and the activations alive at once.
    Training: :func:`training_state`, buffers, and every layer's output kept for the backward pass.
    With a mixed :class:`~symcost.precision.Precision` (inference), weights, KV cache and activations
    each at their own format.
    """
    totals = result.totals
    if training:
        return {
            **training_state(totals["params"], dtype, optimizer),
            "buffers": to_bytes(totals["buffers"], dtype),
            "activations": to_bytes(totals["write"], dtype),
        }
    if precision is not None and not precision.uniform:
        return {
            "weights": precision.weight_bytes(totals["params"] + totals["buffers"]),
            "kv_cache": precision.kv_bytes(totals["cache"]),
            "activations": precision.act_bytes(peak_activations(result)),
        }
    return {
        "weights": to_bytes(totals["params"] + totals["buffers"], dtype),
        "kv_cache": to_bytes(totals["cache"], dtype),
        "activations": to_bytes(peak_activations(result), dtype),
    }
