"""The ``symcost`` command: parse options, call the library, hand the result to :mod:`report`.

Every :class:`~symcost.errors.SymcostError` becomes one ``Error: file:line:col: ...`` line on
stderr and exit status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from .errors import Location, SymcostError, UsageError, did_you_mean

app = typer.Typer(
    name="symcost",
    help=(
        "Closed-form FLOPs, MACs, parameters and memory traffic of neural-network layers, "
        "with no framework and no forward pass; roofline latency on a device.\n\n"
        "Examples:\n\n"
        "  symcost eval archs/resnet50.yaml\n\n"
        "  symcost eval resnet50 --set H=320 W=320 --depth 1\n\n"
        "  symcost eval gpt2 --symbolic --set B=1\n\n"
        "  symcost derive conv2d\n\n"
        "  symcost derive conv2d --set kernel=3 stride=1 padding=1\n\n"
        "  symcost eval resnet50 --device a100 --dtype bf16\n\n"
        "  symcost eval llama --device h100 --dtype bf16 --phase decode --set ctx=2048\n\n"
        "  symcost roofline resnet50 --device a100 --dtype bf16 -o roofline.png\n\n"
        "  symcost list formulas\n\n"
        "  symcost list devices"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
list_app = typer.Typer(
    help="List what symcost knows: formulas, bundled architectures and devices.", no_args_is_help=True
)
app.add_typer(list_app, name="list")

_state = {"debug": False}

FormatOption = Annotated[str, typer.Option("--format", "-f", help="Output format: text, latex, json or markdown.")]
BindingsArgument = Annotated[
    list[str] | None, typer.Argument(metavar="[NAME=VALUE]...", help="Values to bind, as with --set.")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="NAME=VALUE",
        help="Bind a name: an integer, true/false, or an expression (H=320, bias=false, W=H); "
        "repeat the option or comma-separate.",
    ),
]
CountElementwiseOption = Annotated[
    str,
    typer.Option(
        "--count-elementwise",
        metavar="CATEGORIES",
        help="Fold elementwise categories into FLOPs: 'norm,bias' or 'all' (default: none, as FlopCounterMode).",
    ),
]
ConventionOption = Annotated[
    str,
    typer.Option(
        "--convention",
        metavar="NAME",
        help="Count as a tool does: torch (FLOPs = 2 x MACs, FlopCounterMode), torchvision (MACs, its 'GFLOPS'), "
        "thop, ptflops or fvcore (their own per-layer rules). See docs/conventions.md.",
    ),
]


def _convention(name: str, count_elementwise: str) -> Any:
    """The --convention preset, with --count-elementwise folded in (torch's only)."""
    from . import cost

    convention = cost.preset(name)
    if count_elementwise:
        convention = convention.with_elementwise(cost.parse_categories(count_elementwise))
    return convention


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn symcost's own errors into one `Error:` line and exit status 1."""
    try:
        yield
    except SymcostError as exc:
        if _state["debug"]:
            raise
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"symcost {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback instead of a one-line error.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    formulas_dir: Annotated[
        list[str] | None,
        typer.Option("--formulas", metavar="DIR", help="Also search DIR for formula files (before the bundled ones)."),
    ] = None,
) -> None:
    _state["debug"] = debug
    if formulas_dir:
        with _user_errors():
            from . import registry

            for folder in formulas_dir:
                registry.add_path(folder)


_ASSIGN = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*=(.*)$", re.S)


def parse_assignments(items: list[str], names: dict[str, Any]) -> dict[str, Any]:
    """``["kernel=3", "stride=1,padding=1", "bias=false", "W=H"]`` → values for a formula.

    Values are integers, ``true``/``false``, or expressions over the formula's symbols, parsed
    by the safe parser (never ``eval``).
    """
    from . import expr

    values: dict[str, Any] = {}
    for item in items:
        for part in _split_top_level(item):
            match = _ASSIGN.match(part)
            if not match:
                raise UsageError(f"expected NAME=VALUE, got {part!r}", Location("--set"))
            key, text = match.group(1), match.group(2).strip()
            lowered = text.lower()
            if lowered in ("true", "false"):
                values[key] = lowered == "true"
                continue
            try:
                value = expr.parse(text, names)
            except SymcostError as exc:
                raise UsageError(f"{key}={text}: {exc.message}", Location("--set")) from None
            values[key] = int(value) if value.is_Integer else value
    return values


def _split_top_level(text: str) -> list[str]:
    """Split ``"kernel=3,stride=1"`` on commas that are not inside parentheses (``max(a, b)``)."""
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


