"""The ``symcost`` command: parse options, call the library, hand the result to :mod:`report`.

Every :class:`~symcost.errors.SymcostError` becomes one ``Error: file:line:col: ...`` line on
stderr and exit status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from . import formats
from .errors import SymcostError, UsageError
from .inputs import parse_assignments as parse_assignments
from .inputs import split_top_level as _split_top_level

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

FormatOption = Annotated[str, typer.Option("--format", "-f", metavar="FORMAT", help=formats.help_text())]
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


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn symcost's own errors into one `Error:` line and exit status 1; anything else that escapes
    (an exhausted resource, a bug) into one `Error:` line too, never a traceback (unless --debug);
    Ctrl-C into exit status 130, quietly."""
    from .errors import IN_COMMAND

    token = IN_COMMAND.set(True)
    try:
        yield
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except KeyboardInterrupt:
        if _state["debug"]:
            raise
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # the reader went away (`symcost list runtimes | head -3`): nothing is wrong and nobody can read
        # an error; stop quietly, as Python's docs advise (library/signal.html, "Note on SIGPIPE")
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None
    except BaseException as exc:  # noqa: BLE001 - the one boundary between symcost and its user
        if _state["debug"]:
            raise
        typer.echo(f"Error: {error_line(exc)}", err=True)
        raise typer.Exit(1) from None
    finally:
        IN_COMMAND.reset(token)


def error_line(exc: BaseException) -> str:
    """The one line a user sees for ``exc``: a :class:`SymcostError` as it reads, anything else
    worded by what ran out (memory, recursion, Python's integer-to-text limit), control characters
    shown escaped so an error message cannot drive the terminal.

    >>> error_line(RecursionError("maximum recursion depth exceeded"))
    "input nested too deeply (Python's recursion limit); simplify the file or expression"
    """
    if isinstance(exc, SymcostError):
        text = str(exc)
    elif isinstance(exc, RecursionError):
        text = "input nested too deeply (Python's recursion limit); simplify the file or expression"
    elif isinstance(exc, MemoryError):
        text = "out of memory: the input asks for more than this machine has; use smaller values"
    elif isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        text = "a number has more than 4,300 digits (Python's limit for integers as text); use smaller values"
    elif isinstance(exc, ZeroDivisionError):
        text = "division by zero"
    elif isinstance(exc, OSError):
        text = f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}"
    else:
        text = f"internal error ({type(exc).__name__}: {exc}); rerun with --debug for a traceback and report it"
    return formats.terminal_text(text)


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


