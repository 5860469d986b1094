"""symcost's hostile corpus (tests/hostile/): every case is refused with one `Error:` line, never a traceback,
never anything executed, in bounded time and memory, and leaves no file behind; output built from hostile text
is escaped in every format.

The corpus, all data:

- ``archs/*.yaml``: broken or hostile architecture files, first line ``# expect: LINE: text`` (the Error line
  names ``FILE:LINE:``) or ``# expect: -: text`` (no line); each is run by ``eval``, ``check``, ``compare``
  and ``sweep``.
- ``devices/*.yaml``: device files, same header; run by ``eval --device-file`` and ``list devices``.
- ``expressions.txt``: hostile expressions, each tried wherever an expression is read (``--set`` of eval,
  derive, sweep, solve and compare; a variable's default in a file; the Python API's ``values=``).
- ``cases.yaml``: command lines with the files they need (configs, FIFOs, outputs), the Python API calls,
  and the resource cases, which run in subprocesses under ``RLIMIT_AS`` = 1 GiB and a 20 s limit.
- ``payloads.txt``: text that tries to break out of each output format (LaTeX ``\\write18``, CSV formulas,
  HTML, terminal escapes), put in an architecture's name and summary and printed in all six formats.

Most cases run in process through typer's CliRunner under a 20 s alarm; the resource cases run in one batch
of subprocesses (tests/hostile/run_limited.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import invoke
from tests.hostile.run_limited import prepare

HERE = Path(__file__).parent / "hostile"
ROOT = Path(__file__).resolve().parent.parent
SECONDS = 20  # CPU seconds a case may take
WALL_SECONDS = 120  # wall-clock seconds, for a loaded machine (and a read that would block)
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _header(path: Path) -> tuple[str | None, str]:
    first = path.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    match = re.match(r"# expect: ([0-9:]+|-): (.+)$", first)
    assert match, f"{path.name} must start with '# expect: LINE: text'"
    return (None if match.group(1) == "-" else match.group(1)), match.group(2)


def _expressions() -> list[tuple[str, str]]:
    lines = (HERE / "expressions.txt").read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines if line and not line.startswith("#")]


CASES = yaml.safe_load((HERE / "cases.yaml").read_text(encoding="utf-8"))
ARCHS = sorted((HERE / "archs").glob("*.yaml"))
DEVICES = sorted((HERE / "devices").glob("*.yaml"))
EXPRESSIONS = _expressions()
PAYLOADS = [json.loads(line) for line in (HERE / "payloads.txt").read_text(encoding="utf-8").splitlines()
            if line.startswith('"')]  # fmt: skip


class _Timeout:
    """Limits around one in-process case: 20 s of CPU time (``ITIMER_PROF``: a runaway computation, measured
    the same on an idle and on a loaded machine) and 120 s of wall-clock time (a read that blocks uses no CPU).
    Past either, the command exits 124 and the test fails."""

    def __enter__(self) -> None:
        def stop(*_: object) -> None:
            raise SystemExit(124)

        self.previous = (signal.signal(signal.SIGALRM, stop), signal.signal(signal.SIGPROF, stop))
        signal.setitimer(signal.ITIMER_PROF, SECONDS)
        signal.alarm(WALL_SECONDS)

    def __exit__(self, *_: object) -> None:
        signal.alarm(0)
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGALRM, self.previous[0])
        signal.signal(signal.SIGPROF, self.previous[1])


def run(*args: str):
    with _Timeout():
        return invoke(*args)


def assert_one_error(result, needle: str, at: str | None = None, exit_code: int = 1) -> str:
    """Exit 1 (2 for a usage error typer reports), exactly one line that starts with `Error:`, which holds
    ``needle`` (and starts with ``Error: AT``), no traceback, no raw control character on stderr."""
    error = result.stderr
    assert result.exit_code == exit_code, f"exit {result.exit_code}: {error}{result.stdout}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in error.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, error
    assert "Traceback" not in error and not CONTROL.search(error), error
    assert any(n in lines[0] for n in needle.split(" || ")), lines[0]  # alternatives: "a || b"
    if at is not None:
        assert lines[0].startswith(f"Error: {at}"), lines[0]
    return lines[0]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """The case runs in an empty folder; afterwards nothing new may be there (no partial output, no file a
    payload made), and the canary ``pwned`` exists nowhere a payload could have written it."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not (tmp_path / "pwned").exists() and not Path("/tmp/symcost-pwned").exists()


