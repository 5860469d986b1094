"""The roofline figure of ``symcost roofline``: the device's two ceilings and every layer as a point.

matplotlib is an optional extra (``pip install 'symcost[plot]'``) and heavy (it pulls in numpy),
so it is imported inside :func:`roofline` only: ``import symcost.plot`` stays as cheap as the rest
of the package. :func:`check_output` runs before any costing, so a bad ``-o`` or a missing
matplotlib fails at once instead of after the network is evaluated.

The figure is drawn on a bare :class:`matplotlib.figure.Figure` rather than through pyplot: no GUI
backend is chosen, no global figure list grows, and a user's own pyplot session is left alone.
Size, dpi, fonts and metadata are fixed so the same estimate writes the same bytes.
"""

from __future__ import annotations

import importlib.util
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import Location, UsageError

SUFFIXES = (".png", ".svg", ".pdf")
FIGSIZE = (10.0, 6.25)  # inches
DPI = 120  # FIGSIZE x DPI = 1200 x 750 pixels in a PNG
MAX_BLOCKS = 12  # legend entries; beyond that, the blocks that take least time become "other"
MISSING = "the roofline plot needs matplotlib: pip install 'symcost[plot]'"

# PNG and SVG would otherwise carry the matplotlib version and the date; PDF its creation date.
# "Software" in a PNG, "Date" in an SVG, and "CreationDate" in a PDF are dropped when set to None.
_METADATA: dict[str, dict[str, Any]] = {
    ".png": {"Software": None},
    ".svg": {"Date": None},
    ".pdf": {"CreationDate": None, "Producer": None},
}
# SVG element ids are hashed with a random salt unless one is given; text as paths needs no fonts.
_RC = {"svg.hashsalt": "symcost", "svg.fonttype": "path", "pdf.fonttype": 42, "font.family": "DejaVu Sans"}


def check_output(path: str, option: str = "--output") -> None:
    """Refuse an output the plot cannot be written to, before the network is costed.

    The format follows the suffix; matplotlib is looked for, not imported, so this stays cheap.
    """
    target = Path(path)
    if target.suffix.lower() not in SUFFIXES:
        raise UsageError(
            f"cannot write a plot to '{path}': the suffix picks the format, one of png, svg or pdf "
            f"(e.g. {option} {target.stem or 'roofline'}.png)",
            Location(option),
        )
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write '{path}': no directory '{parent}'", Location(option))
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError(MISSING)


def _save(fig: Any, path: str, option: str = "--output", inputs: Any = ()) -> None:
    """Write ``fig`` in the format its suffix names, without the metadata that would vary per run,
    atomically (:func:`symcost.files.write_atomic`: no half-written image on a full disk)."""
    from .files import write_atomic

    suffix = Path(path).suffix.lower()

    def draw(handle: Any) -> None:
        fig.savefig(handle, format=suffix[1:], dpi=DPI, metadata=_METADATA[suffix])

    write_atomic(path, draw, inputs=inputs, option=option)


def _number(value: float) -> str:
    """A figure for a label: three significant digits, whole numbers from 1,000 up (no 1.53e+03)."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _short(name: str, width: int = 32) -> str:
    """A legend label no wider than ``width``: long paths keep their start and their end."""
    if len(name) <= width:
        return name
    keep = (width - 1) // 2
    return f"{name[:keep]}…{name[-(width - 1 - keep) :]}"


def _area(share: float, largest: float) -> float:
    """A marker's area in points²: its share of the latency, the largest layer at 600, none below 12."""
    return max(12.0, 600.0 * share / largest)


def _blocks(points: list[dict[str, Any]]) -> list[str]:
    """The legend's blocks in network order, at most :data:`MAX_BLOCKS` with "other" last."""
    order: dict[str, Fraction] = {}
    for p in points:
        order[p["block"]] = order.get(p["block"], Fraction(0)) + p["latency"]
    names = list(order)
    if len(names) <= MAX_BLOCKS:
        return names
    kept = set(sorted(names, key=lambda n: -order[n])[: MAX_BLOCKS - 1])
    return [n for n in names if n in kept] + ["other"]