def _check_format(fmt: str, allowed: tuple[str, ...]) -> str:
    if fmt not in allowed:
        raise UsageError(f"unknown format '{fmt}'{did_you_mean(fmt, allowed)}; choose from {', '.join(allowed)}")
    return fmt


@app.command()
def derive(
    name: Annotated[str, typer.Argument(help="Formula name, e.g. conv2d (see `symcost list formulas`).")],
    bindings: BindingsArgument = None,
    set_: SetOption = None,
    fmt: FormatOption = "text",
    expand: Annotated[
        bool, typer.Option("--expand", help="Expand named intermediates (H_out) into the input symbols.")
    ] = False,
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Apply attribute defaults (stride=1, bias=true, ...) to what is not set.")
    ] = False,
    count_elementwise: CountElementwiseOption = "",
    convention_name: ConventionOption = "torch",
) -> None:
    """Print a layer's cost in closed form: symbols, constraints, output shape, MACs, FLOPs,
    parameters, buffers and memory traffic.

    Examples:

      symcost derive conv2d

      symcost derive conv2d --set kernel=3 stride=1 padding=1

      symcost derive batchnorm2d --count-elementwise norm

      symcost derive batchnorm2d --convention thop

      symcost derive linear --format latex
    """
    with _user_errors():
        from . import registry, report

        _check_format(fmt, report.FORMATS)
        formula = registry.get(name)
        values = parse_assignments([*(set_ or []), *(bindings or [])], formula.symbols)
        convention = _convention(convention_name, count_elementwise)
        bound = formula.bind(defaults=defaults, **values)
        data = report.derivation(formula, bound, convention=convention, expand=expand)
        typer.echo(report.render_derivation(data, fmt))


@list_app.command("formulas")
def list_formulas(fmt: FormatOption = "text") -> None:
    """List the formula catalog with a one-line summary each.

    Example: symcost list formulas --format json
    """
    with _user_errors():
        from . import registry, report

        _check_format(fmt, ("text", "json", "markdown"))
        typer.echo(report.render_formula_list(registry.all_formulas(), fmt))


def _arch_path(arch: str) -> tuple[Any, str]:
    """A path to a YAML file, or the name of a bundled architecture."""
    from pathlib import Path

    from . import registry

    path = Path(arch)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path, arch
    bundled = registry.data_dir("archs")
    candidate = bundled / f"{arch}.yaml"
    if candidate.is_file():
        return candidate, f"archs/{arch}.yaml"
    known = sorted(p.stem for p in bundled.glob("*.yaml"))
    raise UsageError(f"no architecture file or bundled architecture '{arch}'{did_you_mean(arch, known)}")


DeviceOption = Annotated[
    str | None,
    typer.Option(
        "--device", metavar="NAME", help="Estimate latency on a device (`symcost list devices`) or a device file."
    ),
]
DeviceFileOption = Annotated[
    list[str] | None,
    typer.Option("--device-file", metavar="FILE", help="Your own device YAML (see docs/devices.md); repeatable."),
]
DtypeOption = Annotated[
    str,
    typer.Option(
        "--dtype",
        help="Compute and storage dtype: fp64, fp32, tf32, fp16, bf16, fp8, int8, int4. Picks the device's peak and the bytes per value.",
    ),
]
EfficiencyOption = Annotated[
    float,
    typer.Option(
        "--efficiency",
        min=0.0,
        max=1.0,
        help="Fraction of the peak FLOP/s a layer attains (and of the bandwidth, unless --memory-efficiency).",
    ),
]
MemoryEfficiencyOption = Annotated[
    float | None,
    typer.Option("--memory-efficiency", min=0.0, max=1.0, help="Fraction of the memory bandwidth attained."),
]
OverlapOption = Annotated[
    str,
    typer.Option(
        "--overlap",
        help="max: compute and memory overlap, latency = max of the two (roofline); none: their sum (Paleo).",
    ),
]
WavesOption = Annotated[
    bool,
    typer.Option("--waves", help="Derate GEMM-class layers by tile and wave quantization against the device's SMs."),
]
OptimizerOption = Annotated[str, typer.Option("--optimizer", help="With --phase train: adam, sgd (momentum) or none.")]
PhaseOption = Annotated[
    str,
    typer.Option(
        "--phase",
        help="inference (default), train (forward + backward, optimizer memory), or a phase the architecture declares (prefill, decode).",
    ),
]


def _graph(arch: str) -> Any:
    """The shape-propagated graph of an architecture file or a bundled name."""
    from . import shapes

    return shapes.build(_load_arch(arch))