def _files_unchanged(folder: Path, before: dict[str, bytes]) -> None:
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert after == before, f"files changed: {sorted(set(after) ^ set(before))}"


# ---- the corpus is what the issue asked for ----------------------------------------------------------


def count_cases() -> int:
    return (len(ARCHS) * 4 + len(DEVICES) * 2 + len(EXPRESSIONS) * len(EXPRESSION_PLACES)
            + len(CASES["commands"]) + len(CASES["api"]) + len(CASES["resources"]))  # fmt: skip


def test_corpus_has_at_least_250_error_cases():
    assert count_cases() >= 250, count_cases()


def test_every_command_has_cases():
    commands = {c["args"].split()[0] for c in CASES["commands"]} | {r["args"].split()[0] for r in CASES["resources"]}
    for name in (
        "eval",
        "derive",
        "roofline",
        "sweep",
        "solve",
        "compare",
        "check",
        "list",
        "import",
        "calibrate",
        "measure",
        "probe",
    ):
        assert name in commands, name


# ---- architecture and device files ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ARCHS, ids=lambda p: p.stem)
@pytest.mark.parametrize("command", ["eval", "check", "compare", "sweep"])
def test_hostile_arch_file(path, command, sandbox):
    line, needle = _header(path)
    args = {
        "eval": ["eval", str(path)],
        "check": ["check", str(path)],
        "compare": ["compare", "seed_fc", str(path)],
        "sweep": ["sweep", str(path), "--over", "N=1,2", "-o", "out.csv"],
    }[command]
    marked = re.search(r"^# sweep: invalid points: (.+)$", path.read_text(encoding="utf-8", errors="replace"), re.M)
    if command == "sweep" and marked:
        # what is only wrong at some values marks those points of a grid as not valid; the sweep goes on
        result = run("sweep", str(path), "--over", "N=1,2")
        assert result.exit_code == 0 and marked.group(1) in result.stdout, result.stdout + result.stderr
        return
    result = run(*args)
    assert_one_error(result, needle, f"{path}:{line}:" if line else None)
    assert not list(sandbox.iterdir())


@pytest.mark.parametrize("path", DEVICES, ids=lambda p: p.stem)
@pytest.mark.parametrize("command", ["eval", "list"])
def test_hostile_device_file(path, command, sandbox):
    line, needle = _header(path)
    if command == "eval":
        result = run("eval", "seed_fc", "--device-file", str(path), "--device", "hostile")
    else:
        result = run("list", "devices", "--device-file", str(path))
    assert_one_error(result, needle, f"{path}:{line}:" if line else None)


# ---- expressions, wherever one is read -------------------------------------------------------------------

ARCH_WITH_DEFAULT = (
    "name: expr\nsummary: a hostile default\nvariables:\n  N: {text}\ninputs: {{x: [N, 4]}}\nlayers: [relu]\n"
)
EXPRESSION_PLACES = ["eval", "derive", "sweep", "solve", "compare", "file", "api"]


@pytest.mark.parametrize(("text", "needle"), EXPRESSIONS, ids=[f"e{i}" for i in range(len(EXPRESSIONS))])
@pytest.mark.parametrize("place", EXPRESSION_PLACES)
def test_hostile_expression(place, text, needle, sandbox):
    if place == "api":
        import symcost
        from symcost.errors import SymcostError

        with _Timeout(), pytest.raises(SymcostError) as caught:
            symcost.evaluate("seed_fc", values={"N": text})
        message = str(caught.value)
        assert any(n in message for n in needle.split(" || ")) and "--set" not in message, message
        return
    setting = f"{'C_in' if place == 'derive' else 'N'}={text}"
    args = {
        "eval": ["eval", "seed_fc", "--set", setting],
        "derive": ["derive", "conv2d", "--set", setting],
        "sweep": ["sweep", "seed_conv", "--over", "H=32,64", "--set", setting, "-o", "out.csv"],
        "solve": ["solve", "seed_conv", "flops <= 10**9", "--for", "H", "--set", setting],
        "compare": ["compare", "seed_fc", "seed_conv", "--set", setting],
    }.get(place)
    at = None if place != "file" else "h.yaml:4:"  # a --set value may be refused where its variable is declared
    if place == "file":
        (sandbox / "h.yaml").write_text(ARCH_WITH_DEFAULT.format(text=json.dumps(text)), encoding="utf-8")
        args = ["eval", "h.yaml"]
    before = {p.name: p.read_bytes() for p in sandbox.iterdir()}
    result = run(*args)
    assert_one_error(result, needle, at)
    _files_unchanged(sandbox, before)