def _check_format(fmt: str) -> str:
    return formats.check(fmt)


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
        help="Compute and storage dtype: fp64, fp32, tf32, fp16, bf16, fp8, int8, int4. Picks the device's peak and the bytes per value "
        "(the default of --weight-dtype, --act-dtype and --kv-dtype).",
    ),
]
WeightDtypeOption = Annotated[
    str | None,
    typer.Option(
        "--weight-dtype",
        metavar="FORMAT",
        help="Store the weights apart from --dtype: a dtype, fp8_e4m3, fp8_e5m2, fp4, nvfp4, mxfp4, or a GGUF "
        "type (q8_0, q6_k, q5_k_m, q4_k_m, q4_0, ...). Model size and weight reads follow it; the peak stays --dtype's.",
    ),
]
ActDtypeOption = Annotated[
    str | None,
    typer.Option(
        "--act-dtype", metavar="FORMAT", help="Store the activations apart from --dtype (any --weight-dtype format)."
    ),
]
KvDtypeOption = Annotated[
    str | None,
    typer.Option(
        "--kv-dtype", metavar="FORMAT", help="Store the KV cache apart from --dtype (fp8, int8, int4, q8_0, ...)."
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
RuntimeOption = Annotated[
    str | None,
    typer.Option(
        "--runtime",
        metavar="NAME",
        help="How the network runs (`symcost list runtimes`): eager, compiled, xla, tensorrt, onnxruntime, vllm, "
        "tensorrt-llm, llama.cpp, rknn, or roofline (the pure lower bound). Default: tensorrt.",
    ),
]
RuntimeFileOption = Annotated[
    str | None,
    typer.Option("--runtime-file", metavar="FILE", help="Your own runtime YAML (what `symcost calibrate` writes)."),
]
OptimizerOption = Annotated[str, typer.Option("--optimizer", help="With --phase train: adam, sgd (momentum) or none.")]
PhaseOption = Annotated[
    str,
    typer.Option(
        "--phase",
        help="inference (default), train (forward + backward, optimizer memory), or a phase the architecture declares (prefill, decode).",
    ),
]
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
#: The options eval, sweep, solve and compare share, declared once: ``@shared_options`` adds them to a
#: command and hands it one :class:`~symcost.inputs.Options` (the command's ``options`` argument).
SHARED_OPTIONS: dict[str, tuple[Any, Any, str]] = {
    "convention_name": (ConventionOption, "torch", "convention"),
    "count_elementwise": (CountElementwiseOption, "", "count_elementwise"),
    "device": (DeviceOption, None, "device"),
    "device_file": (DeviceFileOption, None, "device_files"),
    "dtype": (DtypeOption, "fp32", "dtype"),
    "efficiency": (EfficiencyOption, 1.0, "efficiency"),
    "memory_efficiency": (MemoryEfficiencyOption, None, "memory_efficiency"),
    "overlap": (OverlapOption, "max", "overlap"),
    "waves": (WavesOption, False, "waves"),
    "phase": (PhaseOption, "inference", "phase"),
    "optimizer": (OptimizerOption, "adam", "optimizer"),
    "weight_dtype": (WeightDtypeOption, None, "weight_dtype"),
    "act_dtype": (ActDtypeOption, None, "act_dtype"),
    "kv_dtype": (KvDtypeOption, None, "kv_dtype"),
    "runtime": (RuntimeOption, None, "runtime"),
    "runtime_file": (RuntimeFileOption, None, "runtime_file"),
}
SharedOptions = Any


def shared_options(*, waves: bool = True) -> Any:
    """Give a command the shared options (without ``--waves`` where it does not apply)."""

    def wrap(command: Any) -> Any:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "options"]
        names = [n for n in SHARED_OPTIONS if waves or n != "waves"]
        added = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=SHARED_OPTIONS[n][1],
                                   annotation=SHARED_OPTIONS[n][0]) for n in names]  # fmt: skip
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            from .inputs import Options

            given = {SHARED_OPTIONS[n][2]: kwargs.pop(n) for n in names}
            given["device_files"] = tuple(given["device_files"] or ())
            return command(options=Options(**given), **kwargs)

        parameters = [*own, *added]
        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run

    return wrap


def _arch_names(item: str) -> Any:
    """An architecture for the API: a bundled name or a path (text is for Python callers)."""
    from pathlib import Path

    return Path(item) if Path(item).suffix in (".yaml", ".yml") else item


def _values(set_: list[str] | None, bindings: list[str] | None = None) -> list[str]:
    return [*(set_ or []), *(bindings or [])]


def _example_values(set_: list[str] | None, bindings: list[str] | None) -> dict[str, int]:
    """The import commands' ``--set``: each variable's example value, a whole number (``N=1 H=224`` →
    ``{"N": 1, "H": 224}``); ``N=true`` or ``N=3/2`` is refused before anything is written."""
    values: dict[str, int] = {}
    for name, value in parse_assignments(_values(set_, bindings), {}).items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"--set {name}: an example value is a whole number, got {value}")
        values[name] = value
    return values


def _bound(arch: Any, assignments: list[str]) -> dict[str, Any]:
    """``--set`` texts → values, parsed against the architecture's variable names."""
    from .inputs import load

    loaded = load(arch)
    return parse_assignments(assignments, {v.name: v.symbol for v in loaded.variables.values()})


