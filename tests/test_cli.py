"""The command line, through typer's CliRunner: help, formats, and errors users read."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from symcost import expr, registry
from tests.helpers import commands, invoke, long_options


@pytest.mark.parametrize("command", [[], ["derive"], ["list"], ["list", "formulas"]])
def test_every_command_has_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.stdout
    assert len(result.stdout.split()) > 15
    assert result.stdout.lstrip().startswith(" ".join(["Usage: symcost", *command, "[OPTIONS]"]))


COMMANDS = dict(commands())


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "symcost")
def test_help_shows_what_the_command_declares(path):
    """Each command's --help (the CLI's own list, so a new command is covered): its usage line, its
    summary, every --option it declares and, for a group, every subcommand."""
    command = COMMANDS[path]
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.stderr
    help_text = result.stdout
    assert help_text.lstrip().startswith(" ".join(["Usage: symcost", *path, "[OPTIONS]"])), help_text[:200]
    summary = command.help.strip().split("\n")[0]
    assert " ".join(summary.split()[:4]) in " ".join(help_text.split()), summary
    assert [o for o in long_options(command) if o not in help_text] == []
    for name in getattr(command, "commands", {}):
        assert name in help_text, name


def test_the_command_list_is_the_cli_s():
    assert {("derive",), ("eval",), ("sweep",), ("solve",), ("compare",), ("list", "archs")} <= set(COMMANDS)
    assert "--set" in long_options(COMMANDS[("derive",)]) and "--format" in long_options(COMMANDS[("eval",)])


def test_derive_help_shows_examples():
    result = invoke("derive", "--help")
    assert "symcost derive conv2d --set kernel=3 stride=1 padding=1" in result.stdout


def test_derive_text():
    result = invoke("derive", "conv2d")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "H_out = floor((H - dilation_h*(kernel_h - 1) + 2*padding_h - 1)/stride_h) + 1" in out
    assert "MACs             = C_in*C_out*H_out*N*W_out*kernel_h*kernel_w/groups" in out
    assert "groups must divide the input channels" in out


def test_derive_set_simplifies():
    result = invoke("derive", "conv2d", "--set", "kernel=3", "stride=1", "padding=1", "--defaults")
    assert result.exit_code == 0, result.stderr
    assert "y: [N, C_out, H, W]" in result.stdout
    assert "MACs             = 9*C_in*C_out*H*N*W" in result.stdout


def test_derive_set_can_bind_to_expressions():
    result = invoke("derive", "conv2d", "--set", "kernel=1,W=H", "--defaults")
    assert result.exit_code == 0, result.stderr
    assert "MACs             = C_in*C_out*H**2*N" in result.stdout


def test_derive_json_parses_and_is_complete():
    result = invoke("derive", "conv2d", "--format", "json", "--set", "kernel=3")
    data = json.loads(result.stdout)
    assert data["name"] == "conv2d"
    assert set(data["costs"]) == {"flops", "macs", "params", "buffers", "read", "write", "cache"}
    assert data["bound"] == {"kernel_h": "3", "kernel_w": "3"}
    assert data["convention"]["name"] == "torch"


def test_derive_latex_and_markdown():
    latex = invoke("derive", "linear", "--format", "latex").stdout
    assert "\\begin{align*}" in latex and "\\mathrm{FLOPs}" in latex
    markdown = invoke("derive", "linear", "--format", "markdown").stdout
    assert markdown.startswith("### `linear`") and "| MACs |" in markdown


def test_count_elementwise_folds_bias_into_flops():
    result = invoke("derive", "linear", "--count-elementwise", "bias", "--format", "json")
    data = json.loads(result.stdout)
    s = registry.get("linear").symbols
    flops = expr.parse(data["costs"]["flops"], s)  # what derive prints parses back
    batch, fin, fout, bias = s["batch"], s["in_features"], s["out_features"], s["bias"]
    assert flops == 2 * batch * fin * fout + batch * bias * fout
    assert data["elementwise_in_flops"] == ["bias"]


def test_list_formulas():
    result = invoke("list", "formulas")
    assert result.exit_code == 0
    for name in registry.names():
        assert name in result.stdout
    data = json.loads(invoke("list", "formulas", "--format", "json").stdout)
    assert {d["name"] for d in data} == set(registry.names())


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["derive", "conv2x"], "unknown formula 'conv2x' (did you mean 'conv2d'?)"),
        (["derive", "conv2d", "--set", "kernel=0"], "attribute 'kernel' (kernel_h) must be >= 1"),
        (["derive", "conv2d", "--set", "groups=true"], "must be a whole number, got the bool true"),
        (["derive", "conv2d", "--set", "H=__import__('os')"], "unknown function '__import__'"),
        (["derive", "conv2d", "--set", "H=().__class__"], "is not allowed"),
        (["derive", "conv2d", "--set", "H=1.5"], "'H' must be a whole number, got 3/2"),
        (["derive", "conv2d", "--set", "nokey"], "expected NAME=VALUE"),
        (["derive", "conv2d", "--set", "kernal=3"], "did you mean 'kernel'"),
        (["derive", "conv2d", "--set", "kernel=99,H=8,W=8", "--defaults"], "dilated kernel is taller"),
        (["derive", "conv2d", "--format", "yaml"], "unknown format 'yaml'"),
        (["derive", "conv2d", "--count-elementwise", "nrom"], "did you mean 'norm'"),
    ],
)
def test_bad_input_is_one_error_line(args, needle):
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert needle in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.count("\n") == 1


def test_debug_shows_the_traceback():
    result = invoke("--debug", "derive", "conv2x")
    assert result.exit_code == 1 and result.exception is not None


def test_console_script_end_to_end():
    done = subprocess.run(
        [sys.executable, "-m", "symcost.cli", "derive", "nope"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: unknown formula 'nope'")
    ok = subprocess.run([sys.executable, "-m", "symcost.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("symcost ")


@pytest.mark.parametrize(
    "args, says",
    [
        (["eval", "resnet50", "--depth", "abc"], "Invalid value for '--depth'"),
        (["eval", "resnet50", "--no-such-option"], "No such option: --no-such-option"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["eval"], "Missing argument 'arch'"),
    ],
)
def test_option_parsing_errors_are_one_error_line_and_status_1(args, says):
    """What the option parser refuses is bad input like any other: one `Error:` line, status 1, no usage
    block (the console script's own entry point, in a subprocess: CliRunner bypasses it)."""
    import subprocess

    run = subprocess.run([sys.executable, "-m", "symcost", *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], run.stderr
    assert run.stdout == ""


def test_a_reader_that_stops_early_gets_no_error_line():
    """`symcost list runtimes | head -1`: the pipe closes under symcost's feet; that is the reader's
    choice, not an error to print."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "symcost", "list", "runtimes"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # before symcost has written the rest
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Error" not in stderr and "Traceback" not in stderr, stderr
