"""What every command takes, checked: an architecture (a bundled name, a path or YAML text),
variable values (``--set``), and the options that say how to count and where (:class:`Options`).

>>> load("gpt2").name
'gpt2'
>>> parse_assignments(["H=320,bias=false"], {})
{'H': 320, 'bias': False}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .budgets import exact_number as exact_number
from .errors import Location, SymcostError, UsageError, did_you_mean

PHASES_BUILTIN = ("inference", "train")


# ---- loading --------------------------------------------------------------------------------------


def load(source: Any) -> Any:
    """An :class:`~symcost.arch.Arch` from a bundled name, a path, or YAML text.

    >>> load("gpt2").name
    'gpt2'
    >>> load("name: tiny\\nsummary: one layer\\ninputs: {x: [1, 4]}\\nlayers: [{op: linear, out_features: 2}]").name
    'tiny'
    """
    from . import arch as arch_module

    if isinstance(source, arch_module.Arch):
        return source
    if hasattr(source, "arch") and isinstance(source.arch, arch_module.Arch):  # a graph
        return source.arch
    text = str(source) if isinstance(source, (str, Path)) else ""
    if text and "\n" not in text and (text.endswith(".json") or Path(text).is_dir()):
        from . import hf  # imported only for a config.json, or a folder that may hold one

        config = hf.config_path(text)  # a Hugging Face config.json, or a folder holding one
        if config is not None:
            return hf.load(config)
    if isinstance(source, Path):
        return arch_module.load_path(source)
    if not isinstance(source, str):
        raise UsageError(f"expected an architecture name, path or YAML text, got {type(source).__name__}")
    if "\n" in source or (":" in source and not Path(source).exists() and Path(source).suffix not in (".yaml", ".yml")):
        return arch_module.load_text(source)
    return arch_module.load_path(source)


_ASSIGN = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*=(.*)$", re.S)


def parse_assignments(items: Sequence[str], names: Mapping[str, Any]) -> dict[str, Any]:
    """``["kernel=3", "stride=1,padding=1", "bias=false", "W=H"]`` → values (``--set``).

    Values are integers, ``true``/``false``, or expressions over ``names``, parsed by the safe
    parser (never ``eval``).

    >>> parse_assignments(["H=320,bias=false"], {})
    {'H': 320, 'bias': False}
    """
    values: dict[str, Any] = {}
    for item in items:
        for part in split_top_level(item):
            match = _ASSIGN.match(part)
            if not match:
                raise UsageError(f"expected NAME=VALUE, got {part!r}", Location("--set"))
            values[match.group(1)] = _value(match.group(1), match.group(2).strip(), names)
    return values


def _value(key: str, text: str, names: Mapping[str, Any], api: bool = False) -> Any:
    """One ``--set`` value (or, with ``api``, one value of a Python call's ``values=``, whose errors
    name it as the caller wrote it: ``values['N']``)."""
    from . import expr

    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        value = expr.parse(text, names)
    except SymcostError as exc:
        shown = text if len(text) <= 80 else text[:60] + "..."
        if api:
            raise UsageError(f"values[{key!r}] = {shown!r}: {exc.message}") from None
        raise UsageError(f"{key}={shown}: {exc.message}", Location("--set")) from None
    return int(value) if value.is_Integer else value


def split_top_level(text: str) -> list[str]:
    """Split ``"kernel=3,stride=1"`` on commas outside parentheses (``max(a, b)`` stays whole).

    >>> split_top_level("H=max(1, 2),W=3")
    ['H=max(1, 2)', 'W=3']
    """
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def free_names(free: str | Sequence[str]) -> list[str]:
    """``"H,W"`` or ``["H", "W"]`` → ``["H", "W"]``."""
    return [n.strip() for n in free.split(",") if n.strip()] if isinstance(free, str) else list(free)


def metric_names(metrics: str | Sequence[str]) -> list[str]:
    """``"flops,params"`` or ``["flops", "params"]`` → ``["flops", "params"]``."""
    return [n.strip() for n in metrics.split(",") if n.strip()] if isinstance(metrics, str) else list(metrics)


def callable_module(name: str, function: Any) -> None:
    """Make the module ``name`` callable: ``symcost.sweep(...)`` calls its whole-network ``run``
    while ``symcost.sweep.sweep`` and the rest stay what they were."""
    import sys
    import types

    class CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

    sys.modules[name].__class__ = CallableModule


def _names(arch: Any) -> dict[str, Any]:
    return {v.name: v.symbol for v in arch.variables.values()}


def bind_values(arch: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """Python values for an architecture's variables: text is parsed as an expression (``W="H"``)."""
    names = _names(arch)
    return {k: _value(k, v, names, api=True) if isinstance(v, str) else v for k, v in values.items()}


