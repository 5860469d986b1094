"""The Python API for whole networks (symcost.api), the format registry (symcost.formats) and the
package's shape: what ``symcost eval`` prints is what ``symcost.estimate`` returns, every command
accepts every format it lists, a name with a comma, a quote or a newline survives every format,
and the package's import graph has no cycle.

Expected numbers are torchvision's published ResNet-50 figures (25,557,032 parameters,
4,089,184,256 MACs) or computed here by hand.
"""

from __future__ import annotations

import ast
import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

import symcost
from symcost import arch, formats
from symcost.cli import app

RUNNER = CliRunner()
PACKAGE = Path(symcost.__file__).parent


def run(*args: str) -> str:
    result = RUNNER.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


# ---- whole networks in Python ------------------------------------------------------------------


def test_estimate_is_what_eval_prints_as_json():
    printed = json.loads(run("eval", "resnet50", "--device", "a100", "--dtype", "bf16", "--format", "json"))
    data = symcost.estimate("resnet50", device="a100", dtype="bf16").to_dict()
    assert data == printed
    assert data["totals"]["params"] == 25_557_032 and data["totals"]["macs"] == 4_089_184_256
    assert data["totals"]["flops"] == 2 * 4_089_184_256 and data["device"]["name"] == "a100"


def test_evaluate_is_what_eval_prints_and_takes_values():
    printed = json.loads(run("eval", "resnet50", "--set", "N=2", "W=H", "-f", "json"))
    result = symcost.evaluate("resnet50", N=2, W="H")
    assert result.to_dict() == printed
    assert result.totals["params"] == 25_557_032 and result.totals["macs"] == 2 * 4_089_184_256
    assert result.render("table") == run("eval", "resnet50", "--set", "N=2", "W=H").rstrip("\n")


def test_phase_and_symbolic_reach_the_api():
    printed = json.loads(run("eval", "llama", "--phase", "decode", "--free", "B", "-f", "json"))
    assert symcost.evaluate("llama", phase="decode", free="B").to_dict() == printed
    assert "B" in printed["free"]


def test_bundled_names_work_where_a_path_does():
    assert arch.load_path("resnet50").name == arch.load_path(Path(formats.__file__).parents[1] / "archs" /
                                                             "resnet50.yaml").name == "resnet50"  # fmt: skip
    assert symcost.load("gpt2").name == "gpt2"
    tiny = "name: tiny\nsummary: one layer\ninputs: {x: [1, 100]}\nlayers: [{op: linear, out_features: 50}]\n"
    assert symcost.evaluate(tiny).totals["params"] == 100 * 50 + 50  # 5,050
    with pytest.raises(symcost.errors.UsageError, match="did you mean 'resnet50'"):
        arch.load_path("resnet5")


def test_derive_sweep_solve_compare():
    d = symcost.derive("linear", in_features=100, out_features=50, batch=1)
    assert d.to_dict() == json.loads(run("derive", "linear", "in_features=100", "out_features=50", "batch=1",
                                         "-f", "json"))  # fmt: skip
    assert d.to_dict()["costs"]["params"] == "50*bias + 5000"  # weights 100*50, 50 biases when bias
    s = symcost.sweep("resnet50", {"H": [224, 256]}, "flops", W="H")
    assert [int(x) for x in s.metrics["flops"]] == [162_912 * h * h + 4_096_000 for h in (224, 256)]
    assert s.to_dict() == json.loads(run("sweep", "resnet50", "--over", "H=224,256", "--set", "W=H", "-f", "json"))
    sol = symcost.solve("resnet50", "flops <= 10*G", "H", W="H", step=32)
    assert sol.value == 224 and sol.to_dict() == json.loads(
        run("solve", "resnet50", "flops <= 10*G", "--for", "H", "--set", "W=H", "--step", "32", "-f", "json")
    )
    c = symcost.compare(["resnet50", "mobilenet_v2"], "params")
    assert c.rows[0]["values"] == [25_557_032, 3_504_872]
    assert c.to_dict() == json.loads(run("compare", "resnet50", "mobilenet_v2", "-m", "params", "-f", "json"))
    # the modules stay modules
    assert symcost.sweep.parse_axis("H=1:3").values == (1, 2, 3)


def test_results_display_in_notebooks_from_the_same_renderer():
    e = symcost.estimate("resnet50", device="a100", dtype="bf16")
    assert e._repr_html_() == e.render("html") == run("eval", "resnet50", "--device", "a100", "--dtype", "bf16",
                                                     "-f", "html").rstrip("\n")  # fmt: skip
    assert "25,557,032" in e._repr_html_()