# ---- command lines ---------------------------------------------------------------------------------------


def _args(case: dict) -> list[str]:
    """The case's command line: ``{ROOT}`` is the checkout, ``\\u001b`` a character (an escape, a bidi override)."""
    words = [a.replace("{ROOT}", str(ROOT)) for a in shlex.split(case["args"])]
    return [re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), w) for w in words]


@pytest.mark.parametrize("case", CASES["commands"], ids=lambda c: c["id"])
def test_hostile_command(case, sandbox):
    prepare(case, sandbox)
    before = {p.name: p.read_bytes() for p in sandbox.iterdir() if p.is_file()}
    result = run(*_args(case))
    assert_one_error(result, case["expect"], case.get("at"), case.get("exit", 1))
    _files_unchanged(sandbox, before)


@pytest.mark.parametrize("case", CASES["api"], ids=lambda c: c["id"])
def test_hostile_api_call(case, sandbox):
    import symcost
    from symcost.errors import SymcostError

    prepare(case, sandbox)
    function = getattr(symcost, case["call"])
    with _Timeout(), pytest.raises(SymcostError) as caught:
        function(*case.get("args", []), **case.get("kwargs", {}))
    message = str(caught.value)
    assert case["expect"] in message, message
    assert "--" not in message or case.get("flags_ok"), f"the API's error speaks of command-line options: {message}"


# ---- resource cases: subprocesses under 1 GiB and 20 s -----------------------------------------------------


_BATCHES: list = []


@pytest.fixture(scope="module", autouse=True)
def _start_resource_cases(request, tmp_path_factory):
    """The resource cases start, in two background processes, with the module's first test, so that they run
    while the in-process cases do; each case is its own child under RLIMIT_AS and a timeout
    (tests/hostile/run_limited.py). Only when one of them is selected."""
    if any("test_hostile_resource" in item.nodeid for item in request.session.items) and not _BATCHES:
        folder = tmp_path_factory.mktemp("resources")
        cases = CASES["resources"]
        for index, batch in enumerate([cases[0::2], cases[1::2]]):
            spec = folder / f"batch{index}.json"
            spec.write_text(json.dumps(batch), encoding="utf-8")
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            _BATCHES.append(subprocess.Popen([sys.executable, str(HERE / "run_limited.py"), str(spec), str(folder)],
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True))  # fmt: skip
    yield


@pytest.fixture(scope="module")
def resource_results():
    results = {}
    for proc in _BATCHES:
        out, err = proc.communicate(timeout=len(CASES["resources"]) * (WALL_SECONDS + 5))
        assert proc.returncode == 0, err
        results.update(json.loads(out))
    return results


@pytest.mark.parametrize("case", CASES["resources"], ids=lambda c: c["id"])
def test_hostile_resource(case, resource_results):
    got = resource_results[case["id"]]
    assert not got["timed_out"], f"past {SECONDS} s of CPU time or {WALL_SECONDS} s of wall-clock time"
    assert got["exit"] == case.get("exit", 1), got
    if case.get("exit", 1) == 0:  # a case that must fit the limits, and does
        assert case["expect"] in got["stdout"] and "Traceback" not in got["stderr"], got
        return
    lines = [line for line in got["stderr"].splitlines() if line.startswith("Error:")]
    if case.get("exit", 1) == 130:
        assert lines == [] and "Traceback" not in got["stderr"], got["stderr"]
        return
    assert len(lines) == 1 and "Traceback" not in got["stderr"], got["stderr"]
    assert case["expect"] in lines[0], lines[0]
    assert got["left"] == got["made"], f"files left behind: {sorted(set(got['left']) - set(got['made']))}"


# ---- output escaping: hostile text printed in every format ------------------------------------------------

ARCH_WITH_TEXT = "name: {name}\nsummary: {summary}\ndoc: {summary}\nvariables: {{N: 1}}\ninputs: {{x: [N, 4]}}\nlayers: [{{op: linear, out_features: 2}}]\n"
FORMATS = ["table", "markdown", "csv", "json", "latex", "html"]