def phase_values(arch: Any, phase: str) -> dict[str, Any]:
    """The values a phase sets (``decode: {S: 1, ctx: 4095}``); an unknown phase is an error."""
    phases = arch.phases
    if phase not in PHASES_BUILTIN and phase not in phases:
        known = [*PHASES_BUILTIN, *phases]
        raise UsageError(
            f"'{arch.name}' has no phase '{phase}'{did_you_mean(phase, known)}; its phases: {', '.join(known)}"
        )
    return dict(phases[phase].values) if phase in phases else {}


def graph(arch: Any, values: Mapping[str, Any] | None = None, *, phase: str = "inference", numeric: bool = False
          ) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """The shape-propagated graph and its variable values: the phase's, then ``values``.
    The graph is built at those values, which decide any ``when`` that reads a variable; with
    ``numeric`` it is the graph of that one point (no closed forms: a faster build)."""
    from . import shapes

    if hasattr(arch, "nodes") and hasattr(arch, "arch") and not values and phase == "inference" and not numeric:
        return arch, {}
    loaded = load(arch)
    given = {**phase_values(loaded, phase), **bind_values(loaded, values or {})}
    return shapes.build(loaded, given, numeric=numeric), given


# ---- how a metric is counted and timed --------------------------------------------------------------


def counting(name: str = "torch", count_elementwise: str | Sequence[str] = "") -> Any:
    """A counting convention (``torch``, ``thop``, ...), with elementwise categories folded into FLOPs."""
    from . import cost

    chosen = cost.preset(name)
    if count_elementwise:
        text = count_elementwise if isinstance(count_elementwise, str) else ",".join(count_elementwise)
        chosen = chosen.with_elementwise(cost.parse_categories(text))
    return chosen


counting_ = counting  # for functions whose ``convention`` argument hides the name


