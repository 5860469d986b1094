"""symcost's package source never hands text to an evaluator, and reads YAML only safely."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "symcost"
FORBIDDEN_CALLS = {"eval", "exec", "sympify", "parse_expr", "S", "lambdify", "unsafe_load", "full_load"}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                yield func.id, node
            elif isinstance(func, ast.Attribute):
                yield func.attr, node


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_evaluator_on_text(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for name, node in _calls(tree):
        assert name not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {name}()"
        if name == "load" and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            assert not (isinstance(owner, ast.Name) and owner.id == "yaml"), f"{path.name}:{node.lineno} yaml.load"
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = getattr(node, "module", None) or ""
            names = [a.name for a in node.names]
            assert "sympy.parsing" not in module and not any("parsing" in n for n in names), path.name


def test_scanner_catches_a_planted_call():
    planted = ast.parse("import sympy\nx = sympy.sympify(text)\n")
    assert any(name == "sympify" for name, _ in _calls(planted))