def roofline(result: Any, estimate: Any, path: str, *, depth: int = 1, phase: str = "inference",
             inputs: Any = ()) -> str:  # fmt: skip
    """Draw ``estimate``'s roof and each layer of ``result`` on it; write ``path``; return it.

    x is arithmetic intensity (FLOP/byte), y the FLOP/s the layer attains under the model, both
    log-scaled. A point's area is its share of the total latency, so the layers worth optimizing
    stand out; its colour is its block (``depth`` path components). Layers with no FLOPs or no
    bytes have no place on a log axis and are counted in a note instead.
    """
    check_output(path)
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from .report import block_of, duration, rate_unit, si

    roof, device, dtype = estimate.roof, estimate.device, estimate.dtype
    peak, bandwidth, ridge = float(roof.peak), float(roof.bandwidth), float(roof.ridge)
    total = estimate.latency_s

    points: list[dict[str, Any]] = []
    left_out, left_out_s = 0, Fraction(0)
    for node, t in zip(result.nodes, estimate.layers):
        if t.flops > 0 and t.bytes > 0:
            points.append(
                {
                    "block": block_of(node.path, depth),
                    "x": float(t.intensity),
                    "y": float(t.attained),
                    "latency": t.latency_s,
                    "share": float(t.latency_s / total) if total else 0.0,
                }
            )
        else:
            left_out += 1
            left_out_s += t.latency_s

    # The range: every point and the ridge, and at least a decade either side, on whole decades.
    xs = [p["x"] for p in points] + [ridge]
    x_lo = 10.0 ** (math.floor(math.log10(min(xs))) - 1)
    x_hi = 10.0 ** (math.ceil(math.log10(max(xs))) + 1)
    ys = [p["y"] for p in points] + [bandwidth * x_lo]
    y_lo = 10.0 ** math.floor(math.log10(min(ys)))
    y_hi = peak * 5  # headroom for the peak's label

    largest = max((p["share"] for p in points), default=0.0) or 1.0
    names = _blocks(points)
    legend_names = set(names)
    # tab20's dark shades (tab10's colours) first, then its light ones, so neighbours stay distinct;
    # less its greys, which are "other"'s.
    palette = matplotlib.colormaps["tab20"]
    shades = [palette(i) for i in (*range(0, 20, 2), *range(1, 20, 2)) if i not in (14, 15)]
    colours = {name: shades[i % len(shades)] for i, name in enumerate(n for n in names if n != "other")}
    colours["other"] = (0.6, 0.6, 0.6, 1.0)

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=FIGSIZE, dpi=DPI)
        # Fixed margins (no tight or constrained layout): the axes box, and so the slope label's
        # angle computed from it below, do not depend on the text drawn.
        fig.subplots_adjust(left=0.09, right=0.74, bottom=0.15, top=0.86)
        ax = fig.add_subplot()
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_lo, y_hi)

        # The roof: bandwidth x intensity up to the ridge, the peak after it.
        ax.plot([x_lo, ridge, x_hi], [bandwidth * x_lo, peak, peak], color="black", linewidth=2, zorder=3)
        ax.plot([ridge, ridge], [y_lo, peak], color="black", linewidth=0.8, linestyle=":", zorder=2)
        ax.plot([ridge], [peak], marker="o", color="black", markersize=6, zorder=4)
        # Labels go where no point can be: above the roof (no layer attains more than it), in the
        # decade of padding either side of the points, and at the foot of the ridge line.
        ax.annotate(
            f"ridge {_number(ridge)} FLOP/B",
            (ridge, y_lo),
            xytext=(4, 5),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=9,
        )
        nominal, nominal_bw = float(device.peak(dtype)), float(device.bandwidth)
        peak_label = f"{dtype} peak {si(peak, rate_unit(dtype))}"
        if not math.isclose(peak, nominal):
            peak_label = f"{dtype} {si(peak, rate_unit(dtype))} ({peak / nominal:.0%} of peak)"
        bw_label = si(bandwidth, "B/s")
        if not math.isclose(bandwidth, nominal_bw):
            bw_label += f" ({bandwidth / nominal_bw:.0%})"
        # Points on the flat part of the roof reach above it by their radius: clear the biggest.
        flat = [p["share"] for p in points if p["x"] > ridge]
        lift = 4 + (math.sqrt(_area(max(flat), largest) / math.pi) if flat else 0)
        ax.annotate(
            peak_label, (x_hi, peak), xytext=(-6, lift), textcoords="offset points", ha="right", va="bottom", fontsize=9
        )
        # Along the slope in its first decade, which holds no point. The angle is the slope's on
        # screen, fixed by the fixed figure size and axes box; the offset is perpendicular to it.
        (ax0, ay0), (ax1, ay1) = ax.transData.transform([(x_lo, bandwidth * x_lo), (ridge, peak)])
        angle = math.atan2(ay1 - ay0, ax1 - ax0)
        x_at = x_lo * 10**0.15
        ax.annotate(
            bw_label,
            (x_at, bandwidth * x_at),
            xytext=(-5 * math.sin(angle), 5 * math.cos(angle)),
            textcoords="offset points",
            rotation=math.degrees(angle),
            rotation_mode="anchor",
            ha="left",
            va="bottom",
            fontsize=9,
        )

        # The layers, largest first so the small ones stay visible on top.
        for p in sorted(points, key=lambda p: -p["share"]):
            name = p["block"] if p["block"] in legend_names else "other"
            ax.scatter(
                [p["x"]],
                [p["y"]],
                s=_area(p["share"], largest),
                color=colours[name],
                alpha=0.75,
                edgecolors="white",
                linewidths=0.5,
                zorder=5,
            )
        handles = [
            Line2D([], [], linestyle="", marker="o", markersize=7, color=colours[n], alpha=0.75, label=_short(n))
            for n in names
        ]
        if handles:
            ax.legend(
                handles=handles,
                title=f"block (depth {depth})",
                loc="upper left",
                bbox_to_anchor=(1.02, 1.0),
                borderaxespad=0,
                fontsize=8,
                title_fontsize=9,
                frameon=False,
            )

        ticks = FuncFormatter(lambda v, _: si(v))
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(LogLocator(base=10))
            axis.set_major_formatter(ticks)
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("arithmetic intensity (FLOP/byte)")
        ax.set_ylabel("attained performance (FLOP/s)")
        ax.grid(True, which="major", linewidth=0.4, alpha=0.5)

        arch = result.graph.arch.name
        fig.suptitle(f"{arch} on {device.name} ({dtype}, {phase})", fontsize=13, x=0.09, ha="left", y=0.965)
        bounds = estimate.layers_by_bound(result)
        parts = [f"{bounds.get('memory', 0)} memory-bound", f"{bounds.get('compute', 0)} compute-bound"]
        if bounds.get("balanced"):
            parts.append(f"{bounds['balanced']} at the ridge")
        if bounds.get("none"):
            parts.append(f"{bounds['none']} with no work")
        fig.text(
            0.09,
            0.905,
            f"latency {duration(float(total))} (sum of per-layer roofline times); "
            f"{_plural(sum(n.count for n in result.nodes), 'layer')}: {', '.join(parts)}",
            fontsize=9.5,
            color="0.25",
        )
        note = "marker area ∝ share of total latency"
        if left_out:
            share = left_out_s / total if total else 0
            percent = "<0.1%" if 0 < share < Fraction(1, 1000) else f"{float(share):.1%}"
            note += (
                f"; {_plural(left_out, 'layer')} with no FLOPs not shown, {percent} of the latency (no place on a "
                "log axis):\nreshapes, and norms, activations and adds, whose elementwise work is not counted as FLOPs"
            )
        fig.text(0.09, 0.015, note, fontsize=8, color="0.35", va="bottom", linespacing=1.4)

        _save(fig, path, inputs=inputs)
    return path