@dataclass(frozen=True)
class Options:
    """The options ``eval``, ``sweep``, ``solve`` and ``compare`` share: how to count, and where
    (the device, its dtype and derating, the phase)."""

    convention: str = "torch"
    count_elementwise: str = ""
    device: str | None = None
    device_files: tuple[str, ...] = ()
    dtype: str = "fp32"
    efficiency: float = 1.0
    memory_efficiency: float | None = None
    overlap: str = "max"
    waves: bool = False
    phase: str = "inference"
    optimizer: str = "adam"
    weight_dtype: str | None = None  # storage formats (symcost.precision); None: --dtype
    act_dtype: str | None = None
    kv_dtype: str | None = None
    runtime: str | None = None  # a bundled runtime's name (default: runtimes.DEFAULT)
    runtime_file: str | None = None

    def precision(self) -> Any:
        """The :class:`~symcost.precision.Precision`: --dtype computes, and stores what is not set apart."""
        from .precision import Precision

        chosen = Precision.of(self.dtype, self.weight_dtype, self.act_dtype, self.kv_dtype)
        if self.phase == "train" and not chosen.uniform:
            raise UsageError(
                "--weight-dtype, --act-dtype and --kv-dtype cost inference: with --phase train, use --dtype"
            )
        return chosen

    def setting(self) -> Any:
        """The :class:`~symcost.metrics.Setting`: the options checked, the device's roof built."""
        from . import cost, metrics

        counting = counting_(self.convention, self.count_elementwise)
        precision = self.precision()
        if self.overlap not in ("max", "none"):
            raise UsageError(f"--overlap must be max or none, got '{self.overlap}'")
        efficiency = exact_number(self.efficiency, "--efficiency")
        memory_efficiency = exact_number(self.memory_efficiency or 0, "--memory-efficiency")
        if not 0 <= efficiency <= 1 or not 0 <= memory_efficiency <= 1:
            raise UsageError("--efficiency and --memory-efficiency are fractions between 0 and 1")
        training = self.phase == "train"
        if self.device is None:
            for flag, given in (("--efficiency", self.efficiency != 1.0),
                                ("--memory-efficiency", self.memory_efficiency is not None),
                                ("--overlap", self.overlap != "max"), ("--waves", self.waves),
                                ("--runtime", self.runtime is not None),
                                ("--runtime-file", self.runtime_file is not None)):  # fmt: skip
                if given:
                    raise UsageError(f"{flag} needs --device")
            return metrics.Setting(convention=counting, dtype=self.dtype, training=training, optimizer=self.optimizer,
                                   precision=precision)  # fmt: skip
        from . import devices, roofline

        if counting.flops_per_mac != cost.FLOPS_PER_MAC:
            raise UsageError(f"--convention {counting.name} with --device: the latency needs FLOPs, 2 per MAC (torch)")
        chosen = devices.find(self.device, tuple(self.device_files))
        roof = roofline.roof_for(chosen, self.dtype, efficiency=self.efficiency,
                                 memory_efficiency=self.memory_efficiency, overlap=self.overlap == "max")  # fmt: skip
        return metrics.Setting(counting, self.dtype, roof, chosen, training, self.optimizer, self.waves, precision,
                               self.chosen_runtime())  # fmt: skip

    def chosen_runtime(self) -> Any:
        """The :class:`~symcost.runtimes.Runtime`: ``--efficiency``, ``--memory-efficiency``, ``--overlap
        none`` and ``--waves`` derate the pure roofline, so without ``--runtime`` they choose it."""
        from . import runtimes

        derating = [flag for flag, given in (("--efficiency", self.efficiency != 1.0),
                                             ("--memory-efficiency", self.memory_efficiency is not None),
                                             ("--overlap", self.overlap != "max"), ("--waves", self.waves)) if given]  # fmt: skip
        if derating and self.runtime is None and self.runtime_file is None:
            return runtimes.find("roofline")
        chosen = runtimes.find(self.runtime, self.runtime_file)
        if derating and not chosen.bound:
            raise UsageError(f"{derating[0]} derates the roofline; runtime '{chosen.name}' states its own "
                             "efficiencies (edit them in a --runtime-file, or give --runtime roofline)")  # fmt: skip
        return chosen


def seconds(text: Any, what: str = "target_latency") -> Fraction | None:
    """``0.1``, ``"100ms"``, ``"250us"`` → exact seconds.

    >>> seconds("250us")
    Fraction(1, 4000)
    """
    if text is None:
        return None
    if isinstance(text, (int, float, Fraction)) and not isinstance(text, bool):
        value = exact_number(text, what)
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:e-?[0-9]+)?)\s*(s|ms|us|µs)?\s*", str(text))
        if not match:
            raise UsageError(f"{what}: expected seconds like 0.1, 100ms or 250us, got {text!r}")
        unit = {"s": 1, "ms": Fraction(1, 1000), "us": Fraction(1, 10**6), "µs": Fraction(1, 10**6)}
        value = exact_number(match.group(1), what) * unit[match.group(2) or "s"]
    if value <= 0:
        raise UsageError(f"{what} must be positive")
    return value