@app.command()
def derive(
    name: Annotated[str, typer.Argument(help="Formula name, e.g. conv2d (see `symcost list formulas`).")],
    bindings: BindingsArgument = None,
    set_: SetOption = None,
    fmt: FormatOption = formats.DEFAULT,
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
        from . import api, registry

        fmt = _check_format(fmt)
        formula = registry.get(name)
        values = parse_assignments(_values(set_, bindings), formula.symbols)
        result = api.derive(name, values=values, expand=expand, defaults=defaults, convention=convention_name,
                            count_elementwise=count_elementwise)  # fmt: skip
        typer.echo(result.render(fmt))


@list_app.command("formulas")
def list_formulas(fmt: FormatOption = formats.DEFAULT) -> None:
    """List the formula catalog with a one-line summary each.

    Example: symcost list formulas --format json
    """
    with _user_errors():
        from . import registry, report

        typer.echo(report.render_formula_list(registry.all_formulas(), _check_format(fmt)))


@app.command("eval")
@shared_options()
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
    fmt: FormatOption = formats.DEFAULT,
    depth: Annotated[
        int | None, typer.Option("--depth", "-d", min=1, help="Fold layers into their blocks, K levels deep.")
    ] = None,
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
    assume: AssumeOption = None,
    leading: Annotated[
        str | None,
        typer.Option(
            "--leading",
            metavar="NAME",
            help="Split each closed form by powers of NAME, highest first (attention's S**2 against the MLP's S), with each term's share.",
        ),
    ] = None,
    target_latency: Annotated[
        str | None,
        typer.Option(
            "--target-latency",
            metavar="SECONDS",
            help="A latency budget (0.1, 100ms): the bandwidth and FLOP/s it needs.",
        ),
    ] = None,
    options: SharedOptions = None,
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
        from . import api

        fmt = _check_format(fmt)
        arch_ = _arch_names(arch)
        values = _bound(arch_, _values(set_, bindings))
        common = dict(values=values, depth=depth, symbolic=symbolic, free=free, assume=assume or (), leading=leading,
                      convention=options.convention, count_elementwise=options.count_elementwise, dtype=options.dtype,
                      phase=options.phase, optimizer=options.optimizer, weight_dtype=options.weight_dtype,
                      act_dtype=options.act_dtype, kv_dtype=options.kv_dtype)  # fmt: skip
        if options.device is None:
            for flag, given in (("--efficiency", options.efficiency != 1.0),
                                ("--memory-efficiency", options.memory_efficiency is not None),
                                ("--overlap", options.overlap != "max"), ("--waves", options.waves),
                                ("--target-latency", target_latency is not None),
                                ("--runtime", options.runtime is not None),
                                ("--runtime-file", options.runtime_file is not None)):  # fmt: skip
                if given:
                    raise UsageError(f"{flag} needs --device")
            result = api.evaluate(arch_, **common)
        else:
            result = api.estimate(arch_, options.device, device_files=options.device_files,
                                  efficiency=options.efficiency, memory_efficiency=options.memory_efficiency,
                                  overlap=options.overlap, waves=options.waves, target_latency=target_latency,
                                  runtime=options.runtime, runtime_file=options.runtime_file, **common)  # fmt: skip
        typer.echo(result.render(fmt))


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
    weight_dtype: WeightDtypeOption = None,
    act_dtype: ActDtypeOption = None,
    kv_dtype: KvDtypeOption = None,
    depth: Annotated[
        int, typer.Option("--depth", "-d", min=1, help="Colour and label points by their block, K levels deep.")
    ] = 1,
    runtime: RuntimeOption = None,
    runtime_file: RuntimeFileOption = None,
) -> None:
    """Draw the device's roofline and every layer as a point (arithmetic intensity vs attained FLOP/s).

    Needs matplotlib: pip install 'symcost[plot]'.

    Examples:

      symcost roofline resnet50 --device a100 --dtype bf16 -o roofline.png

      symcost roofline llama --device h100 --dtype bf16 --phase decode -o decode.svg
    """
    with _user_errors():
        from . import api, plot

        plot.check_output(output)
        arch_ = _arch_names(arch)
        _refuse_input(output, [arch, *(device_file or ())])
        # the same pipeline and checks as eval --device
        result = api.estimate(arch_, device, values=_bound(arch_, _values(set_, bindings)), dtype=dtype, phase=phase,
                              efficiency=efficiency, memory_efficiency=memory_efficiency, waves=waves,
                              device_files=tuple(device_file or ()), weight_dtype=weight_dtype, act_dtype=act_dtype,
                              kv_dtype=kv_dtype, runtime=runtime, runtime_file=runtime_file)  # fmt: skip
        written = plot.roofline(result.result, result.roofline, output, depth=depth, phase=phase,
                                inputs=[arch, *(device_file or ()), *([runtime_file] if runtime_file else [])])  # fmt: skip
        layers = sum(node.count for node in result.result.nodes)
        typer.echo(
            formats.terminal_text(
                f"wrote {written}: {layers} layers of {result.arch} on {result.device['name']} ({dtype})"
            )
        )