def _load_arch(arch: str) -> Any:
    """An architecture file, a bundled name, or a Hugging Face config.json (or a folder holding one),
    imported to YAML in memory (symcost/hf.py)."""
    from . import arch as arch_module
    from . import hf

    config = hf.config_path(arch)
    if config is not None:
        return hf.load(config)
    path, shown = _arch_path(arch)
    return arch_module.load_path(path, shown)


def _graph_and_values(
    arch: str, phase: str, assignments: list[str], *, numeric: bool = False
) -> tuple[Any, dict[str, Any]]:
    """The graph, and its variable values: the phase's (``decode: {S: 1, ctx: 4095}``), then --set.
    The graph is built at those values, which decide any ``when`` that reads a variable; with
    ``numeric`` it is the graph of that one point (no closed forms: a faster build)."""
    from . import arch as arch_module
    from . import shapes

    loaded = _load_arch(arch)
    phases = loaded.phases
    if phase not in arch_module.BUILTIN_PHASES and phase not in phases:
        known = [*arch_module.BUILTIN_PHASES, *phases]
        raise UsageError(
            f"'{loaded.name}' has no phase '{phase}'{did_you_mean(phase, known)}; its phases: {', '.join(known)}"
        )
    names = {v.name: v.symbol for v in loaded.variables.values()}
    given = parse_assignments(assignments, names)
    values = {**(phases[phase].values if phase in phases else {}), **given}
    return shapes.build(loaded, values, numeric=numeric), values


def _keep_free(graph: Any, values: dict[str, Any], free: str) -> dict[str, Any]:
    """Values for a closed form in the ``free`` variables only: the others at --set or their defaults."""
    names = [n.strip() for n in free.split(",") if n.strip()]
    variables = graph.arch.variables
    for name in names:
        if name not in variables:
            raise UsageError(f"--free: '{graph.arch.name}' has no variable '{name}'{did_you_mean(name, variables)}")
        if name in values:
            raise UsageError(f"--free {name} conflicts with a value for {name} (from --set or the phase)")
    from .compile import keep_free

    return keep_free(graph, values, names)


def _seconds(text: str | None, what: str) -> Any:
    """``0.1``, ``100ms``, ``250us`` → exact seconds (a Fraction)."""
    if text is None:
        return None
    from fractions import Fraction

    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:e-?[0-9]+)?)\s*(s|ms|us|µs)?\s*", text)
    if not match:
        raise UsageError(f"{what}: expected seconds like 0.1, 100ms or 250us, got {text!r}")
    value = (
        Fraction(match.group(1))
        * {"s": 1, "ms": Fraction(1, 1000), "us": Fraction(1, 10**6), "µs": Fraction(1, 10**6)}[match.group(2) or "s"]
    )
    if value <= 0:
        raise UsageError(f"{what} must be positive")
    return value