# ---- the format registry -----------------------------------------------------------------------

ODD = 'fc, "wide"\nnet'
ODD_ARCH = f"name: {json.dumps(ODD)}\nsummary: s\nvariables: {{N: 1}}\ninputs: {{x: [N, 100]}}\nlayers: [{{op: linear, out_features: 50}}]\n"  # noqa: E501


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    folder = tmp_path_factory.mktemp("odd")
    (folder / "odd.yaml").write_text(ODD_ARCH)
    (folder / "plain.yaml").write_text(ODD_ARCH.replace(json.dumps(ODD), "plain"))
    return folder


COMMANDS = {
    "eval": lambda d: ["eval", str(d / "odd.yaml")],
    "compare": lambda d: ["compare", str(d / "odd.yaml"), str(d / "plain.yaml"), "-m", "params,flops"],
    "sweep": lambda d: ["sweep", str(d / "odd.yaml"), "--over", "N=1,2"],
    "solve": lambda d: ["solve", str(d / "odd.yaml"), "params <= 10**6", "--for", "N"],
}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []

    def handle_data(self, data):
        self.text.append(data)


def _strings(data):
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield k
            yield from _strings(v)
    elif isinstance(data, list):
        for v in data:
            yield from _strings(v)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("fmt", formats.ALL)
def test_an_odd_name_survives_every_format(odd, command, fmt):
    out = run(*COMMANDS[command](odd), "--format", fmt)
    if fmt == "json":
        assert ODD in set(_strings(json.loads(out)))
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(out)))
        assert len({len(row) for row in rows}) == 1, rows  # no column shifted
        if command == "compare":
            assert ODD in rows[0]
    elif fmt == "html":
        parser = _Text()
        parser.feed(out)
        assert ODD in "".join(parser.text)
    elif fmt == "latex":
        assert 'fc, "wide" net' in out  # a newline would end a comment line or split a cell
    elif fmt == "table":
        assert 'fc, "wide"\\nnet' in out  # the control character shown, not obeyed
    if fmt in ("table", "markdown", "latex"):  # line-based formats: the name stays on its line
        assert "\nnet" not in out, out


def test_every_command_offers_every_format_in_its_help():
    for command in ("eval", "derive", "sweep", "solve", "compare"):
        assert formats.help_text() in " ".join(run(command, "--help").split())
    for listing in ("formulas", "archs", "devices"):
        assert formats.help_text() in " ".join(run("list", listing, "--help").split())
        for fmt in formats.ALL:
            assert run("list", listing, "-f", fmt)


def test_the_docs_list_the_registry_formats():
    listed = ", ".join(f"`{n}` (default)" if n == formats.DEFAULT else f"`{n}`" for n in formats.ALL)
    rows = [line for line in (PACKAGE.parent / "docs" / "cli.md").read_text().splitlines() if "`--format`" in line]
    assert len(rows) == 3 and all(row.rstrip(" |").endswith(listed) for row in rows), rows


def test_the_default_format_is_the_same_everywhere():
    assert formats.DEFAULT == "table"
    assert run("derive", "linear") == run("derive", "linear", "-f", "table") == run("derive", "linear", "-f", "text")


def test_escaping_lives_in_one_place_per_format():
    assert formats.latex_text("a_b & 50% {x} $y$ #1 ~ ^ \\") == (
        r"a\_b \& 50\% \{x\} \$y\$ \#1 \textasciitilde{} \textasciicircum{} \textbackslash{}"
    )
    assert formats.latex_comment("a\nb") == "% a b"
    assert formats.html_text('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;"
    assert formats.terminal_text("a\x1b[2Jb\n") == "a\\x1b[2Jb\\n"
    assert formats.csv_text([["a,b", 'c"d', "e\nf"]]) == '"a,b","c""d","e\nf"'
    assert formats.markdown_text("a|b\nc") == "a\\|b<br>c"


# ---- the package's shape -----------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """The symcost modules a file imports anywhere (a function's lazy import too), but not the
    imports under ``if TYPE_CHECKING:``, which never run."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for n in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(a.name if (PACKAGE / f"{a.name}.py").exists() else "__init__" for a in node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            found.update(n.split(".")[1] for n in names if n and n.startswith("symcost."))
    return found


def test_the_import_graph_has_no_cycle():
    graph = {p.stem: _imports(p) - {p.stem} for p in PACKAGE.glob("*.py")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert {"api", "formats", "printer", "bundled", "keys"} <= set(graph)