@app.command()
@shared_options(waves=False)
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
    fmt: FormatOption = formats.DEFAULT,
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
    options: SharedOptions = None,
) -> None:
    """Evaluate metrics over a grid of variable values: the closed forms are derived once, compiled
    once, and evaluated for every point at once (a million points of ResNet-50 in about 0.03 s;
    writing them as CSV takes about a second more). CSV is evaluated and written 65,536 points at a
    time, so its memory stays flat: up to 10**9 points; the other formats hold at most 2,000,000.

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

        from . import api

        if output and fmt == formats.DEFAULT:
            fmt = {".csv": "csv", ".json": "json", ".md": "markdown", ".tex": "latex", ".html": "html"}.get(
                Path(output).suffix, formats.DEFAULT
            )
        fmt = _check_format(fmt)
        if plot_to:
            from . import plot

            plot.check_output(plot_to, "--plot")
        arch_ = _arch_names(arch)
        read = [arch, *options.device_files]
        _refuse_input(output, read)
        _refuse_input(plot_to, read, "--plot")
        if output and plot_to and _same_target(output, plot_to):
            raise UsageError("--output and --plot name the same file")
        if fmt == "csv" and not plot_to:  # streamed chunk by chunk: memory does not grow with the grid
            planned = api.sweep(arch_, list(over), metric, values=_bound(arch_, set_ or []), exact=not approximate,
                                options=options, streamed=True)  # fmt: skip
            if output:
                from .files import write_atomic

                write_atomic(output, planned.write_csv, inputs=read)
                typer.echo(
                    formats.terminal_text(f"wrote {output}: {planned.size:,} points, {', '.join(planned.names)}")
                )
            else:
                for text in planned.csv_chunks():
                    sys.stdout.write(text)
                sys.stdout.flush()
            return
        result = api.sweep(arch_, list(over), metric, values=_bound(arch_, set_ or []), exact=not approximate,
                           options=options)  # fmt: skip
        text = result.render(fmt)
        if output:
            from .files import write_atomic

            write_atomic(output, text + "\n", inputs=read)
            typer.echo(formats.terminal_text(f"wrote {output}: {result.size:,} points, {', '.join(result.metrics)}"))
        else:
            typer.echo(text)
        if plot_to:
            written = plot.sweep(result, plot_to, option="--plot", inputs=read)
            typer.echo(formats.terminal_text(f"wrote {written}"))


@app.command()
@shared_options()
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
    fmt: FormatOption = formats.DEFAULT,
    options: SharedOptions = None,
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
        from . import api

        fmt = _check_format(fmt)
        arch_ = _arch_names(arch)
        if for_ in _set_names(set_ or []):
            raise UsageError(f"--for {for_} conflicts with --set {for_}")
        solution = api.solve(arch_, condition, for_, step=step, start_from=start_from, limit=limit,
                             values=_bound(arch_, set_ or []), options=options)  # fmt: skip
        typer.echo(solution.render(fmt))
        if solution.value is not None and not solution.checked:
            raise typer.Exit(1)


def _same_target(a: str, b: str) -> bool:
    import os

    return os.path.abspath(a) == os.path.abspath(b)


def _refuse_input(output: str | None, read: list[str], option: str = "--output") -> None:
    """Refuse, before any work, an output that is one of the command's inputs (:func:`symcost.files.refuse_inputs`)."""
    from .files import refuse_inputs

    refuse_inputs(output, read, option)