@app.command("eval")
def eval_(
    arch: Annotated[
        str,
        typer.Argument(
            help="An architecture file (archs/resnet50.yaml), a bundled name (resnet50), or a Hugging Face "
            "config.json (or a folder holding one).",
        ),
    ],
    bindings: BindingsArgument = None,
    set_: SetOption = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json, csv, markdown or latex.")] = "table",
    depth: Annotated[
        int | None, typer.Option("--depth", "-d", min=1, help="Fold layers into their blocks, K levels deep.")
    ] = None,
    dtype: DtypeOption = "fp32",
    symbolic: Annotated[
        bool,
        typer.Option("--symbolic", help="Print closed-form totals over the variables not given with --set."),
    ] = False,
    free: Annotated[
        str | None,
        typer.Option(
            "--free",
            metavar="NAMES",
            help="Closed forms in these variables only ('B' or 'B,S'), the others at their defaults; implies --symbolic. "
            "With --device, says at which value each layer turns compute-bound.",
        ),
    ] = None,
    count_elementwise: CountElementwiseOption = "",
    convention_name: ConventionOption = "torch",
    assume: Annotated[
        list[str] | None,
        typer.Option(
            "--assume",
            metavar="FACT",
            help="Simplify the closed forms under a fact: 'H % 32 == 0' (resolves the floors of stride-2 stages) or 'W == H'; repeatable.",
        ),
    ] = None,
    leading: Annotated[
        str | None,
        typer.Option(
            "--leading",
            metavar="NAME",
            help="Split each closed form by powers of NAME, highest first (attention's S**2 against the MLP's S), with each term's share.",
        ),
    ] = None,
    device: DeviceOption = None,
    device_file: DeviceFileOption = None,
    efficiency: EfficiencyOption = 1.0,
    memory_efficiency: MemoryEfficiencyOption = None,
    overlap: OverlapOption = "max",
    waves: WavesOption = False,
    phase: PhaseOption = "inference",
    target_latency: Annotated[
        str | None,
        typer.Option(
            "--target-latency",
            metavar="SECONDS",
            help="A latency budget (0.1, 100ms): the bandwidth and FLOP/s it needs.",
        ),
    ] = None,
    optimizer: OptimizerOption = "adam",
) -> None:
    """Cost a whole network: a per-layer table and exact totals (params, MACs, FLOPs, bytes);
    with --device, each layer's roofline time and bound, and the total latency.

    Variables take their defaults unless --set. FLOPs = 2 x MACs (FlopCounterMode's convention);
    elementwise work is reported apart.

    Examples:

      symcost eval archs/resnet50.yaml

      symcost eval resnet50 --set N=8 H=320 W=320 --depth 1

      symcost eval resnet50 --convention thop

      symcost eval resnet50 --device a100 --dtype bf16 --efficiency 0.7

      symcost eval llama --device h100 --dtype bf16 --phase decode --set ctx=2048

      symcost eval llama --phase train --dtype bf16 --set S=2048 --device h100

      symcost eval llama --device a100 --dtype bf16 --phase decode --free B

      symcost eval llama --set n_layer=80 d_model=8192 n_head=64 n_kv_head=8 d_ff=28672
    """
    with _user_errors():
        from . import compile as compile_module
        from . import report

        _check_format(fmt, report.EVAL_FORMATS)
        # one point only (no --symbolic, no --free): build its graph with numbers, not closed forms
        numeric = not symbolic and free is None
        graph, values = _graph_and_values(arch, phase, [*(set_ or []), *(bindings or [])], numeric=numeric)
        convention = _convention(convention_name, count_elementwise)
        target = _seconds(target_latency, "--target-latency")
        if device is None and target is not None:
            raise UsageError("--target-latency needs --device")
        setting = _setting(convention=convention, device=device, device_file=device_file, dtype=dtype,
                           efficiency=efficiency, memory_efficiency=memory_efficiency, overlap=overlap, waves=waves,
                           phase=phase, optimizer=optimizer)  # fmt: skip
        symbolic_values = values
        if free is not None:
            symbolic = True
            symbolic_values = _keep_free(graph, values, free)
        if (assume or leading) and not symbolic:
            raise UsageError("--assume and --leading shape the closed forms: give --free or --symbolic too")
        nodes = compile_module.symbolic_nodes(graph, symbolic_values, convention) if symbolic else None
        closed = compile_module.sum_nodes(nodes) if nodes is not None else None
        result = compile_module.evaluate(graph, values, convention)
        shaping = _closed_form_shaping(graph, assume or [], leading)
        training = setting.training
        if device is None:
            data = report.eval_data(result, dtype=dtype, depth=depth, symbolic=shaping(closed, result))
            if training:
                data["training"] = report.training_data(result, dtype, optimizer)
            typer.echo(report.render_eval(data, fmt))
            return
        from . import roofline

        chosen, roof = setting.device, setting.roof
        estimate = roofline.estimate(result, chosen, roof, dtype, training=training, waves=waves)
        performance = roofline.summary(result, estimate, phase=phase, target_latency=target, optimizer=optimizer)
        options = {"efficiency": efficiency, "memory_efficiency": memory_efficiency if memory_efficiency is not None else efficiency,
                   "overlap": overlap, "waves": waves}  # fmt: skip
        symbolic_layers = None
        if nodes is not None and closed is not None:
            extra, symbolic_layers = roofline.symbolic_estimate(nodes, roof, dtype, training=training)
            closed.update(extra)
        data = report.eval_data(
            result, dtype=dtype, depth=depth, symbolic=shaping(closed, result), estimate=estimate, performance=performance,
            device=report.device_data(roof, chosen, dtype, options),
        )  # fmt: skip
        if symbolic_layers is not None:
            data["symbolic_layers"] = report.symbolic_layer_data(symbolic_layers)
        typer.echo(report.render_eval(data, fmt))