def check_escaped(fmt: str, text: str) -> None:
    """``text`` is safe to use as ``fmt``: nothing in it runs or breaks the format's structure."""
    if fmt != "json":
        assert not CONTROL.search(text.replace("\t", " ")), repr(text[:400])
    if fmt == "latex":
        assert not re.search(r"(?<!\\textbackslash\{\})\\(input|include|write18|immediate|openout|def|catcode)\b",
                             text), text  # fmt: skip
        for line in text.splitlines():
            assert not line.startswith("\\") or line.startswith(("\\begin", "\\end", "\\toprule", "\\midrule",
                                                                  "\\bottomrule", "\\[", "\\]")), line  # fmt: skip
    if fmt == "html":
        assert not re.search(r"<\s*(script|img|iframe|svg|a\b|b\b)", text, re.I), text
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert len({len(r) for r in rows if r}) == 1, rows
        for row in rows:
            for cell in row:
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
                assert not (cell.startswith("-") and not re.fullmatch(r"-[0-9.e+-]*", cell)), cell
    if fmt == "json":
        json.loads(text, parse_constant=lambda name: pytest.fail(f"JSON holds {name}"))
    if fmt == "markdown":
        for line in text.splitlines():
            assert not line.lstrip().startswith(("<script", "<img")), line


# every payload in every format, each pair through one of the three commands in turn (every command sees every
# format and every payload)
ESCAPE_CASES = [(["eval", "compare", "device"][(i + j) % 3], p, f) for i, p in enumerate(PAYLOADS)
                for j, f in enumerate(FORMATS)]  # fmt: skip


@pytest.mark.parametrize(("command", "payload", "fmt"), ESCAPE_CASES,
                         ids=[f"{c}-p{i // len(FORMATS)}-{f}" for i, (c, _, f) in enumerate(ESCAPE_CASES)])  # fmt: skip
def test_hostile_text_is_escaped(command, payload, fmt, sandbox):
    (sandbox / "t.yaml").write_text(
        ARCH_WITH_TEXT.format(name=json.dumps(payload), summary=json.dumps(payload)), encoding="utf-8"
    )
    args = {
        "eval": ["eval", "t.yaml", "-f", fmt],
        "compare": ["compare", "t.yaml", "seed_fc", "-f", fmt],
        "device": ["eval", "t.yaml", "--device", "a100", "-f", fmt],
    }[command]
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    check_escaped(fmt, result.stdout)
    assert not (sandbox / "pwned").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_device_text_is_escaped(fmt, sandbox):
    payload = PAYLOADS[0]
    device = HERE / "text_device.yaml"
    result = run("list", "devices", "--device-file", str(device), "-f", fmt)
    assert result.exit_code == 0, result.stderr
    check_escaped(fmt, result.stdout)
    assert payload  # the device file holds the first payload's pieces in its summary and notes


def test_ctrl_c_during_imports(monkeypatch, capsys):
    """Ctrl-C while ``symcost`` imports its command line (typer, sympy) exits 130 with nothing on stderr: the
    console script's entry point (symcost/__main__.py) imports inside its handler."""
    import builtins

    import symcost.__main__ as entry

    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "cli" or name.endswith("symcost.cli"):
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    monkeypatch.setattr(sys, "argv", ["symcost", "eval", "seed_fc"])
    with pytest.raises(SystemExit) as exited:
        entry.main()
    assert exited.value.code == 130
    assert capsys.readouterr().err == ""


def test_ctrl_c_in_a_command_exits_130(monkeypatch):
    """Ctrl-C inside a command body (here: while the architecture loads) is exit 130, no Error line."""
    import symcost.inputs

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(symcost.inputs, "load", interrupted)
    result = run("eval", "seed_fc")
    assert result.exit_code == 130 and "Error" not in result.stderr and "Traceback" not in result.stderr


# ---- the pieces: the write helper, the escaping functions, the budgets ------------------------------------