def _set_names(assignments: list[str]) -> set[str]:
    return {item.split("=", 1)[0].strip() for text in assignments for item in _split_top_level(text)}


@app.command()
@shared_options()
def compare(
    archs: Annotated[list[str], typer.Argument(help="Two or more architecture files or bundled names.")],
    metric: MetricOption = "params,macs,flops,elementwise,model_bytes,traffic_bytes,memory",
    set_: SetOption = None,
    fmt: FormatOption = formats.DEFAULT,
    free: Annotated[
        str | None,
        typer.Option(
            "--free",
            metavar="NAMES",
            help="Also compare closed forms in these variables ('H,W' or 'S'), with their ratios.",
        ),
    ] = None,
    assume: AssumeOption = None,
    options: SharedOptions = None,
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
        from . import api
        from .inputs import load

        fmt = _check_format(fmt)
        if len(archs) < 2:
            raise UsageError("compare needs at least two architectures")
        loaded = [load(_arch_names(a)) for a in archs]
        names = {v.name: v.symbol for one in loaded for v in one.variables.values()}
        common = parse_assignments(set_ or [], names)
        result = api.compare(loaded, metric, values=common, free=free or (), assume=assume or (), options=options)
        typer.echo(result.render(fmt))


@list_app.command("devices")
def list_devices(
    fmt: FormatOption = formats.DEFAULT,
    device_file: DeviceFileOption = None,
) -> None:
    """List the devices with their dense peaks per dtype, bandwidth and memory (the ridge point
    per dtype, the sparse peaks and the sources with --format json).

    Example: symcost list devices --device-file my_npu.yaml
    """
    with _user_errors():
        from . import devices, report

        typer.echo(report.render_device_list(devices.catalog(tuple(device_file or ())), _check_format(fmt)))


@app.command()
def check(
    files: Annotated[list[str], typer.Argument(help="Architecture files (or bundled names) to validate.")],
) -> None:
    """Validate architecture files: grammar, references, shapes and constraints at the defaults.

    Example: symcost check archs/*.yaml
    """
    with _user_errors():
        from . import evaluation, shapes
        from .inputs import load

        for item in files:
            graph = shapes.build(load(_arch_names(item)))
            unset = [v.name for v in graph.arch.variables.values() if v.default is None]
            if unset:
                note = f"; variables without defaults: {', '.join(unset)}; not evaluated"
            else:
                evaluation.evaluate(graph)
                note = "; evaluated at the defaults"
            typer.echo(formats.terminal_text(f"ok  {graph.arch.path}  ({len(graph.nodes)} layer nodes{note})"))


@list_app.command("archs")
def list_archs(fmt: FormatOption = formats.DEFAULT) -> None:
    """List the bundled architectures, grouped by family (resnet, efficientnet, vit, ...).

    Example: symcost list archs
    """
    with _user_errors():
        from . import arch as arch_module
        from . import bundled, report

        fmt = _check_format(fmt)
        entries = []
        for name in bundled.names("archs"):
            loaded = arch_module.load_path(name)
            entries.append((name, loaded.summary, loaded.family or name))
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

        if output:
            _refuse_input(output, [config, str(hf.config_path(config) or config)])
        text = hf.write(config, output)
        typer.echo(formats.terminal_text(f"wrote {output}") if output else text, nl=bool(output))


@list_app.command("runtimes")
def list_runtimes() -> None:
    """List the runtimes: fusion rules, efficiencies, overheads and the held-out error of each.

    Example: symcost list runtimes
    """
    with _user_errors():
        from . import runtimes

        for r in runtimes.bundled():
            fuse = ", ".join(r.fuse) or "none"
            default = "  (default)" if r.name == runtimes.DEFAULT else ""
            typer.echo(f"{r.name:<13} {r.summary}{default}")
            if r.bound:
                typer.echo(f"{'':<13} a lower bound: no fusion, no overhead, the full peaks")
                continue
            typer.echo(f"{'':<13} fuse: {fuse}; compute {float(r.compute_efficiency):.2f}, memory "
                       f"{float(r.memory_efficiency):.2f} of peak; {float(r.kernel_s) * 1e6:.3g} µs/kernel, "
                       f"{float(r.op_s) * 1e6:.3g} µs/op{' (overlapping the GPU)' * r.overlap}"
                       f"{'; autocast weight casts at fp16/bf16' * r.autocast}; error {r.error_text()}")  # fmt: skip


@app.command()
def calibrate(
    measurements: Annotated[
        str,
        typer.Argument(
            help="CSV: model, set, phase, dtype, measured_ms[, weight_dtype, kv_dtype, device, runtime, split]."
        ),
    ],
    runtime: Annotated[
        str, typer.Option("--runtime", metavar="NAME", help="The runtime whose constants are fitted.")
    ] = "",
    runtime_file: RuntimeFileOption = None,
    device: Annotated[
        str | None, typer.Option("--device", metavar="NAME", help="The device of rows without a 'device' column.")
    ] = None,
    device_file: DeviceFileOption = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", metavar="FILE", help="Write the fitted runtime file here.")
    ] = None,
    fit: Annotated[
        str | None,
        typer.Option(
            "--fit",
            metavar="NAMES",
            help="The constants to fit: compute, memory, kernel, op (default: "
            "compute,memory,kernel, and op for a runtime with a per-op cost).",
        ),
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", metavar="NAME", help="Use only the rows whose 'split' column is NAME.")
    ] = None,
) -> None:
    """Fit a runtime's efficiencies and overheads to measured latencies (least squares on log
    latency) and print the residuals; the fitted file works with --runtime-file.

    Example:

      symcost calibrate measurements.csv --device a100 --runtime compiled -o fitted.yaml
    """
    with _user_errors():
        from . import calibrate as calibrate_module
        from . import runtimes

        chosen = runtimes.find(runtime or None, runtime_file)
        free = tuple(n.strip() for n in fit.split(",") if n.strip()) if fit else None
        _, text = calibrate_module.run(measurements, runtime=chosen, device=device, output=output, free=free,
                                       split=split, device_files=tuple(device_file or ()))  # fmt: skip
        typer.echo(text)