def _closed_form_shaping(graph: Any, assume: list[str], leading: str | None) -> Any:
    """A function that applies --assume to closed forms and adds --leading's terms by power."""
    from .simplify import assume as apply
    from .simplify import leading as by_power
    from .simplify import parse_assumptions

    names = {v.name: v.symbol for v in graph.arch.variables.values()}
    facts = parse_assumptions(assume, names)
    if leading is not None and leading not in names:
        raise UsageError(f"--leading: '{graph.arch.name}' has no variable '{leading}'{did_you_mean(leading, names)}")

    def shape(closed: dict[str, Any] | None, result: Any) -> dict[str, Any] | None:
        if closed is None:
            return None
        shaped = {k: apply(v, facts) if facts else v for k, v in closed.items()}
        if leading is not None:
            at = {names[k]: v for k, v in result.values.items() if k in names}
            terms = {}
            for key in ("flops", "macs", "params", "read", "write", "cache", "latency_s"):
                form = shaped.get(key)
                if form is None or names[leading] not in form.free_symbols:
                    continue
                total = form.xreplace(at)
                terms[key] = [(degree, term, term.xreplace(at) / total if total else None)
                              for degree, term in by_power(form, names[leading])]  # fmt: skip
            shaped["_leading"] = (leading, terms)
        return shaped

    return shape


@app.command()
def roofline(
    arch: Annotated[str, typer.Argument(help="An architecture file or a bundled name.")],
    bindings: BindingsArgument = None,
    device: Annotated[
        str, typer.Option("--device", metavar="NAME", help="The device whose roof is drawn (`symcost list devices`).")
    ] = "a100",
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="FILE", help="Where to write: .png, .svg or .pdf.")
    ] = "roofline.png",
    set_: SetOption = None,
    device_file: DeviceFileOption = None,
    dtype: DtypeOption = "fp32",
    efficiency: EfficiencyOption = 1.0,
    memory_efficiency: MemoryEfficiencyOption = None,
    waves: WavesOption = False,
    phase: PhaseOption = "inference",
    depth: Annotated[
        int, typer.Option("--depth", "-d", min=1, help="Colour and label points by their block, K levels deep.")
    ] = 1,
) -> None:
    """Draw the device's roofline and every layer as a point (arithmetic intensity vs attained FLOP/s).

    Needs matplotlib: pip install 'symcost[plot]'.

    Examples:

      symcost roofline resnet50 --device a100 --dtype bf16 -o roofline.png

      symcost roofline llama --device h100 --dtype bf16 --phase decode -o decode.svg
    """
    with _user_errors():
        from . import compile as compile_module
        from . import cost, devices, plot
        from . import roofline as roofline_module

        plot.check_output(output)
        cost.dtype_bits(dtype)
        graph, values = _graph_and_values(arch, phase, [*(set_ or []), *(bindings or [])])
        result = compile_module.evaluate(graph, values)
        chosen = devices.find(device, tuple(device_file or ()))
        roof = roofline_module.roof_for(chosen, dtype, efficiency=efficiency, memory_efficiency=memory_efficiency)
        estimate = roofline_module.estimate(result, chosen, roof, dtype, training=phase == "train", waves=waves)
        written = plot.roofline(result, estimate, output, depth=depth, phase=phase)
        layers = sum(node.count for node in result.nodes)
        typer.echo(f"wrote {written}: {layers} layers of {graph.arch.name} on {chosen.name} ({dtype})")


MetricOption = Annotated[
    str,
    typer.Option(
        "--metric",
        "-m",
        metavar="NAMES",
        help="Comma-separated: flops, macs, params, buffers, elementwise, read, write, cache, traffic_bytes, "
        "model_bytes, kv_cache_bytes, memory; with --device also latency, compute_s, memory_s.",
    ),
]
AssumeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--assume",
        metavar="FACT",
        help="Simplify closed forms under a fact: 'H % 32 == 0' (resolves the floors of stride-2 stages) or 'W == H'; repeatable.",
    ),
]


def _setting(*, convention: Any, device: str | None, device_file: list[str] | None, dtype: str, efficiency: float,
             memory_efficiency: float | None, overlap: str, waves: bool, phase: str, optimizer: str) -> Any:  # fmt: skip
    """How a metric is counted and timed: the convention, and the device's roof when one is named."""
    from . import cost, metrics

    cost.dtype_bits(dtype)
    if overlap not in ("max", "none"):
        raise UsageError(f"--overlap must be max or none, got '{overlap}'")
    training = phase == "train"
    if device is None:
        for flag, given in (("--efficiency", efficiency != 1.0), ("--memory-efficiency", memory_efficiency is not None),
                            ("--overlap", overlap != "max"), ("--waves", waves)):  # fmt: skip
            if given:
                raise UsageError(f"{flag} needs --device")
        return metrics.Setting(convention=convention, dtype=dtype, training=training, optimizer=optimizer)
    from . import devices, roofline

    if convention.flops_per_mac != cost.FLOPS_PER_MAC:
        raise UsageError(f"--convention {convention.name} with --device: the latency needs FLOPs, 2 per MAC (torch)")
    chosen = devices.find(device, tuple(device_file or ()))
    roof = roofline.roof_for(
        chosen, dtype, efficiency=efficiency, memory_efficiency=memory_efficiency, overlap=overlap == "max"
    )
    return metrics.Setting(convention, dtype, roof, chosen, training, optimizer, waves)


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


