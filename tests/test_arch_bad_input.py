"""A corpus of broken architecture files: each gives one located `Error:` line and exit 1,
never a traceback, never code run. Each file's first line says what it must produce:
``# expect: LINE: text``, or ``# expect[eval]: ...`` for a file that is well-formed but cannot
be evaluated (`symcost check` accepts it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CORPUS = sorted((Path(__file__).parent / "bad_archs").glob("*.yaml"))
GOOD = Path(__file__).parent / "good_archs"


def test_corpus_is_large():
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
@pytest.mark.parametrize("command", ["eval", "check"])
def test_bad_file_is_one_located_error(path, command, tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)  # anything a hostile file tried to write would land here
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.match(r"# expect(\[eval\])?: (\d+): (.+)$", first)
    assert match, f"{path.name} must start with '# expect: LINE: text'"
    eval_only, line, needle = match.group(1), int(match.group(2)), match.group(3)
    result = cli(command, str(path))
    if eval_only and command == "check":
        assert result.exit_code == 0 and "not evaluated" in result.stdout, result.stdout + result.stderr
        return
    assert result.exit_code == 1, result.stdout
    error = result.stderr
    assert error.startswith(f"Error: {path}:{line}:"), error
    assert needle in error, error
    assert error.count("\n") == 1 and "Traceback" not in error
    assert not list(tmp_path.iterdir())
    assert not Path("/tmp/symcost-pwned").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["eval", "seed_fc", "--set", "N=__import__('os').getcwd()"], "calling through attribute access"),
        (["eval", "seed_fc", "--set", "M=2"], "has no variable 'M'"),
        (["eval", "resnet50", "--set", "blocks=3"], "has no variable 'blocks' (did you mean"),
        (["eval", "seed_fc", "--set", "N=0"], "must be a whole number >= 1, got 0"),
        (["eval", "seed_fc", "--dtype", "fp13"], "unknown dtype 'fp13'"),
        (["eval", "seed_fc", "--format", "yaml"], "unknown format 'yaml'"),
        (["eval", "resnet5"], "did you mean 'resnet50'"),
        (
            ["eval", str(GOOD / "conv_h.yaml"), "--set", "H=4"],
            "conv_h.yaml:8:5: layer 'conv' (conv2d): the dilated kernel",
        ),
        (["eval", "no/such/file.yaml"], "no such file"),
    ],
)
def test_bad_command_line(args, needle, cli):
    result = cli(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and needle in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