@import_app.command("torch")
def import_torch(
    target: Annotated[
        str, typer.Argument(help="FILE.py:FACTORY or package.module:FACTORY: FACTORY() returns an nn.Module.")
    ],
    input_: Annotated[
        list[str],
        typer.Option(
            "--input",
            "-i",
            metavar="NAME=[d0,d1,...]",
            help="An input of forward, in order: x=[N,3,H,W]; names are variables; :int64 for token ids.",
        ),
    ],  # fmt: skip
    bindings: BindingsArgument = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", "-s", metavar="NAME=VALUE", help="Each variable's example value: the trace point and default."
        ),
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", metavar="FILE", help="Write the YAML to FILE (default: stdout).")
    ] = None,
    allow_unknown: Annotated[
        bool,
        typer.Option("--allow-unknown", help="Keep ops with no formula as 'unknown' layers instead of failing."),
    ] = False,
) -> None:
    """Write the architecture YAML of a PyTorch nn.Module, traced on fake tensors (no GPU, no weights
    read): layers named by module path, the catalog's formulas, the --input dims as variables
    (see docs/bring-your-own-model.md). Needs the torch extra: pip install "symcost[torch]".

        symcost import torch model.py:build --input "x=[N,3,H,W]" --set N=1 H=224 W=224 -o model.yaml

        symcost eval model.yaml --symbolic --set N=1
    """
    with _user_errors():
        values = _example_values(set_, bindings)
        from .importing import torch as importer

        imported = importer.write(target, input_, values, output, allow_unknown=allow_unknown)
        for op, path, count in imported.unknown:
            typer.echo(f"Warning: unknown cost: {op} at {path or '(top level)'} ({count}x)", err=True)
        typer.echo(f"wrote {output}" if output else imported.to_yaml(), nl=bool(output))