@app.command()
def sweep(
    arch: Annotated[str, typer.Argument(help="An architecture file or a bundled name.")],
    over: Annotated[
        list[str],
        typer.Option(
            "--over",
            metavar="NAME=RANGE",
            help="A swept variable: H=64:1024:32 (start:stop:step, stop included), N=1,8,64, B=1:1024:*2 (doubling); repeat for a grid.",
        ),
    ],
    metric: MetricOption = "flops",
    set_: SetOption = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv, json or markdown.")] = "table",
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to FILE (.csv or .json picks the format)."),
    ] = None,
    plot_to: Annotated[
        str | None,
        typer.Option(
            "--plot", metavar="FILE", help="Draw the first metric against the first swept variable (.png, .svg, .pdf)."
        ),
    ] = None,
    approximate: Annotated[
        bool,
        typer.Option(
            "--float",
            help="Evaluate the counts in float64, approximate: faster only where exact counts exceed int64 "
            "and would need Python ints.",
        ),
    ] = False,
    convention_name: ConventionOption = "torch",
    count_elementwise: CountElementwiseOption = "",
    device: DeviceOption = None,
    device_file: DeviceFileOption = None,
    dtype: DtypeOption = "fp32",
    efficiency: EfficiencyOption = 1.0,
    memory_efficiency: MemoryEfficiencyOption = None,
    overlap: OverlapOption = "max",
    phase: PhaseOption = "inference",
    optimizer: OptimizerOption = "adam",
) -> None:
    """Evaluate metrics over a grid of variable values: the closed forms are derived once, compiled
    once, and evaluated for every point at once (a million points of ResNet-50 in about 0.03 s;
    writing them as CSV takes about a second more).

    Counts are exact integers (int64 where bounds prove it cannot overflow, else Python ints);
    latency is float64 and marked approximate.

    Examples:

      symcost sweep resnet50 --over H=64:1024:32 --over N=1,8,64

      symcost sweep resnet50 --over H=32:512:32 --set W=H --metric flops,params -o sweep.csv

      symcost sweep llama --phase decode --over B=1:256:*2 --device a100 --dtype bf16 --metric latency,memory

      symcost sweep gpt2 --over S=128:1024:128 --plot flops_vs_S.png
    """
    with _user_errors():
        from pathlib import Path

        from . import report_analysis
        from . import sweep as sweep_module

        if output and fmt == "table":
            fmt = {".csv": "csv", ".json": "json", ".md": "markdown"}.get(Path(output).suffix, "table")
        _check_format(fmt, report_analysis.SWEEP_FORMATS)
        if plot_to:
            from . import plot

            plot.check_output(plot_to)
        graph, values = _graph_and_values(arch, phase, set_ or [])
        setting = _setting(convention=_convention(convention_name, count_elementwise), device=device,
                           device_file=device_file, dtype=dtype, efficiency=efficiency,
                           memory_efficiency=memory_efficiency, overlap=overlap, waves=False, phase=phase,
                           optimizer=optimizer)  # fmt: skip
        axes = [sweep_module.parse_axis(text) for text in over]
        result = sweep_module.sweep(graph, axes, _names(metric), values=values, setting=setting, exact=not approximate)
        text = report_analysis.render_sweep(result, fmt)
        if output:
            Path(output).write_text(text + "\n", encoding="utf-8")
            typer.echo(f"wrote {output}: {result.size:,} points, {', '.join(result.metrics)}")
        else:
            typer.echo(text)
        if plot_to:
            written = plot.sweep(result, plot_to)
            typer.echo(f"wrote {written}")


