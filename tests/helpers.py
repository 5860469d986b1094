"""What many test modules share: one in-process CLI runner, the CLI's own command list, bundled graphs built once.

``tests/conftest.py`` offers the same as fixtures (``cli``, ``graph``); module-level helpers that
tests call import them from here.

    >>> invoke("check", "resnet50").exit_code
    0
    >>> graph("resnet50") is graph("resnet50")  # parsed and built once per test session
    True
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from typer.testing import CliRunner, Result

from symcost import arch, registry, shapes
from symcost.shapes import Graph

runner = CliRunner()


def invoke(*args: str, **kwargs: Any) -> Result:
    """``symcost ARGS...`` run in process: the result's ``exit_code``, ``stdout`` and ``stderr``."""
    from symcost.cli import app

    return runner.invoke(app, list(args), **kwargs)


def output(*args: str, **kwargs: Any) -> str:
    """The standard output of ``symcost ARGS...``, which must exit 0 (else the failure shows its stderr)."""
    result = invoke(*args, **kwargs)
    assert result.exit_code == 0, f"symcost {' '.join(args)}: exit {result.exit_code}\n{result.stderr}{result.stdout}"
    return result.stdout


def commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the CLI, as the CLI itself declares it: ``(("list", "archs"), <Command>)``.

    The root is ``()``; a group (``list``) comes before its subcommands; hidden commands are left out.
    """
    import typer.main

    from symcost.cli import app

    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                yield from walk(sub, (*path, name))

    yield from walk(typer.main.get_command(app), ())


def long_options(command: Any) -> list[str]:
    """The ``--long`` option names a command declares (its ``--help`` must show each)."""
    return [
        o for p in command.params if p.param_type_name == "option" and not p.hidden for o in p.opts if o[:2] == "--"
    ]


@functools.cache
def graph(name: str) -> Graph:
    """The bundled architecture ``archs/NAME.yaml``, parsed and built once per test session."""
    path = registry.data_dir("archs") / f"{name}.yaml"
    return shapes.build(arch.load_path(path, f"archs/{name}.yaml"))


@functools.cache
def gen_archs() -> ModuleType:
    """``scripts/gen_llm_archs.py``, the generator of every bundled Hub model: its ``HUB`` (name -> Hub
    repository; ``DENSE``, ``MOE``, ``ENCDEC`` by kind) and ``bundled_yaml(name)``, the text that
    ``archs/NAME.yaml`` must hold."""
    path = Path(__file__).resolve().parent.parent / "scripts" / "gen_llm_archs.py"
    spec = importlib.util.spec_from_file_location("gen_llm_archs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