@import_app.command("onnx")
def import_onnx(
    model: Annotated[str, typer.Argument(help="An .onnx file (its weights inside it, not in external data).")],
    output: Annotated[
        str | None, typer.Option("--output", "-o", metavar="FILE", help="Write the YAML to FILE (default: stdout).")
    ] = None,
    bindings: BindingsArgument = None,
    set_: SetOption = None,
    allow_unknown: Annotated[
        bool,
        typer.Option("--allow-unknown", help="Keep operators with no formula as 'unknown' layers instead of failing."),
    ] = False,
) -> None:
    """Write the architecture YAML of an ONNX model: one layer per node, named after it, the inputs'
    dim_params as variables, initializers as parameters (see docs/onnx-import.md). Needs the onnx
    package: pip install "symcost[onnx]".

        symcost import onnx model.onnx -o model.yaml --set N=1 H=224 W=224

        symcost eval model.yaml --symbolic --set N=1
    """
    with _user_errors():
        from .importing import onnx as onnx_import

        values = _example_values(set_, bindings)
        text = onnx_import.write(model, output, values, allow_unknown)
        typer.echo(f"wrote {output}" if output else text, nl=bool(output))


@app.command()
def measure(
    arch: Annotated[str, typer.Argument(help="An architecture file or a bundled name (resnet50).")],
    bindings: BindingsArgument = None,
    set_: SetOption = None,
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="FILE", help="The CSV to write (benchmarks/latency's columns).")
    ] = "measured.csv",
    dtype: Annotated[str, typer.Option("--dtype", help="fp32 (default), bf16, fp16 or fp64.")] = "fp32",
    phase: PhaseOption = "inference",
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Timed runs; the median is kept.")] = 10,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed runs first.")] = 2,
    per_layer: Annotated[
        bool, typer.Option("--per-layer/--whole-only", help="Also time each layer alone (one CSV row each).")
    ] = True,
    device: Annotated[
        str, typer.Option("--device", metavar="NAME", help="The device name the rows carry (e.g. your probed file's).")
    ] = "cpu",
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="torch's intra-op threads (default: torch's own choice).")
    ] = None,
) -> None:
    """Time an architecture in torch on this machine's CPU, whole and per layer, and write the CSV that
    benchmarks/bench_latency.py and `symcost calibrate` read (needs torch: pip install 'symcost[torch]').

    Each layer is the torch op its formula counts, built at the layer's shapes with random inputs;
    the whole model runs every layer once per copy in graph order. Medians of --repeat runs.

    Examples:

      symcost measure resnet18 --repeat 20 -o resnet18_cpu.csv

      symcost measure gpt2 --set S=128 --phase prefill --whole-only -o gpt2.csv
    """
    with _user_errors():
        from . import api
        from . import measure as measuring

        arch_ = _arch_names(arch)
        values = _bound(arch_, _values(set_, bindings))
        built, given = api.graph(arch_, values, phase=phase, numeric=True)
        total, layers = measuring.measure_graph(built, dtype=dtype, repeat=repeat, warmup=warmup,
                                                per_layer=per_layer, threads=threads)  # fmt: skip
        shown = {str(k): v for k, v in values.items()}
        batch = next((shown[k] for k in ("N", "B") if k in shown), None)
        rows = measuring.rows_for(str(arch), shown, phase, dtype, device, total, layers, repeat, batch)
        measuring.write_atomic(output, measuring.csv_text(rows), inputs=[arch])
        typer.echo(
            f"{arch}: {total.ms:.4g} ms per forward ({len(layers)} layers timed) on {measuring.describe_machine()}"
        )
        typer.echo(f"wrote {output}")