@app.command()
def solve(
    arch: Annotated[str, typer.Argument(help="An architecture file or a bundled name.")],
    condition: Annotated[
        str,
        typer.Argument(
            help="A condition on metrics: 'flops <= 10**10', 'memory <= 80*GB', 'latency <= 20*ms', "
            "'compute_s >= memory_s'. Units: K M G T P, KB MB GB TB, KiB MiB GiB TiB, s ms us ns. "
            "Numbers are whole: write 41*G/10 for 4.1 G."
        ),
    ],
    for_: Annotated[str, typer.Option("--for", metavar="NAME", help="The variable to solve for (H, B, S, d_model).")],
    step: Annotated[int, typer.Option("--step", min=1, help="Search multiples of this (64 for a width).")] = 1,
    start_from: Annotated[
        int | None,
        typer.Option("--from", metavar="N", help="Search from this value (the variable's minimum by default)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Search no further than this.")] = 2**40,
    set_: SetOption = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    convention_name: ConventionOption = "torch",
    count_elementwise: CountElementwiseOption = "",
    device: DeviceOption = None,
    device_file: DeviceFileOption = None,
    dtype: DtypeOption = "fp32",
    efficiency: EfficiencyOption = 1.0,
    memory_efficiency: MemoryEfficiencyOption = None,
    overlap: OverlapOption = "max",
    waves: WavesOption = False,
    phase: PhaseOption = "inference",
    optimizer: OptimizerOption = "adam",
) -> None:
    """Find the largest (or smallest) whole value of one variable that meets a budget.

    If the condition holds at the smallest value, the answer is the largest value where it still
    holds; if it fails there, the smallest value where it starts to hold. The answer is checked
    on the exact path of `symcost eval`: it holds at the answer and fails one step past it.

    Examples:

      symcost solve resnet50 "flops <= 10**10" --for H --set W=H

      symcost solve llama "memory <= 80*GB" --for B --phase decode --device a100 --dtype bf16

      symcost solve llama "compute_s >= memory_s" --for S --phase prefill --device a100 --dtype bf16

      symcost solve gpt2 "params <= 10**9" --for d_model --step 64 --set n_head=d_model/64
    """
    with _user_errors():
        from . import report_analysis
        from . import solve as solve_module

        _check_format(fmt, report_analysis.SOLVE_FORMATS)
        graph, values = _graph_and_values(arch, phase, set_ or [])
        setting = _setting(convention=_convention(convention_name, count_elementwise), device=device,
                           device_file=device_file, dtype=dtype, efficiency=efficiency,
                           memory_efficiency=memory_efficiency, overlap=overlap, waves=waves, phase=phase,
                           optimizer=optimizer)  # fmt: skip
        if for_ in _set_names(set_ or []):
            raise UsageError(f"--for {for_} conflicts with --set {for_}")
        values = {k: v for k, v in values.items() if k != for_}  # a phase's value yields to --for
        solution = solve_module.solve(graph, condition, for_, values=values, setting=setting, step=step, limit=limit,
                                      start_from=start_from)  # fmt: skip
        typer.echo(report_analysis.render_solution(solution, fmt))
        if solution.value is not None and not solution.checked:
            raise typer.Exit(1)


def _set_names(assignments: list[str]) -> set[str]:
    return {item.split("=", 1)[0].strip() for text in assignments for item in _split_top_level(text)}


@app.command()
def compare(
    archs: Annotated[list[str], typer.Argument(help="Two or more architecture files or bundled names.")],
    metric: MetricOption = "params,macs,flops,elementwise,model_bytes,traffic_bytes,memory",
    set_: SetOption = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json, markdown, latex or csv.")] = "table",
    free: Annotated[
        str | None,
        typer.Option(
            "--free",
            metavar="NAMES",
            help="Also compare closed forms in these variables ('H,W' or 'S'), with their ratios.",
        ),
    ] = None,
    assume: AssumeOption = None,
    convention_name: ConventionOption = "torch",
    count_elementwise: CountElementwiseOption = "",
    device: DeviceOption = None,
    device_file: DeviceFileOption = None,
    dtype: DtypeOption = "fp32",
    efficiency: EfficiencyOption = 1.0,
    memory_efficiency: MemoryEfficiencyOption = None,
    overlap: OverlapOption = "max",
    waves: WavesOption = False,
    phase: PhaseOption = "inference",
    optimizer: OptimizerOption = "adam",
) -> None:
    """Put architectures side by side: each metric exactly, and its ratio to the first.

    --set binds a variable in every architecture that has it. With --free, the closed forms too
    and their ratios, simplified (--assume 'H % 32 == 0' turns CNN floors into polynomials).

    Examples:

      symcost compare resnet50 mobilenet_v2

      symcost compare gpt2 gpt2_medium --free S

      symcost compare resnet50 mobilenet_v2 --free H,W --assume 'H % 32 == 0' --assume 'W % 32 == 0' --metric flops

      symcost compare llama llama2_13b --phase decode --device h100 --dtype bf16 --metric latency,memory
    """
    with _user_errors():
        from . import compare as compare_module
        from . import report_analysis
        from .simplify import parse_assumptions

        _check_format(fmt, report_analysis.COMPARE_FORMATS)
        if len(archs) < 2:
            raise UsageError("compare needs at least two architectures")
        graphs, given = [], []
        for name in archs:
            graph, values = _graph_and_values(name, phase, [])
            graphs.append(graph)
            given.append(values)
        names = {v.name: v.symbol for g in graphs for v in g.arch.variables.values()}
        common = parse_assignments(set_ or [], names)
        per_arch = compare_module.split_values(graphs, common)
        values = [{**phase_values, **mine} for phase_values, mine in zip(given, per_arch)]
        setting = _setting(convention=_convention(convention_name, count_elementwise), device=device,
                           device_file=device_file, dtype=dtype, efficiency=efficiency,
                           memory_efficiency=memory_efficiency, overlap=overlap, waves=waves, phase=phase,
                           optimizer=optimizer)  # fmt: skip
        free_names = _names(free) if free else []
        if assume and not free_names:
            raise UsageError("--assume simplifies closed forms: give --free too")
        assumptions = parse_assumptions(assume or [], names)
        result = compare_module.compare(graphs, _names(metric), values=values, setting=setting, free=free_names,
                                        assumptions=assumptions)  # fmt: skip
        typer.echo(report_analysis.render_comparison(result, fmt))


