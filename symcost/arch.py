"""An architecture file → an :class:`Arch`: variables, inputs, reusable blocks and layers.

Only structure is checked here (keys, types, names, references between blocks, expressions);
shapes are propagated by :mod:`symcost.shapes`. The grammar is documented in ``docs/archs.md``.

>>> arch = load_text('''
... name: mlp
... summary: two-layer perceptron
... variables: {N: 1, d: 784, hidden: 4*d}
... inputs: {x: [N, d]}
... layers:
...   - {op: linear, name: fc1, out_features: hidden}
...   - {op: relu}
...   - {op: linear, name: fc2, out_features: 10}
... ''', "mlp.yaml")
>>> [layer.op for layer in arch.layers], str(arch.variables["hidden"].default)
(['linear', 'relu', 'linear'], '4*d')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy

from . import expr
from .errors import ArchError, Location, did_you_mean
from .yamlio import Mapping as YMapping
from .yamlio import check_keys, load_file, mapping_at, text_at, texts_at
from .yamlio import load_text as yaml_load_text

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: ``extends`` names a bundled architecture or a file beside the extending one, never a path.
_EXTENDS_TARGET = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
MAX_EXTENDS = 16
#: Blocks that use blocks: a real network nests a handful (a stage of blocks of layers); hundreds
#: would only exhaust Python's recursion while the graph is built.
MAX_BLOCK_DEPTH = 64
_LAYER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_TOP_KEYS = {
    "name",
    "family",
    "summary",
    "doc",
    "sources",
    "notes",
    "variables",
    "inputs",
    "blocks",
    "layers",
    "outputs",
    "extends",
    "samples",
    "tokens",
    "phases",
    "tables",
}
_EXTENDS_KEYS = {"name", "family", "summary", "doc", "sources", "notes", "variables", "extends", "tables"}
_TABLE_KEYS = {"columns", "rows", "doc"}
_PHASE_KEYS = {"doc", "set"}
#: Phases every architecture has: a plain forward pass, and a training step (forward + backward).
BUILTIN_PHASES = {
    "inference": "one forward pass at the variables' values (the default)",
    "train": "one training step: forward + backward (2 x forward for matmul-class ops), with gradient and optimizer memory",
}
_BLOCK_KEYS = {"args", "inputs", "layers", "output", "doc"}
_LAYER_KEYS = {"op", "block", "name", "in", "repeat", "index_from", "when", "tied", "for_each"}
_VARIABLE_KEYS = {"default", "doc", "min", "type"}


def variable_symbol(name: str, minimum: int = 1, kind: str = "int") -> sympy.Symbol:
    """Architecture variables are positive integers, like formula shape symbols (same symbols);
    a variable declared with ``min: 0`` (a KV cache's length) is a nonnegative one, and one declared
    ``type: ratio`` (a width multiplier, 1.1) a positive rational."""
    if kind == "ratio":
        return sympy.Symbol(name, rational=True, positive=True)
    if minimum >= 1:
        return sympy.Symbol(name, integer=True, positive=True)
    return sympy.Symbol(name, integer=True, nonnegative=True)


@dataclass(frozen=True)
class Variable:
    name: str
    symbol: sympy.Symbol
    default: sympy.Expr | None  # None: the user must --set it
    doc: str
    loc: Location
    minimum: int = 1
    #: "int" (a size or a count) or "ratio": a positive rational such as EfficientNet's width
    #: multiplier 1.1 or MNASNet's alpha 0.75, which must meet a rounding (make_divisible, ceil)
    #: before it becomes a size
    kind: str = "int"


@dataclass(frozen=True)
class Phase:
    """A named set of variable values (``decode: {S: 1, ctx: 4096}``); ``--set`` overrides them."""

    name: str
    doc: str
    values: Mapping[str, sympy.Expr]
    loc: Location


@dataclass(frozen=True)
class Value:
    """A layer or block-argument value: an expression (``raw`` text kept for messages) or a list."""

    raw: Any
    loc: Location


@dataclass(frozen=True)
class Layer:
    op: str | None  # a formula name ...
    block: str | None  # ... or a block name
    name: str | None
    inputs: tuple[tuple[str, Location], ...]  # () = the previous layer's output
    repeat: Value | None
    index_from: int
    when: Value | None
    tied: tuple[str, Location] | None
    args: Mapping[str, Value]  # attributes / shape expectations / block arguments
    loc: Location
    for_each: str | Table | None = None  # a table's name (arch.tables) or an inline table: one copy per row
    for_each_loc: Location | None = None


@dataclass(frozen=True)
class Table:
    """Per-stage settings: ``columns`` name block arguments, each row sets them for one copy.

    Cells are expressions of the variables (``make_divisible(16*width, 8)``), kept as written."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Value, ...], ...]
    loc: Location


@dataclass(frozen=True)
class Block:
    name: str
    args: Mapping[str, Value | None]  # None: required
    inputs: tuple[str, ...]
    layers: tuple[Layer, ...]
    output: str | None
    doc: str
    loc: Location
    #: input name -> the shape it is read as (``x: [N, C, H, W]``): identifiers bind to the actual
    #: dims, ``"*rest"`` to the product of the dims it stands for, expressions are checked
    shapes: Mapping[str, tuple[Value, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Arch:
    name: str
    summary: str
    doc: str
    path: str
    variables: Mapping[str, Variable]
    inputs: Mapping[str, tuple[Value, ...]]
    blocks: Mapping[str, Block]
    layers: tuple[Layer, ...]
    outputs: tuple[str, ...]
    notes: tuple[str, ...]
    sources: tuple[str, ...]
    loc: Location
    samples: sympy.Expr | None = None  # samples per forward pass (throughput in samples/s)
    tokens: sympy.Expr | None = None  # tokens per forward pass (throughput in tokens/s)
    phases: Mapping[str, Phase] = field(default_factory=dict)
    tables: Mapping[str, Table] = field(default_factory=dict)
    #: The model family a file belongs to (``efficientnet`` for efficientnet_b0 ... b7): `symcost list
    #: archs` groups by it. A file that extends another inherits its family unless it names one.
    family: str = ""


def load_path(path: str | Path, display_name: str | None = None) -> Arch:
    """An architecture file, or a bundled architecture by name (``load_path("resnet50")``)."""
    path, shown = resolve_path(path)
    return parse(load_file(path, display_name or shown), display_name or shown)


def resolve_path(arch: str | Path) -> tuple[Path, str]:
    """A path to a YAML file, or the name of a bundled architecture, with the name errors show.

    >>> resolve_path("resnet50")[1]
    'archs/resnet50.yaml'
    """
    from . import bundled

    path = Path(arch)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path, str(arch)
    found = bundled.path("archs", str(arch))
    return found, f"archs/{found.name}"


def load_text(text: str, name: str = "<string>") -> Arch:
    return parse(yaml_load_text(text, name), name)


def parse(data: Any, path: str, _chain: tuple[str, ...] = ()) -> Arch:
    """Validate a parsed architecture file."""
    top = _mapping(data, "an architecture file", Location(path, 1, 1))
    if "extends" in top:
        return _extend(top, path, _chain)
    _known(top, _TOP_KEYS, "architecture")
    name = _text(top, "name", required=True)
    variables: dict[str, Variable] = {}
    raw_vars = _mapping(top.get("variables"), "variables", top.loc_of("variables"), optional=True)
    for var_name in raw_vars:  # names first: "C: max(1, 2)" unquoted splits into C: "max(1" and a key "2)"
        if not isinstance(var_name, str) or not _IDENT.match(var_name):
            hint = _comma_hint(raw_vars, var_name)
            raise ArchError(f"'{var_name}' is not a valid variable name{hint}", raw_vars.key_loc(var_name))
    for var_name, spec in raw_vars.items():
        loc = raw_vars.key_loc(var_name)
        if var_name in expr.FUNCTIONS:
            raise ArchError(f"'{var_name}' is a function name and cannot be a variable", loc)
        why = expr.reserved(var_name)
        if why:
            raise ArchError(f"{why} and cannot be a variable", loc)
        doc = ""
        minimum = 1
        value_loc = raw_vars.loc_of(var_name)
        if isinstance(spec, YMapping):
            _known(spec, _VARIABLE_KEYS, f"variable '{var_name}'")
            doc = _text(spec, "doc")
            if "min" in spec:
                minimum = spec["min"]
                if minimum not in (0, 1) or isinstance(minimum, bool):
                    raise ArchError("a variable's 'min' must be 0 or 1 (the default)", spec.loc_of("min"))
            kind = _text(spec, "type") or "int"
            if kind not in ("int", "ratio"):
                raise ArchError(
                    f"a variable's 'type' is int (a whole number, the default) or ratio (a positive rational such "
                    f"as a width multiplier), got {kind!r}",
                    spec.loc_of("type"),
                )
            value_loc = spec.loc_of("default")
            spec = spec.get("default")
        else:
            kind = "int"
        default = None
        if spec is not None:
            names = {v.name: v.symbol for v in variables.values()}
            default = expr.parse(spec, names, loc=value_loc)
        symbol = variable_symbol(var_name, minimum, kind)
        variables[var_name] = Variable(var_name, symbol, default, doc, loc, minimum, kind)

    raw_inputs = _mapping(top.get("inputs"), "inputs", top.loc_of("inputs"))
    if not raw_inputs:
        raise ArchError("'inputs' must name at least one input tensor, like x: [N, 3, H, W]", raw_inputs.loc)
    inputs = {}
    for tensor, dims in raw_inputs.items():
        _check_name(tensor, raw_inputs.key_loc(tensor), "input")
        inputs[tensor] = _shape(dims, raw_inputs.loc_of(tensor), f"input '{tensor}'")

    blocks: dict[str, Block] = {}
    raw_blocks = _mapping(top.get("blocks"), "blocks", top.loc_of("blocks"), optional=True)
    for block_name, spec in raw_blocks.items():
        _check_name(block_name, raw_blocks.key_loc(block_name), "block")
        blocks[block_name] = _block(block_name, spec, raw_blocks.loc_of(block_name))

    tables = _tables(top)
    layers = _layers(top.get("layers"), top.loc_of("layers"), "layers")
    if not layers:
        raise ArchError("'layers' must hold at least one layer", top.loc_of("layers"))
    arch = Arch(
        name=name,
        summary=_text(top, "summary", required=True),
        doc=_text(top, "doc"),
        path=path,
        variables=variables,
        inputs=inputs,
        blocks=blocks,
        layers=tuple(layers),
        outputs=tuple(_names(top.get("outputs"), top.loc_of("outputs"), "outputs")),
        notes=tuple(_texts(top, "notes")),
        sources=tuple(_texts(top, "sources")),
        loc=top.loc,
        samples=_optional_expr(top, "samples", variables),
        tokens=_optional_expr(top, "tokens", variables),
        phases=_phases(top, variables),
        tables=tables,
        family=_text(top, "family"),
    )
    _check_block_references(arch)
    return arch


def _optional_expr(top: YMapping, key: str, variables: Mapping[str, Variable]) -> sympy.Expr | None:
    """``samples: N`` or ``tokens: B*S``: an expression over the variables."""
    if key not in top:
        return None
    names = {v.name: v.symbol for v in variables.values()}
    return expr.parse(top[key], names, loc=top.loc_of(key))


def _phases(top: YMapping, variables: Mapping[str, Variable]) -> dict[str, Phase]:
    raw = _mapping(top.get("phases"), "phases", top.loc_of("phases"), optional=True)
    names = {v.name: v.symbol for v in variables.values()}
    phases = {}
    for phase_name, spec in raw.items():
        loc = raw.key_loc(phase_name)
        _check_name(phase_name, loc, "phase")
        if phase_name in BUILTIN_PHASES:
            raise ArchError(f"'{phase_name}' is a built-in phase; give yours another name", loc)
        spec = _mapping(spec, f"phase '{phase_name}'", raw.loc_of(phase_name))
        _known(spec, _PHASE_KEYS, f"phase '{phase_name}'")
        values_map = _mapping(spec.get("set"), f"phase '{phase_name}' set", spec.loc_of("set"))
        values = {}
        for var_name, value in values_map.items():
            if var_name not in variables:
                raise ArchError(
                    f"phase '{phase_name}' sets an unknown variable '{var_name}'{did_you_mean(str(var_name), variables)}",
                    values_map.key_loc(var_name),
                )
            values[var_name] = expr.parse(value, names, loc=values_map.loc_of(var_name))
        phases[phase_name] = Phase(phase_name, _text(spec, "doc"), values, loc)
    return phases


def _extend(top: YMapping, path: str, chain: tuple[str, ...]) -> Arch:
    """``extends: resnet50`` (a bundled name or a path beside this file) with new variable defaults."""
    _known(top, _EXTENDS_KEYS, "an architecture that extends another")
    target = _text(top, "extends", required=True)
    if len(chain) >= MAX_EXTENDS:
        raise ArchError(f"extends chain too long (more than {MAX_EXTENDS} files)", top.loc_of("extends"))
    if not _EXTENDS_TARGET.match(target):
        raise ArchError(
            f"extends: '{target}' must be a bundled architecture or a file in this file's own folder "
            "(a name like resnet50 or my_base.yaml; no folders, no '..')",
            top.loc_of("extends"),
        )
    here = Path(path).parent
    candidates = [here / target, here / f"{target}.yaml"]
    try:
        from .bundled import data_dir

        candidates.append(data_dir("archs") / f"{target}.yaml")
    except Exception:  # pragma: no cover - no bundled folder
        pass
    base_path = next((c for c in candidates if c.is_file()), None)
    if base_path is None:
        raise ArchError(f"cannot find the architecture '{target}' to extend", top.loc_of("extends"))
    shown = str(here / base_path.name) if base_path.parent == here else f"archs/{base_path.name}"
    if shown in chain or path in chain:
        raise ArchError(f"'extends' forms a cycle: {' -> '.join([*chain, path, shown])}", top.loc_of("extends"))
    base = parse(load_file(base_path, shown), shown, (*chain, path))
    variables = dict(base.variables)
    raw_vars = _mapping(top.get("variables"), "variables", top.loc_of("variables"), optional=True)
    for var_name, spec in raw_vars.items():
        if var_name not in variables:
            raise ArchError(
                f"'{base.name}' has no variable '{var_name}'{did_you_mean(str(var_name), variables)}",
                raw_vars.key_loc(var_name),
            )
        names = {v.name: v.symbol for v in variables.values()}
        default = expr.parse(spec, names, loc=raw_vars.loc_of(var_name))
        old = variables[var_name]
        variables[var_name] = Variable(
            old.name, old.symbol, default, old.doc, raw_vars.key_loc(var_name), old.minimum, old.kind
        )
    return Arch(
        name=_text(top, "name", required=True),
        summary=_text(top, "summary", required=True),
        doc=_text(top, "doc") or base.doc,
        path=path,
        variables=variables,
        inputs=base.inputs,
        blocks=base.blocks,
        layers=base.layers,
        outputs=base.outputs,
        notes=tuple(_texts(top, "notes")) or base.notes,
        sources=tuple(_texts(top, "sources")) or base.sources,
        loc=top.loc,
        samples=base.samples,
        tokens=base.tokens,
        phases=base.phases,
        tables=_override_tables(top, base),
        family=_text(top, "family") or base.family,
    )


def _tables(top: YMapping) -> dict[str, Table]:
    """``tables: {stages: {columns: [expand, C_out, layers], rows: [[1, 16, 1], [6, 24, 2]]}}``"""
    raw = _mapping(top.get("tables"), "tables", top.loc_of("tables"), optional=True)
    tables = {}
    for table_name, spec in raw.items():
        _check_ident(table_name, raw.key_loc(table_name), "table")
        tables[table_name] = _table(table_name, spec, raw.loc_of(table_name))
    return tables


def _table(name: str, spec: Any, loc: Location) -> Table:
    spec = _mapping(spec, f"table '{name}'", loc)
    _known(spec, _TABLE_KEYS, f"table '{name}'")
    columns = spec.get("columns")
    if not isinstance(columns, list) or not columns:
        raise ArchError(f"table '{name}' needs 'columns': a list of block argument names", spec.loc_of("columns"))
    for index, column in enumerate(columns):
        _check_ident(column, columns.loc_of(index), f"table '{name}' column")
        if column == "index":
            raise ArchError(
                "'index' is the row number, bound for every row: name the column otherwise", columns.loc_of(index)
            )
    if len(set(columns)) != len(columns):
        raise ArchError(f"table '{name}' names a column twice", spec.loc_of("columns"))
    raw_rows = spec.get("rows")
    if not isinstance(raw_rows, list) or not raw_rows:
        raise ArchError(f"table '{name}' needs 'rows': a list of rows, one value per column", spec.loc_of("rows"))
    rows = []
    for index, row in enumerate(raw_rows):
        row_loc = raw_rows.loc_of(index)
        if not isinstance(row, list) or len(row) != len(columns):
            raise ArchError(
                f"table '{name}' row {index} must list {len(columns)} values ({', '.join(columns)})", row_loc
            )
        rows.append(tuple(Value(cell, row.loc_of(i)) for i, cell in enumerate(row)))
    return Table(name, tuple(columns), tuple(rows), spec.loc)


def _inline_table(spec: YMapping, loc: Location) -> Table:
    """``for_each: {expand: [1, 6], C_out: [16, 24]}``: columns of equal length."""
    columns, lengths = [], set()
    for column, cells in spec.items():
        _check_ident(column, spec.key_loc(column), "'for_each' column")
        if not isinstance(cells, list) or not cells:
            raise ArchError(f"'for_each' column '{column}' must be a non-empty list of values", spec.loc_of(column))
        columns.append(column)
        lengths.add(len(cells))
    if not columns:
        raise ArchError("'for_each' needs at least one column", loc)
    if len(lengths) != 1:
        raise ArchError("'for_each' columns must all have the same number of values", loc)
    rows = tuple(tuple(Value(spec[c][i], spec[c].loc_of(i)) for c in columns) for i in range(lengths.pop()))
    return Table("for_each", tuple(columns), rows, loc)


def _override_tables(top: YMapping, base: Arch) -> dict[str, Table]:
    """An ``extends`` file may replace its base's tables (RegNet variants), keeping the columns."""
    tables = dict(base.tables)
    for name, table in _tables(top).items():
        if name not in tables:
            raise ArchError(f"'{base.name}' has no table '{name}'{did_you_mean(name, tables)}", table.loc)
        if table.columns != tables[name].columns:
            raise ArchError(
                f"table '{name}' must keep the columns of '{base.name}': {', '.join(tables[name].columns)}", table.loc
            )
        tables[name] = table
    return tables


def _block(name: str, spec: Any, loc: Location) -> Block:
    spec = _mapping(spec, f"block '{name}'", loc)
    _known(spec, _BLOCK_KEYS, f"block '{name}'")
    args: dict[str, Value | None] = {}
    raw_args = _mapping(spec.get("args"), f"block '{name}' args", spec.loc_of("args"), optional=True)
    for arg, default in raw_args.items():
        _check_ident(arg, raw_args.key_loc(arg), "block argument", _comma_hint(raw_args, arg))
        args[arg] = None if default is None else Value(default, raw_args.loc_of(arg))
    raw_inputs = spec.get("inputs", ["x"])
    shapes: dict[str, tuple[Value, ...]] = {}
    if isinstance(raw_inputs, YMapping):  # inputs: {x: [N, C, H, W]}
        if not raw_inputs:
            raise ArchError(f"block '{name}' inputs: name at least one input", spec.loc_of("inputs"))
        for tensor, dims in raw_inputs.items():
            _check_name(tensor, raw_inputs.key_loc(tensor), "input")
            shapes[tensor] = _block_shape(dims, raw_inputs.loc_of(tensor), f"block '{name}' input '{tensor}'")
        inputs = tuple(shapes)
    else:
        inputs = tuple(_names(raw_inputs, spec.loc_of("inputs"), f"block '{name}' inputs"))
    layers = _layers(spec.get("layers"), spec.loc_of("layers"), f"block '{name}' layers")
    if not layers:
        raise ArchError(f"block '{name}' has no layers", spec.loc)
    output = spec.get("output")
    if output is not None and not isinstance(output, str):
        raise ArchError(f"block '{name}': output must be a tensor name", spec.loc_of("output"))
    return Block(name, args, inputs, tuple(layers), output, _text(spec, "doc"), loc, shapes)


def _block_shape(dims: Any, loc: Location, what: str) -> tuple[Value, ...]:
    """A block input's shape: names to bind, ``*rest`` (at most one), or expressions to check."""
    shape = _shape(dims, loc, what)
    stars = [d for d in shape if isinstance(d.raw, str) and d.raw.strip().startswith("*")]
    for star in stars:
        if not _IDENT.match(star.raw.strip()[1:]):
            raise ArchError(f"{what}: '*' must be followed by a name, like *rest", star.loc)
    if len(stars) > 1:
        raise ArchError(f"{what}: at most one '*name' per shape", stars[1].loc)
    return shape


def _layers(raw: Any, loc: Location, what: str) -> list[Layer]:
    if raw is None:
        raise ArchError(f"missing {what}", loc)
    if not isinstance(raw, list):
        raise ArchError(f"{what} must be a list of layers", loc)
    return [_layer(item, raw.loc_of(i)) for i, item in enumerate(raw)]


def _layer(raw: Any, loc: Location) -> Layer:
    if isinstance(raw, str):  # shorthand: "- relu"
        return Layer(raw, None, None, (), None, 0, None, None, {}, loc)
    spec = _mapping(raw, "a layer", loc)
    kinds = [k for k in ("op", "block") if k in spec]
    if len(kinds) != 1:
        raise ArchError("a layer needs exactly one of 'op: FORMULA' or 'block: BLOCK'", spec.loc)
    target = spec[kinds[0]]
    if not isinstance(target, str) or not _IDENT.match(target):
        raise ArchError(f"'{kinds[0]}' must be a name", spec.loc_of(kinds[0]))
    name = spec.get("name")
    if name is not None:
        # a repeated layer may name its copies with one {index}: encoder_layer_{index}, block2-{index}
        plain = name.replace("{index}", "0", 1) if isinstance(name, str) else name
        if not isinstance(name, str) or not _LAYER_NAME.match(plain):
            raise ArchError(
                f"layer name {name!r} may hold letters, digits, '_', '.' and '-' (and one {{index}} in a repeat)",
                spec.loc_of("name"),
            )
        if "{index}" in name and "repeat" not in spec and "for_each" not in spec:
            raise ArchError(
                "'{index}' in a layer name numbers the copies of a 'repeat' or 'for_each'", spec.loc_of("name")
            )
    inputs: tuple[tuple[str, Location], ...] = ()
    if "in" in spec:
        raw_in = spec["in"]
        items = raw_in if isinstance(raw_in, list) else [raw_in]
        locs = [raw_in.loc_of(i) for i in range(len(items))] if isinstance(raw_in, list) else [spec.loc_of("in")]
        for item, item_loc in zip(items, locs):
            if not isinstance(item, str) or not _LAYER_NAME.match(item):
                raise ArchError("'in' names tensors: a name or a list of names", item_loc)
        inputs = tuple(zip(items, locs))
    tied = None
    if "tied" in spec:
        if not isinstance(spec["tied"], str):
            raise ArchError("'tied' names the layer whose parameters this one shares", spec.loc_of("tied"))
        tied = (spec["tied"], spec.loc_of("tied"))
    args = {}
    for key, value in spec.items():
        if key in _LAYER_KEYS:
            continue
        if not isinstance(key, str) or not _IDENT.match(key):
            raise ArchError(f"'{key}' is not a valid attribute name{_comma_hint(spec, key)}", spec.key_loc(key))
        args[key] = Value(value, spec.loc_of(key))
    for_each: str | Table | None = None
    if "for_each" in spec:
        raw_each = spec["for_each"]
        if kinds[0] != "block":
            raise ArchError(
                "'for_each' instantiates a block once per row: use it on a 'block:' layer", spec.loc_of("for_each")
            )
        if "repeat" in spec:
            raise ArchError("a layer takes 'repeat' or 'for_each', not both", spec.loc_of("for_each"))
        if isinstance(raw_each, YMapping):
            for_each = _inline_table(raw_each, spec.loc_of("for_each"))
        elif isinstance(raw_each, str) and _IDENT.match(raw_each):
            for_each = raw_each
        else:
            raise ArchError(
                "'for_each' names a table (for_each: stages) or is one ({expand: [1, 6], ...})",
                spec.loc_of("for_each"),
            )
    return Layer(
        op=target if kinds[0] == "op" else None,
        block=target if kinds[0] == "block" else None,
        name=name,
        inputs=inputs,
        repeat=Value(spec["repeat"], spec.loc_of("repeat")) if "repeat" in spec else None,
        index_from=_index_from(spec),
        when=Value(spec["when"], spec.loc_of("when")) if "when" in spec else None,
        tied=tied,
        args=args,
        loc=spec.loc,
        for_each=for_each,
        for_each_loc=spec.loc_of("for_each") if for_each is not None else None,
    )


def _index_from(spec: YMapping) -> int:
    value = spec.get("index_from", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ArchError(
            "'index_from' must be a whole number >= 0 (the first copy's index in names)", spec.loc_of("index_from")
        )
    if "index_from" in spec and "repeat" not in spec and "for_each" not in spec:
        raise ArchError("'index_from' numbers the copies of a 'repeat' or 'for_each'", spec.loc_of("index_from"))
    return value


def _check_block_references(arch: Arch) -> None:
    """Unknown blocks get a did-you-mean; a block that (indirectly) uses itself is a cycle."""

    def visit(layers: tuple[Layer, ...], stack: tuple[str, ...]) -> None:
        for layer in layers:
            if isinstance(layer.for_each, str) and layer.for_each not in arch.tables:
                raise ArchError(
                    f"unknown table '{layer.for_each}'{did_you_mean(layer.for_each, arch.tables)}",
                    layer.for_each_loc or layer.loc,
                )
            if layer.block is None:
                continue
            if layer.block not in arch.blocks:
                raise ArchError(f"unknown block '{layer.block}'{did_you_mean(layer.block, arch.blocks)}", layer.loc)
            if len(stack) >= MAX_BLOCK_DEPTH:
                raise ArchError(f"blocks nested deeper than {MAX_BLOCK_DEPTH}: {' -> '.join(stack[:3])} -> ...",
                                layer.loc)  # fmt: skip
            if layer.block in stack:
                cycle = " -> ".join([*stack[stack.index(layer.block) :], layer.block])
                raise ArchError(f"blocks form a cycle: {cycle}", layer.loc)
            visit(arch.blocks[layer.block].layers, (*stack, layer.block))

    visit(arch.layers, ())


# ---- small validators ------------------------------------------------------------------------


def _mapping(value: Any, what: str, loc: Location, optional: bool = False) -> YMapping:
    # a missing 'inputs' reads as empty, so that the caller can say what an input looks like
    return mapping_at(value, what, loc, ArchError, optional=optional or what == "inputs")


def _known(mapping: YMapping, allowed: set[str], what: str) -> None:
    check_keys(mapping, allowed, what, ArchError)


def _text(mapping: YMapping, key: str, required: bool = False) -> str:
    return text_at(mapping, key, ArchError, required)


def _texts(mapping: YMapping, key: str) -> list[str]:
    return texts_at(mapping, key, ArchError)


def _names(value: Any, loc: Location, what: str) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str) or not _LAYER_NAME.match(item):
            raise ArchError(f"{what} must be a list of names", loc)
    return list(items)


def _shape(dims: Any, loc: Location, what: str) -> tuple[Value, ...]:
    if not isinstance(dims, list) or not dims:
        raise ArchError(f"{what}: a shape is a non-empty list, like [N, 3, H, W]", loc)
    return tuple(Value(d, dims.loc_of(i)) for i, d in enumerate(dims))


def _check_name(name: Any, loc: Location, what: str) -> None:
    if not isinstance(name, str) or not _LAYER_NAME.match(name):
        raise ArchError(f"{name!r} is not a valid {what} name", loc)


def _check_ident(name: Any, loc: Location, what: str, hint: str = "") -> None:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ArchError(f"{name!r} is not a valid {what} name{hint}", loc)
    why = expr.reserved(name)
    if why:  # an argument or a column is read by expressions, where `lambda` cannot be a name
        raise ArchError(f"{why} and cannot be a {what} name", loc)


def _comma_hint(mapping: YMapping, key: Any) -> str:
    """A key like ``c // 4)`` is the tail of a value that YAML split at its comma:
    ``{C_out: max(1, c // 4)}`` reads as ``C_out: "max(1"`` and a key ``"c // 4)"``."""
    keys = list(mapping)
    at = keys.index(key) if key in keys else 0
    if at == 0 or not isinstance(key, str):
        return ""
    before = keys[at - 1]
    head = mapping[before]
    if not isinstance(head, str) or head.count("(") <= head.count(")"):
        if not re.search(r"[()+\-*/%<>=]", key):
            return ""
        return "; an unquoted comma inside a flow mapping {...} splits an expression: quote the value"
    tail = key if mapping[key] is None else f"{key}: {mapping[key]}"
    return (
        f'; a comma in an unquoted value splits it inside a flow mapping {{...}}: quote it, {before}: "{head}, {tail}"'
    )