@app.command()
def probe(
    output: Annotated[str, typer.Option("--output", "-o", metavar="FILE", help="The device YAML to write.")] = "",
    name: Annotated[str, typer.Option("--name", help="The device's name in the file.")] = "",
    dtypes: Annotated[
        str, typer.Option("--dtypes", help="Comma-separated GEMM dtypes to time (fp32, bf16, ...).")
    ] = "fp32",
    gemm_size: Annotated[int, typer.Option("--gemm-size", min=1, help="n of the n x n matrix product.")] = 2048,
    copy_mb: Annotated[int, typer.Option("--copy-mb", min=1, help="MB copied to time the bandwidth.")] = 256,
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Timed runs; the best is kept.")] = 5,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="torch's intra-op threads (default: torch's own choice).")
    ] = None,
) -> None:
    """Measure this machine's peak GEMM FLOP/s and memory bandwidth into a device file for --device-file
    (needs torch: pip install 'symcost[torch]').

    Examples:

      symcost probe -o mycpu.yaml

      symcost eval resnet50 --device-file mycpu.yaml --device mycpu
    """
    with _user_errors():
        from pathlib import Path

        from . import probe as probing

        if not output:
            raise UsageError("give the device file to write: symcost probe -o mycpu.yaml")
        device_name = name or Path(output).stem
        result = probing.run(dtypes=tuple(d.strip() for d in dtypes.split(",") if d.strip()), gemm_n=gemm_size,
                             copy_mb=copy_mb, repeat=repeat, threads=threads)  # fmt: skip
        probing.write(output, device_name, result)
        peaks = ", ".join(f"{d} {f / 1e9:.4g} GFLOP/s" for d, f in result.peaks.items())
        typer.echo(f"{device_name}: {peaks}; memory {result.bandwidth / 1e9:.4g} GB/s")
        typer.echo(f"wrote {output}")


def main() -> None:
    """Console-script entry point (through :mod:`symcost.__main__`, which also catches Ctrl-C during
    the imports). Whatever escapes a command body is still one `Error:` line."""
    try:  # typer >= 0.25 vendors click as typer._click; earlier releases use click itself
        from typer._click import exceptions as click_errors  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import exceptions as click_errors

    try:
        # not standalone: click's own usage errors (a bad option value, an unknown command) reach us, so
        # they are one `Error:` line and status 1 like every other bad input, not a usage block and 2
        status = app(standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:  # bare `symcost` or `symcost list`: the help
        exc.show()
        sys.exit(exc.exit_code)
    except click_errors.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        typer.echo(f"Error: {formats.terminal_text(exc.format_message())}{hint}", err=True)
        sys.exit(1)
    except (KeyboardInterrupt, click_errors.Abort):
        if _state["debug"]:
            raise
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - raised outside a command body (typer's parsing)
        if _state["debug"]:
            raise
        typer.echo(f"Error: {error_line(exc)}", err=True)
        sys.exit(1)
    if isinstance(status, int) and status:
        sys.exit(status)


if __name__ == "__main__":
    main()