@list_app.command("devices")
def list_devices(
    fmt: FormatOption = "text",
    device_file: DeviceFileOption = None,
) -> None:
    """List the devices with their dense peaks per dtype, bandwidth and memory (the ridge point
    per dtype, the sparse peaks and the sources with --format json).

    Example: symcost list devices --device-file my_npu.yaml
    """
    with _user_errors():
        from . import devices, report

        _check_format(fmt, ("text", "json", "markdown"))
        typer.echo(report.render_device_list(devices.catalog(tuple(device_file or ())), fmt))


@app.command()
def check(
    files: Annotated[list[str], typer.Argument(help="Architecture files (or bundled names) to validate.")],
) -> None:
    """Validate architecture files: grammar, references, shapes and constraints at the defaults.

    Example: symcost check archs/*.yaml
    """
    with _user_errors():
        from . import compile as compile_module

        for item in files:
            graph = _graph(item)
            unset = [v.name for v in graph.arch.variables.values() if v.default is None]
            if unset:
                note = f"; variables without defaults: {', '.join(unset)}; not evaluated"
            else:
                compile_module.evaluate(graph)
                note = "; evaluated at the defaults"
            typer.echo(f"ok  {graph.arch.path}  ({len(graph.nodes)} layer nodes{note})")


@list_app.command("archs")
def list_archs(fmt: FormatOption = "text") -> None:
    """List the bundled architectures, grouped by family (resnet, efficientnet, vit, ...).

    Example: symcost list archs
    """
    with _user_errors():
        from . import arch as arch_module
        from . import registry, report

        _check_format(fmt, ("text", "json"))
        entries = []
        for path in sorted(registry.data_dir("archs").glob("*.yaml")):
            loaded = arch_module.load_path(path, f"archs/{path.name}")
            entries.append((path.stem, loaded.summary, loaded.family or path.stem))
        entries.sort(key=lambda e: (e[2], e[0]))
        typer.echo(report.render_arch_list(entries, fmt))


import_app = typer.Typer(
    help="Write an architecture file from another tool's description of a model.", no_args_is_help=True
)
app.add_typer(import_app, name="import")


@import_app.command("hf")
def import_hf(
    config: Annotated[str, typer.Argument(help="A Hugging Face config.json, or a folder holding one.")],
    output: Annotated[
        str | None, typer.Option("--output", "-o", metavar="FILE", help="Write the YAML to FILE (default: stdout).")
    ] = None,
) -> None:
    """Write the architecture YAML of a Hugging Face config.json: the model transformers builds from it,
    with its module names, the config's sizes as the variables' defaults (see docs/hf.md). Local files
    only: no network, no weights. `symcost eval` takes a config.json (or its folder) directly.

    For a model whose config.json is saved in the folder Qwen2.5-7B:

        symcost import hf Qwen2.5-7B -o qwen2_5_7b.yaml

        symcost eval Qwen2.5-7B/config.json --phase decode --device h100 --dtype bf16
    """
    with _user_errors():
        from . import hf

        text = hf.write(config, output)
        typer.echo(f"wrote {output}" if output else text, nl=bool(output))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SymcostError as exc:  # raised outside a command body (should not happen; be safe)
        if _state["debug"]:
            raise
        typer.echo(f"Error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