MAX_LINES = 10  # lines in a sweep plot: one per combination of the other swept values


def sweep(s: Any, path: str, metric: str | None = None, *, option: str = "--plot", inputs: Any = ()) -> str:
    """Draw ``metric`` (the sweep's first by default) against the first swept variable, one line
    per combination of the other axes' values; write ``path``; return it.

    The y axis is logarithmic when the values span more than 100x. Invalid points are gaps.
    """
    check_output(path, option)
    import itertools

    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    from .report import si

    metric = metric or next(iter(s.metrics))
    x_axis, rest = s.axes[0], s.axes[1:]
    width = len(x_axis.values)
    values = s.metrics[metric]
    combos = list(itertools.product(*(a.values for a in rest)))
    if len(combos) > MAX_LINES:
        raise UsageError(
            f"--plot draws one line per value of the other swept variables: {len(combos)} lines is too many "
            f"(at most {MAX_LINES}); sweep fewer values of {', '.join(a.name for a in rest)}"
        )
    # points are in row order, first axis slowest: reorder so that x varies fastest within a line
    stride = len(combos)
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=FIGSIZE, dpi=DPI)
        ax = fig.add_axes((0.11, 0.12, 0.85, 0.78))
        finite = []
        for c, combo in enumerate(combos):
            ys = []
            for i in range(width):
                index = i * stride + c
                ok = s.valid is None or bool(s.valid[index])
                ys.append(float(values[index]) if ok else math.nan)
            finite += [y for y in ys if not math.isnan(y)]
            label = ", ".join(f"{a.name}={v}" for a, v in zip(rest, combo)) or None
            ax.plot(x_axis.values, ys, marker="o", markersize=3, linewidth=1.5, label=label)
        positive = [y for y in finite if y > 0]
        if positive and max(positive) / min(positive) > 100:
            ax.set_yscale("log")
        else:
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: si(v) if v else "0"))
        from .metrics import TIMED

        unit = " (s)" if metric in TIMED else ""
        unit += " (float64, approximate)" if metric in s.approximate and metric not in TIMED else ""
        ax.set_xlabel(x_axis.name)
        ax.set_ylabel(f"{metric}{unit}")
        ax.grid(True, which="major", linewidth=0.5, color="0.85")
        fixed = ", ".join(f"{k}={v}" for k, v in s.fixed.items())
        ax.set_title(f"{s.arch}: {metric} against {x_axis.name}", fontsize=12)
        fig.text(0.1, 0.015, _short(f"others: {fixed}", 150), fontsize=8, color="0.35")
        if rest:
            ax.legend(fontsize=9, frameon=False)
        _save(fig, path, option, inputs)
    return path