def test_write_atomic_leaves_no_partial_file_on_a_full_disk(tmp_path, monkeypatch):
    """A failure after some bytes were written (ENOSPC at fsync) leaves neither the temporary file nor a
    truncated target; an existing target keeps its old content."""
    import errno

    from symcost import files
    from symcost.errors import UsageError

    target = tmp_path / "out.csv"
    target.write_text("old\n", encoding="utf-8")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UsageError, match="cannot write .*out.csv': no space left on the device"):
        files.write_atomic(target, "new\n" * 1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    assert target.read_text(encoding="utf-8") == "old\n"


def test_write_atomic_cleans_up_after_ctrl_c(tmp_path):
    from symcost import files

    def interrupted(handle):
        handle.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.write_atomic(tmp_path / "plot.png", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_sweep_output_error_is_one_line(sandbox, monkeypatch):
    """An output error in `sweep -o` (here: the disk fills at fsync) is one Error line, and no file is left."""
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    result = run("sweep", "seed_fc", "--over", "N=1:100", "-o", "out.csv")
    assert_one_error(result, "cannot write 'out.csv': no space left on the device", "--output: ")
    assert list(sandbox.iterdir()) == []


def test_write_atomic_keeps_the_targets_permissions(tmp_path):
    from symcost import files

    target = tmp_path / "out.yaml"
    target.write_text("x", encoding="utf-8")
    os.chmod(target, 0o640)
    files.write_atomic(target, "y")
    assert target.read_text(encoding="utf-8") == "y" and (target.stat().st_mode & 0o777) == 0o640


def test_csv_cells_that_spreadsheets_run_are_neutralized():
    """OWASP, "CSV Injection" (https://owasp.org/www-community/attacks/CSV_Injection): a cell beginning with
    = + - @, a tab or a carriage return is prefixed with a single quote; numbers stay numbers."""
    from symcost.formats import csv_text

    rows = list(
        csv.reader(io.StringIO(csv_text([["=1+1", "+1", "-cmd", "@SUM(A1)", "\t=1", "\r=1", -5, "ok"]]), newline=""))
    )
    assert rows == [["'=1+1", "'+1", "'-cmd", "'@SUM(A1)", "'\t=1", "\\r=1", "-5", "ok"]]


def test_latex_comment_cannot_end_early():
    from symcost.formats import latex_comment

    line = latex_comment("x\n\\input{/etc/passwd}\r\\write18{rm}")
    assert "\n" not in line and "\\input" not in line and "\\write18" not in line


def test_terminal_text_shows_escapes_and_bidi_controls():
    from symcost.formats import terminal_text

    assert terminal_text("a\x1b[2Jb\u202ec\x9bd") == "a\\x1b[2Jb\\u202ec\\x9bd"


def test_json_never_holds_nan_or_infinity():
    from symcost.formats import json_text

    text = json_text({"latency": float("inf"), "ratio": float("nan"), "n": 10**30})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {"latency": None, "ratio": None, "n": 10**30}


def test_a_flat_sum_is_width_not_depth():
    """100 (or 900) terms in a row are one level of nesting: accepted, and fast."""
    import sympy

    from symcost import expr

    H = sympy.Symbol("H")
    assert expr.parse("+".join(["H"] * 100), {"H": H}) == 100 * H
    assert expr.parse("+".join(["1"] * 900), {}) == 900


def test_a_sweep_axis_is_counted_before_it_is_built():
    """10**15 values are refused at once: counting a range does not build it."""
    from symcost.errors import UsageError
    from symcost.sweep import parse_axis

    with _Timeout(), pytest.raises(UsageError, match="1,000,000,000,000,000 values"):
        parse_axis("H=1:1000000000000000")


def test_an_api_error_speaks_the_apis_words():
    import symcost
    from symcost.errors import SymcostError

    with pytest.raises(SymcostError) as caught:
        symcost.estimate("seed_fc", device="a100", efficiency=2)
    assert "efficiency" in str(caught.value) and "--" not in str(caught.value)
    result = run("eval", "seed_fc", "--device", "a100", "--memory-efficiency", "2")
    assert "--memory-efficiency" in result.stderr or "--efficiency" in result.stderr


def test_write_atomic_permission_error_is_one_line(tmp_path, monkeypatch):
    """No permission to create the temporary file: the user's words, no file left (root ignores modes, so the
    refusal is simulated where the file is created)."""
    import tempfile

    from symcost import files
    from symcost.errors import UsageError

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(UsageError, match="cannot write .*out.json': Permission denied"):
        files.write_atomic(tmp_path / "out.json", "{}")
    assert list(tmp_path.iterdir()) == []
