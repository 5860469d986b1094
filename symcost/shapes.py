"""Propagate symbolic shapes through an :class:`~symcost.arch.Arch` into a :class:`Graph`.

Each layer binds its formula's input pattern (``[N, C_in, H, W]``) to the shapes that reach it,
checks the layer's attributes and the formula's constraints, and gets its output shapes and its
costs as expressions in the architecture's variables. Blocks expand in place; a repeated block
whose input shape does not change is costed once and multiplied, so 80 identical transformer
layers cost no more to derive than one.

>>> from symcost.arch import load_text
>>> g = build(load_text('''
... name: mlp
... summary: two-layer perceptron
... variables: {N: 1, d: 784}
... inputs: {x: [N, d]}
... layers:
...   - {op: linear, name: fc1, out_features: 256}
...   - {op: relu}
...   - {op: linear, name: fc2, out_features: 10}
... ''', "mlp.yaml"))
>>> [(n.path, n.output) for n in g.nodes]
[('fc1', (N, 256)), ('relu', (N, 256)), ('fc2', (N, 10))]
>>> g.nodes[0].costs["params"]      # in the variables: 784*256 + 256 = 200,960 at the default d
256*d + 256
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import sympy

from . import expr, registry
from .arch import Arch, Block, Layer, Table, Value
from .errors import ArchError, FormulaError, Location, ShapeError, UsageError, did_you_mean
from .formula import Formula, Variadic
from .shape_rules import RULES, RuleCall
from .shape_rules import equal as equal

Shape = tuple[sympy.Expr, ...]


@dataclass(frozen=True)
class Check:
    """A condition that could not be decided symbolically; checked when values are bound.

    The message may be given as a function: it is built only when read (a failed check), since
    printing symbolic shapes (nested floors of H after ceil-mode pools) costs more than building
    the graph."""

    condition: sympy.Basic
    text: str | Callable[[], str]

    @property
    def message(self) -> str:
        return self.text() if callable(self.text) else self.text


@dataclass
class Node:
    """One primitive layer in the expanded graph, with its costs in the architecture's variables."""

    path: str  # "layer1.0.conv1"
    op: str
    formula: Formula
    loc: Location
    count: sympy.Expr  # how many identical copies this node stands for (repeats)
    inputs: tuple[Shape, ...]
    outputs: dict[str, Shape]
    costs: dict[str, sympy.Expr]  # macs, params, buffers, read, write
    elementwise: dict[str, sympy.Expr]
    checks: list[Check] = field(default_factory=list)
    tied_to: str | None = None
    copies: str = ""  # "0-79" when this node stands for several repeats
    ranges: list[tuple[str, int, sympy.Expr]] = field(default_factory=list)  # symbolic repeat labels
    gemm: dict[str, sympy.Expr] = field(default_factory=dict)  # batch, M, N of a GEMM-class layer
    peers: dict[str, sympy.Expr] = field(default_factory=dict)  # tool -> its count (cost.PEER_TOOLS)
    sources: tuple[int, ...] = ()  # producing node index of each input; -1 - i for the i-th architecture input
    values: dict[sympy.Symbol, sympy.Expr] = field(default_factory=dict, compare=False, repr=False)  # formula symbols

    def concrete_path(self, subs: Mapping[sympy.Symbol, sympy.Expr]) -> str:
        """The path with symbolic repeat ranges (``1..blocks1-1``) written as numbers (``1-2``)."""
        path = self.path
        for label, first, count in self.ranges:
            n = int(count.xreplace(subs))
            path = path.replace(label, f"{first}-{first + n - 1}" if n > 1 else f"{first}", 1)
        return path

    @property
    def output(self) -> Shape:
        return next(iter(self.outputs.values()))


@dataclass
class Graph:
    arch: Arch
    nodes: list[Node]
    outputs: dict[str, Shape]
    inputs: dict[str, tuple[tuple[sympy.Expr, Location], ...]]  # input dims, with where each was written
    producers: dict[str, int] = field(default_factory=dict)  # tensor path -> index of the node writing it
    output_sources: tuple[int, ...] = ()  # producing node index of each output tensor
    #: variable values that decided a ``when`` (``when: num_classes > 0``): the graph holds for them only
    decided_by: dict[str, tuple[sympy.Expr, Location]] = field(default_factory=dict)
    bound: dict[sympy.Symbol, sympy.Expr] = field(default_factory=dict)  # the values build() was given


@dataclass
class _Scope:
    prefix: str
    names: dict[str, sympy.Basic]  # variables and block arguments, for expressions
    tensors: dict[str, tuple[Shape, str]]  # tensor name -> (shape, producing node path)
    last: str | None
    nodes_by_name: dict[str, Node]
    used: dict[str, int] = field(default_factory=dict)
    later: dict[str, Location] = field(default_factory=dict)  # names that layers further down define
    #: numbered sequences: repeats (and for_each) whose copies are NAME.0, NAME.1, ...; a later repeat may
    #: continue one (nn.Sequential's flat numbering: features.1-3, then features.4-6), copy names unique
    sequences: dict[str, set[int]] = field(default_factory=dict)


def build(arch: Arch, values: Mapping[str, Any] | None = None, *, numeric: bool = False) -> Graph:
    """Expand blocks, propagate shapes, bind formulas: the symbolic graph of ``arch``.

    ``values`` (variable name -> value, else the defaults) decide a ``when`` that reads a variable
    (``when: num_classes > 0``); the graph then holds for those values only (``decided_by``), and
    :func:`~symcost.compile.evaluate` refuses other values of those variables.

    With ``numeric``, every variable that has a valid value is replaced by it before shapes are
    propagated: the graph of one point, for evaluating there. Shapes are then numbers, so no
    symbolic size (GoogLeNet's nested ceil-mode floors) is built, compared or printed; closed forms
    need the symbolic graph (the default)."""
    bound = _variable_values(arch, values or {})
    names: dict[str, sympy.Basic] = {v.name: v.symbol for v in arch.variables.values()}
    if numeric:
        for var in arch.variables.values():
            value = bound.get(var.symbol)
            valid = value is not None and (
                (value.is_Rational and value > 0)
                if var.kind == "ratio"
                else (value.is_Integer and value >= var.minimum)
            )
            if valid:
                names[var.name] = value  # an invalid value keeps its symbol: evaluate() says what is wrong
    tensors: dict[str, tuple[Shape, str]] = {}
    inputs: dict[str, tuple[tuple[sympy.Expr, Location], ...]] = {}
    for tensor, dims in arch.inputs.items():
        shape = tuple(_expr(d, names) for d in dims)
        for dim, value in zip(dims, shape):
            if value.is_number and value < 1:
                raise ShapeError(f"input '{tensor}' has a dim of size {value}: sizes must be >= 1", dim.loc)
        tensors[tensor] = (shape, tensor)
        inputs[tensor] = tuple((value, dim.loc) for dim, value in zip(dims, shape))
    scope = _Scope("", names, tensors, next(iter(arch.inputs)), {})
    graph = Graph(arch, [], {}, inputs)
    graph.bound = bound
    graph.producers.update({tensor: -1 - index for index, tensor in enumerate(arch.inputs)})
    _expand(arch, arch.layers, scope, graph)
    wanted = arch.outputs or ((scope.last,) if scope.last else ())
    for name in wanted:
        if name not in scope.tensors:
            raise ArchError(f"unknown output tensor '{name}'{did_you_mean(name, scope.tensors)}", arch.loc)
        graph.outputs[name] = scope.tensors[name][0]
    graph.output_sources = tuple(graph.producers.get(scope.tensors[n][1], -1) for n in graph.outputs)
    return graph


def as_number(given: Any, name: str | None = None) -> sympy.Expr:
    """A variable's value as given from Python: an int, a Fraction (a ratio variable's 11/10) or a
    sympy expression; never a float, whose rounding would make counts inexact.

    >>> from fractions import Fraction
    >>> as_number(Fraction(11, 10)), as_number(224)
    (11/10, 224)
    """
    if isinstance(given, sympy.Basic):
        return given
    if isinstance(given, Fraction):
        return sympy.Rational(given.numerator, given.denominator)
    if isinstance(given, int) and not isinstance(given, bool):
        return sympy.Integer(given)
    shown = repr(given) if len(repr(given)) <= 60 else repr(given)[:57] + "..."
    which = f"the value of '{name}'" if name else "a variable's value"
    raise UsageError(f"{which} is an int, a Fraction or an expression, not {type(given).__name__} {shown}")


def _variable_values(arch: Arch, values: Mapping[str, Any]) -> dict[sympy.Symbol, sympy.Expr]:
    """Each variable's value: the one given, else its default (variables without either stay out)."""
    subs: dict[sympy.Symbol, sympy.Expr] = {}
    for var in arch.variables.values():
        given = values.get(var.name, var.default)
        if given is None or isinstance(given, bool):
            continue
        subs[var.symbol] = as_number(given, var.name)
    for _ in range(len(subs)):  # a value may name another variable (--set H=W)
        changed = {sym: value.xreplace(subs) for sym, value in subs.items()}
        if changed == subs:
            break
        subs = changed
    return subs


def _expr(value: Value, names: Mapping[str, sympy.Basic]) -> sympy.Expr:
    raw = value.raw
    if isinstance(raw, bool):
        return sympy.Integer(int(raw))
    return expr.parse(raw, names, loc=value.loc)


def _decided(condition: sympy.Basic) -> bool | None:
    if condition is sympy.true:
        return True
    if condition is sympy.false:
        return False
    return None


def _expand(arch: Arch, layers: tuple[Layer, ...], scope: _Scope, graph: Graph) -> None:
    for position, layer in enumerate(layers):
        scope.later = {later.name: later.loc for later in layers[position:] if later.name}
        if layer.when is not None and not _when(layer.when, scope.names, graph):
            continue
        base = layer.name or layer.op or layer.block
        assert base is not None
        continues = layer.name is not None and (layer.repeat is not None or layer.for_each is not None)
        if continues and base in scope.sequences:
            name = base  # this repeat continues a numbered sequence; its copy numbers are checked below
        else:
            name = _unique(base, scope, layer.name is not None, layer.loc)
        if continues:
            _claim_numbers(layer, scope, name)
        if layer.for_each is not None:
            _for_each(arch, layer, scope, graph, name)
            continue
        if layer.repeat is None:
            path = f"{scope.prefix}{name}"
            out = _bounded(_instance(arch, layer, scope, graph, path, _inputs(layer, scope)), layer.loc)
            _register(scope, name, out)
            _register_pieces(scope, graph, name, path)
            continue
        _repeat(arch, layer, scope, graph, name)


def _when(value: Value, names: Mapping[str, sympy.Basic], graph: Graph | None = None) -> bool:
    """``when: downsample``, ``when: 1 - downsample``, ``when: stride == 1 and C_in == C_out``, or
    on a variable (``when: num_classes > 0``), decided at the values the graph is built for."""
    if isinstance(value.raw, bool):
        return value.raw
    flag = expr.parse(value.raw, names, loc=value.loc, allow_compare=True)
    verdict = _truth(flag)
    if verdict is None and graph is not None and graph.bound:
        used = {sym: graph.bound[sym] for sym in flag.free_symbols if sym in graph.bound}
        verdict = _truth(flag.xreplace(used))
        if verdict is not None:
            for sym, number in used.items():
                graph.decided_by.setdefault(sym.name, (number, value.loc))
    if verdict is None:
        raise ArchError(
            "'when' must be decidable from numbers: block arguments, literals and the variables' values "
            f"(here: {_show((flag,))[1:-1] if isinstance(flag, sympy.Expr) else flag})",
            value.loc,
        )
    return verdict


def _truth(flag: sympy.Basic) -> bool | None:
    if flag is sympy.true or flag is sympy.false:
        return flag is sympy.true
    if isinstance(flag, sympy.Expr) and flag.is_number:
        return bool(flag != 0)
    return None


#: A repeat whose copies differ (each changes the shape) is expanded one copy at a time; past this
#: many it is refused rather than grown without end (a repeat of 10**6 doubling copies).
MAX_DISTINCT_COPIES = 1000


def _repeat(arch: Arch, layer: Layer, scope: _Scope, graph: Graph, name: str) -> None:
    """Chain ``repeat`` copies; once a copy keeps its input's shape, the rest are identical to it,
    so that copy is costed once and multiplied (an 80-layer decoder costs one layer's work)."""
    assert layer.repeat is not None
    count = _expr(layer.repeat, scope.names)
    if count.is_number and (not count.is_Integer or count < 0):
        raise ArchError(f"repeat must be a whole number >= 0, got {count}", layer.repeat.loc)
    # the first input chains through the copies; the others (a decoder's encoder output) are shared
    inputs = _inputs(layer, scope)
    total = int(count) if count.is_number else None
    if total == 0:  # a one-block stage's "repeat: blocks - 1": no copies, the input passes through
        start = len(graph.nodes)
        path = _copy_path(scope, name, layer.index_from)
        _instance(arch, layer, scope, graph, path, inputs)  # its nodes show "x0" in the table
        for node in graph.nodes[start:]:
            node.count = sympy.Integer(0)
        graph.producers[f"{scope.prefix}{name}"] = graph.producers.get(inputs[0][1], -1)
        scope.tensors[name] = (inputs[0][0], inputs[0][1])
        scope.last = name
        return
    index = 0
    while True:
        start = len(graph.nodes)
        shape = inputs[0][0]
        path = _copy_path(scope, name, index + layer.index_from)
        out = _bounded(_instance(arch, layer, scope, graph, path, inputs), layer.loc)
        keeps_shape = len(out) == len(shape) and all(equal(a, b) is True for a, b in zip(out, shape))
        if total is None and not keeps_shape:
            _stepped_repeat(arch, layer, scope, graph, name, count, inputs, start, out)
            return
        if keeps_shape or index + 1 == total:
            copies = count - index
            if total is None:
                for node in graph.nodes[start:]:
                    node.checks.append(
                        Check(sympy.Ge(copies, 0), f"the repeat count {_show((count,))[1:-1]} must be >= 0")
                    )
            if copies != 1:
                first, last = index + layer.index_from, count - 1 + layer.index_from
                label = f"{first}-{last}" if total is not None else f"{first}..{_show((last,))[1:-1]}".replace(" ", "")
                for node in graph.nodes[start:]:
                    node.count = node.count * copies
                    node.copies = label
                    node.path = node.path.replace(path, _copy_path(scope, name, label), 1)
                    if total is None:
                        node.ranges.append((label, first, copies))
            graph.producers[f"{scope.prefix}{name}"] = graph.producers.get(path, -1)
            _register(scope, name, out)
            return
        inputs = ((out, path), *inputs[1:])
        index += 1
        if index >= MAX_DISTINCT_COPIES:
            raise ArchError(
                f"repeat: the copies keep changing the shape (copy {index} too); at most "
                f"{MAX_DISTINCT_COPIES:,} copies that differ are expanded one by one",
                layer.repeat.loc,
            )


def _stepped_repeat(
    arch: Arch,
    layer: Layer,
    scope: _Scope,
    graph: Graph,
    name: str,
    count: sympy.Expr,
    inputs: tuple[tuple[Shape, str], ...],
    start: int,
    first_out: Shape,
) -> None:
    """A symbolic number of copies that each grow the shape by the same step (DenseNet's dense
    layers: every copy concatenates growth_rate more channels). One generic copy ``i`` is built
    on the input ``S0 + i*step``; its output must be ``S0 + (i + 1)*step``; each node's costs are
    summed over ``i = 0 .. count - 1`` in closed form, and the output is ``S0 + count*step``."""
    assert layer.repeat is not None
    shape = inputs[0][0]
    refused = ArchError(
        f"the repeat count must be a number: copy 0 maps {_show(shape)} to {_show(first_out)}, and a count "
        "that is not a number needs copies that keep the shape or grow it by the same step each",
        layer.repeat.loc,
    )
    # undo the trial copy
    del graph.nodes[start:]
    for key in [k for k, v in graph.producers.items() if v >= start]:
        del graph.producers[key]
    if len(first_out) != len(shape):
        raise refused
    step = tuple(sympy.expand(b - a) for a, b in zip(shape, first_out))
    i = sympy.Symbol(
        f"i_{name}".replace(".", "_").replace("-", "_").replace("{index}", ""), integer=True, nonnegative=True
    )
    if any(i in d.free_symbols for d in step):  # pragma: no cover - the step comes from i-free shapes
        raise refused
    generic = tuple(a + i * d for a, d in zip(shape, step))
    label = f"{layer.index_from}..{_show((count - 1 + layer.index_from,))[1:-1]}".replace(" ", "")
    path = _copy_path(scope, name, label)
    for key in [k for k in scope.nodes_by_name if k.startswith(_copy_path(scope, name, "").rstrip("."))]:
        del scope.nodes_by_name[key]
    out = _instance(arch, layer, scope, graph, path, ((generic, inputs[0][1]), *inputs[1:]))
    expected = tuple(a + (i + 1) * d for a, d in zip(shape, step))
    if len(out) != len(expected) or not all(equal(a, b) is True for a, b in zip(out, expected)):
        raise refused
    last = {i: count - 1}

    def total(value: sympy.Expr) -> sympy.Expr:
        if i not in value.free_symbols:
            return value * count
        summed = sympy.summation(sympy.expand(value), (i, 0, count - 1))
        if summed.has(sympy.Sum):
            raise refused
        return sympy.factor_terms(sympy.expand(summed))

    for node in graph.nodes[start:]:
        node.costs = {k: total(v) for k, v in node.costs.items()}
        node.elementwise = {k: total(v) for k, v in node.elementwise.items()}
        node.peers = {k: total(v) for k, v in node.peers.items()}
        node.gemm = {}  # one GEMM shape per copy: no single tile count stands for all of them
        node.checks = [Check(c.condition.xreplace({i: end}), c.text) for c in node.checks for end in (0, count - 1)]
        node.checks.append(Check(sympy.Ge(count, 0), f"the repeat count {_show((count,))[1:-1]} must be >= 0"))
        node.inputs = tuple(tuple(d.xreplace(last) for d in s) for s in node.inputs)
        node.outputs = {k: tuple(d.xreplace(last) for d in s) for k, s in node.outputs.items()}
        node.copies = label
        node.ranges.append((label, layer.index_from, count))
    final = tuple(sympy.expand(a + count * d) for a, d in zip(shape, step))
    graph.producers[f"{scope.prefix}{name}"] = graph.producers.get(path, -1)
    _register(scope, name, final)


def _for_each(arch: Arch, layer: Layer, scope: _Scope, graph: Graph, name: str) -> None:
    """One instance of the layer's block per table row, chained like ``repeat``: the row's cells
    are the block's arguments (and ``index`` the row number), named ``NAME.0``, ``NAME.1``, ..."""
    table = layer.for_each if isinstance(layer.for_each, Table) else arch.tables[layer.for_each]  # type: ignore[index]
    inputs = _inputs(layer, scope)
    path = ""
    for row_index, row in enumerate(table.rows):
        row_names = dict(scope.names)
        row_args = dict(layer.args)
        for column, cell in zip(table.columns, row):
            row_names[column] = _expr(cell, scope.names)
            if column in layer.args:
                raise ArchError(
                    f"'{column}' is set both by the layer and by the table's column", layer.args[column].loc
                )
            row_args[column] = Value(column, cell.loc)  # the argument reads the row's value
        row_names["index"] = sympy.Integer(row_index)
        row_scope = dataclasses.replace(scope, names=row_names)
        row_layer = dataclasses.replace(layer, args=row_args)
        path = _copy_path(scope, name, row_index + layer.index_from)
        out = _instance(arch, row_layer, row_scope, graph, path, inputs)
        inputs = ((out, path), *inputs[1:])
    graph.producers[f"{scope.prefix}{name}"] = graph.producers.get(path, -1)
    _register(scope, name, inputs[0][0])


def _copy_path(scope: _Scope, name: str, label: object) -> str:
    """A copy's path: ``NAME.3`` by default, or the name with ``{index}`` filled in
    (``encoder_layer_{index}`` gives torchvision ViT's ``encoder_layer_3``; ``block2-{index}`` RegNet's)."""
    if "{index}" in name:
        return f"{scope.prefix}{name.replace('{index}', str(label))}"
    return f"{scope.prefix}{name}.{label}"


def _bounded(shape: Shape, loc: Location) -> Shape:
    """``shape``, or a located error when a dim has outgrown :func:`symcost.expr.check_size`'s bounds
    (copies that square a size grow it past any memory within a few dozen layers)."""
    for dim in shape:
        if isinstance(dim, sympy.Basic):
            expr.check_size(dim, loc, "a tensor size")
    return shape


def _register(scope: _Scope, name: str, shape: Shape) -> None:
    scope.tensors[name] = (shape, f"{scope.prefix}{name}")
    scope.last = name


def _register_pieces(scope: _Scope, graph: Graph, name: str, path: str) -> None:
    """A layer with several outputs (split, chunk, unbind) names each: ``qkv.0``, ``qkv.1``, ...;
    ``qkv`` alone is the first, as for a one-output layer."""
    node = scope.nodes_by_name.get(path)
    if node is None or len(node.outputs) < 2:
        return
    for key, shape in node.outputs.items():
        piece = f"{name}.{key}"
        if piece in scope.tensors:
            raise ArchError(f"the name '{piece}' (a piece of '{name}') is already used in this scope", node.loc)
        scope.tensors[piece] = (shape, f"{path}.{key}")
        graph.producers[f"{path}.{key}"] = graph.producers[path]
    scope.last = name


def _claim_numbers(layer: Layer, scope: _Scope, name: str) -> None:
    """The copy numbers a repeat or for_each layer will use, so that two layers continuing one
    sequence (``features.1-3`` then ``features.4-6``) cannot give two copies the same name."""
    if layer.for_each is not None:
        count: int | None = None  # rows are counted where the table is expanded
    else:
        assert layer.repeat is not None
        value = _expr(layer.repeat, scope.names)
        count = int(value) if value.is_Integer and value >= 0 else None
    taken = scope.sequences.setdefault(name, set())
    first = layer.index_from
    if count is None:
        numbers = {first}
    else:
        numbers = set(range(first, first + max(count, 1)))
    clash = sorted(numbers & taken)
    if clash:
        raise ArchError(
            f"copy '{name}.{clash[0]}' is already defined: start this repeat's index_from after it", layer.loc
        )
    taken |= numbers


def _unique(base: str, scope: _Scope, explicit: bool, loc: Location) -> str:
    if explicit:
        if base in scope.tensors:
            raise ArchError(f"the name '{base}' is already used in this scope", loc)
        return base
    used = scope.used.get(base, 0)
    scope.used[base] = used + 1
    name = base if used == 0 else f"{base}_{used + 1}"
    while name in scope.tensors:
        used += 1
        name = f"{base}_{used + 1}"
    return name


def _inputs(layer: Layer, scope: _Scope) -> tuple[tuple[Shape, str], ...]:
    if not layer.inputs:
        if scope.last is None:
            raise ArchError("this layer has no input: name one with 'in:'", layer.loc)
        return (scope.tensors[scope.last],)
    found = []
    for tensor, loc in layer.inputs:
        if tensor not in scope.tensors and tensor == layer.name:
            raise ArchError(f"layer '{tensor}' cannot take its own output as an input", loc)
        if tensor not in scope.tensors and tensor in scope.later:
            raise ArchError(
                f"'{tensor}' is defined later (at line {scope.later[tensor].line}): "
                "a layer may only use tensors defined before it",
                loc,
            )
        if tensor not in scope.tensors:
            raise ArchError(f"unknown tensor '{tensor}'{did_you_mean(tensor, scope.tensors)}", loc)
        found.append(scope.tensors[tensor])
    return tuple(found)


def _show(shape: Shape) -> str:
    from .printer import format_shape

    return format_shape(shape)


def _instance(
    arch: Arch,
    layer: Layer,
    scope: _Scope,
    graph: Graph,
    path: str,
    inputs: tuple[tuple[Shape, str], ...],
) -> Shape:
    if layer.block is not None:
        return _block_instance(arch, layer, scope, graph, path, inputs)
    try:
        formula = registry.get(layer.op)  # type: ignore[arg-type]
    except FormulaError as exc:
        if "unknown formula" in exc.message:
            raise ArchError(exc.message, layer.loc) from None
        raise
    node = bind_formula(formula, layer, scope, path, inputs)
    node.sources = tuple(graph.producers.get(producer, -1) for _, producer in inputs)
    graph.producers[path] = len(graph.nodes)
    graph.nodes.append(node)
    scope.nodes_by_name[path] = node
    return node.output


def _block_instance(
    arch: Arch,
    layer: Layer,
    scope: _Scope,
    graph: Graph,
    path: str,
    inputs: tuple[tuple[Shape, str], ...],
) -> Shape:
    block = arch.blocks[layer.block]  # type: ignore[index]
    names = dict(scope.names)
    for key, value in layer.args.items():
        if key not in block.args:
            raise ArchError(f"block '{block.name}' has no argument '{key}'{did_you_mean(key, block.args)}", value.loc)
        names[key] = _expr(value, scope.names)
    if len(inputs) != len(block.inputs):
        raise ArchError(
            f"block '{block.name}' takes {len(block.inputs)} input(s) ({', '.join(block.inputs)}), got {len(inputs)}",
            layer.loc,
        )
    checks, bound = _bind_input_shapes(block, layer, inputs, names)
    for key, default in block.args.items():
        if key in layer.args or key in bound:
            continue  # given, or bound by an input's shape (inputs: {x: [N, C, H, W]} and args: {C: null})
        if default is None:
            raise ArchError(f"block '{block.name}' needs argument '{key}'", layer.loc)
        names[key] = _expr(default, names)
    tensors = {inner: value for inner, value in zip(block.inputs, inputs)}
    inner = _Scope(f"{path}.", names, tensors, block.inputs[0], scope.nodes_by_name)
    start = len(graph.nodes)
    _expand(arch, block.layers, inner, graph)
    if checks and len(graph.nodes) > start:
        graph.nodes[start].checks.extend(checks)
    output = block.output or inner.last
    if output not in inner.tensors:
        raise ArchError(f"block '{block.name}': unknown output '{output}'", block.loc)
    graph.producers[path] = graph.producers.get(inner.tensors[output][1], -1)
    return inner.tensors[output][0]


def _is_name(text: str) -> bool:
    return text.isidentifier() and text.isascii() and not text.startswith("_") and text not in expr.FUNCTIONS


def _bind_input_shapes(
    block: Block, layer: Layer, inputs: tuple[tuple[Shape, str], ...], names: dict[str, sympy.Basic]
) -> tuple[list[Check], set[str]]:
    """``inputs: {x: [N, C, H, W]}``: bind each name to the dim that reaches the block (a name
    bound before, or an argument the layer gives, is checked instead), ``*rest`` to the product
    of the dims it covers; check expressions. Undecided checks wait for values."""
    checks: list[Check] = []
    given = set(layer.args)
    bound: set[str] = set()
    for (tensor, pattern), (shape, _producer) in zip(((t, block.shapes.get(t)) for t in block.inputs), inputs):
        if pattern is None:
            continue
        where = f"block '{block.name}' input '{tensor}'"
        star = next(
            (i for i, d in enumerate(pattern) if isinstance(d.raw, str) and d.raw.strip().startswith("*")), None
        )
        written = "[" + ", ".join(str(d.raw) for d in pattern) + "]"
        fixed = len(pattern) - (star is not None)
        if (star is None and len(shape) != len(pattern)) or len(shape) < fixed:
            rank = f"{len(pattern)}-D" if star is None else f"at least {fixed}-D"
            raise ShapeError(f"{where} must be {rank} {written}, got {_show(shape)} ({len(shape)}-D)", layer.loc)
        if star is None:
            pairs = list(zip(pattern, shape))
        else:
            tail = len(pattern) - star - 1
            middle = shape[star : len(shape) - tail]
            rest = Value(pattern[star].raw.strip()[1:], pattern[star].loc)
            pairs = [
                *zip(pattern[:star], shape[:star]),
                (rest, sympy.Mul(*middle)),
                *zip(pattern[star + 1 :], shape[len(shape) - tail :]),
            ]
        for position, (dim, actual) in enumerate(pairs):
            text = dim.raw.strip() if isinstance(dim.raw, str) else None
            if text is not None and _is_name(text) and text not in given and text not in bound:
                names[text] = actual
                bound.add(text)
                continue
            expected = _expr(dim, names)
            verdict = equal(expected, actual)
            label = (
                f"dim {position}"
                if star is None or position < star
                else ("*" + text if position == star else f"dim {position - len(pairs)}")
            )
            if verdict is False:
                raise ShapeError(
                    f"{where} {label} must be {_show((expected,))[1:-1]} (from {written}), "
                    f"got {_show((actual,))[1:-1]}: the input is {_show(shape)}",
                    layer.loc,
                )
            if verdict is None:
                checks.append(Check(sympy.Eq(expected, actual, evaluate=False), f"{where} {label} (from {written})"))
    return checks, bound


def bind_formula(
    formula: Formula,
    layer: Layer,
    scope: _Scope,
    path: str,
    inputs: tuple[tuple[Shape, str], ...],
) -> Node:
    """Match the formula's input patterns to actual shapes, bind attributes, and cost the node."""
    where = f"layer '{path}' ({formula.name})"
    if formula.shape_rule is not None:
        return _bind_rule(formula, layer, scope, path, inputs, where)
    patterns = list(formula.inputs.items())
    if len(inputs) != len(patterns):
        names = ", ".join(name for name, _ in patterns)
        raise ShapeError(f"{where} takes {len(patterns)} input(s) ({names}), got {len(inputs)}", layer.loc)
    mapping: dict[sympy.Symbol, sympy.Expr] = {}
    variadic_dims: dict[sympy.Symbol, tuple[str, Shape]] = {}  # symbol -> (first input, its dims)
    checks: list[Check] = []

    def bind(symbol: sympy.Symbol, value: sympy.Expr, what: str) -> None:
        if symbol not in mapping:
            mapping[symbol] = value
            return
        verdict = equal(mapping[symbol], value)
        if verdict is False:
            raise ShapeError(
                f"{where}: {what} must equal {formula.symbol_doc(symbol.name) or symbol.name} "
                f"{_show((mapping[symbol],))[1:-1]}, got {_show((value,))[1:-1]}",
                layer.loc,
            )
        if verdict is None:
            checks.append(Check(sympy.Eq(mapping[symbol], value, evaluate=False), f"{what} must equal {symbol.name}"))

    for (in_name, pattern), (shape, _producer) in zip(patterns, inputs):
        variadic_at = next((i for i, d in enumerate(pattern) if isinstance(d, Variadic)), None)
        fixed = len(pattern) - (variadic_at is not None)
        if (variadic_at is None and len(shape) != len(pattern)) or len(shape) < fixed:
            raise ShapeError(
                f"{where}: input '{in_name}' must be {len(pattern)}-D {_show(pattern)}, got {_show(shape)}", layer.loc
            )
        if variadic_at is None:
            pairs = list(zip(pattern, shape))
        else:
            tail = len(pattern) - variadic_at - 1
            middle = shape[variadic_at : len(shape) - tail]
            var = pattern[variadic_at]
            product = sympy.Mul(*middle) if middle else sympy.Integer(1)
            if var.symbol in variadic_dims:
                # Two inputs with the same variadic part (add's a and b: "*numel") have the same dims,
                # not only as many elements: [1, 64, 16, 16] + [1, 16, 32, 32] is an error, as in torch.
                first, first_dims = variadic_dims[var.symbol]

                def mismatch(
                    in_name: str = in_name, middle: Shape = middle, first: str = first, first_dims: Shape = first_dims
                ) -> ShapeError:
                    # built only on failure: printing symbolic shapes is slow on deep models
                    return ShapeError(
                        f"{where}: input '{in_name}' {_show(middle)} must have the shape of input '{first}' "
                        f"{_show(first_dims)}",
                        layer.loc,
                    )

                if len(first_dims) != len(middle):
                    raise mismatch()
                for index, (a, b) in enumerate(zip(first_dims, middle)):
                    verdict = equal(a, b)
                    if verdict is False:
                        raise mismatch()
                    if verdict is None:
                        checks.append(
                            Check(
                                sympy.Eq(a, b, evaluate=False),
                                f"input '{in_name}' dim {index} must equal input '{first}''s",
                            )
                        )
            variadic_dims.setdefault(var.symbol, (in_name, middle))
            bind(var.symbol, product, f"input '{in_name}' leading dims")
            pairs = list(zip(pattern[:variadic_at], shape[:variadic_at])) + list(
                zip(pattern[variadic_at + 1 :], shape[len(shape) - tail :])
            )
        for index, (dim_pattern, dim) in enumerate(pairs):
            if isinstance(dim_pattern, sympy.Symbol) and dim_pattern.name in formula.shape_symbols:
                bind(dim_pattern, dim, f"input '{in_name}' dim {index}")
            else:
                expected = formula.expand(dim_pattern).xreplace(mapping)
                verdict = equal(expected, dim)
                if verdict is False:
                    raise ShapeError(
                        f"{where}: input '{in_name}' dim {index} must be {_show((expected,))[1:-1]}, "
                        f"got {_show((dim,))[1:-1]}",
                        layer.loc,
                    )
                if verdict is None:
                    # undecided: keep the equation as written (equal() already tried to decide it)
                    checks.append(
                        Check(sympy.Eq(expected, dim, evaluate=False), f"input '{in_name}' dim {index} mismatch")
                    )

    # attributes and expected shape symbols written on the layer
    stated = {s.arg: s for s in formula.shape_symbols.values() if s.arg}
    for arg, shape_symbol in stated.items():
        if arg not in layer.args and shape_symbol.name not in layer.args:
            raise ArchError(
                f"{where} needs '{arg}' ({shape_symbol.doc}), as torch requires it: "
                f"the input {_show(inputs[0][0])} alone does not say which dims it means",
                layer.loc,
            )
    given: dict[str, Any] = {}  # attributes as written, for the one binder (Formula.normalize_values)
    for key, value in layer.args.items():
        if key in formula.shape_symbols or key in stated:
            shape_symbol = formula.shape_symbols[key] if key in formula.shape_symbols else stated[key]
            bind(shape_symbol.symbol, _expr(value, scope.names), f"the layer's {key}")
            continue
        attribute = formula.attributes.get(key)
        if attribute is None and not any(key in a.symbol_names for a in formula.attributes.values()):
            known = [*formula.attributes, *formula.shape_symbols]
            raise ArchError(f"{where} has no attribute '{key}'{did_you_mean(key, known)}", value.loc)
        given[key] = _attribute_input(value, scope)
    try:
        bound = formula.normalize_values(given, partial=True, defaults=True, prefix=f"{where}: ")
    except FormulaError as exc:
        for key, value in given.items():  # point at the attribute at fault: check each alone, once it failed
            try:
                formula.normalize_values({key: value}, partial=True, defaults=False, prefix=f"{where}: ")
            except FormulaError as alone:
                raise ArchError(alone.message, layer.args[key].loc) from None
        raise ArchError(exc.message, layer.loc) from None
    for attribute in formula.attributes.values():
        missing = [n for n in attribute.symbol_names if n not in bound]
        if missing:
            raise ArchError(f"{where} needs attribute '{attribute.name}' ({attribute.doc})", layer.loc)
    mapping.update({formula.symbols[n]: v for n, v in bound.items() if n not in formula.shape_symbols})
    for name, symbol in formula.symbols.items():
        if symbol not in mapping:  # pragma: no cover - every symbol is an input dim or an attribute
            raise ArchError(f"{where}: nothing binds '{name}'", layer.loc)

    for constraint, check in zip(formula.constraints, formula.constraint_checks):
        condition = check.xreplace(mapping)
        verdict = _decided(condition)
        if verdict is False:
            raise ShapeError(f"{where}: {constraint.message}", layer.loc)
        if verdict is None:
            checks.append(Check(condition, constraint.message))

    outputs: dict[str, Shape] = {}
    for out_name, pattern in formula.outputs.items():
        dims: list[sympy.Expr] = []
        for dim in pattern:
            if isinstance(dim, Variadic):
                dims.extend(variadic_dims[dim.symbol][1] if dim.symbol in variadic_dims else (mapping[dim.symbol],))
            else:
                dims.append(dim.xreplace(mapping))
        for index, dim in enumerate(dims):
            if dim.is_number and dim < 1:
                raise ShapeError(
                    f"{where}: output '{out_name}' would have size {dim} in dim {index} "
                    "(is the kernel larger than the padded input?)",
                    layer.loc,
                )
            if not dim.is_number:
                checks.append(Check(dim >= 1, f"output '{out_name}' dim {index} must be at least 1"))
        outputs[out_name] = tuple(dims)

    return _node(formula, layer, scope, path, inputs, outputs, mapping, checks)


def _bind_rule(
    formula: Formula,
    layer: Layer,
    scope: _Scope,
    path: str,
    inputs: tuple[tuple[Shape, str], ...],
    where: str,
) -> Node:
    """A shape op or a broadcasting op: its rule (``symcost.shape_rules``) gives the output shapes
    and the values of the formula's symbols, from the inputs' shapes and the layer's arguments."""
    args: dict[str, Any] = {}
    for key, value in layer.args.items():
        if key not in formula.rule_args:
            raise ArchError(f"{where} has no argument '{key}'{did_you_mean(key, formula.rule_args)}", value.loc)
        args[key] = value.raw
    for name, spec in formula.rule_args.items():
        if args.get(name) is None:
            args[name] = spec.default
    # the tensors as the layer names them (`in: [bn2, x]`), else as their producers are called
    written = [name for name, _ in layer.inputs]
    names = tuple(written) if len(written) == len(inputs) else tuple(p.rsplit(".", 1)[-1] for _, p in inputs)
    call = RuleCall(where, layer.loc, tuple(shape for shape, _ in inputs), names, args, scope.names)
    result = RULES[formula.shape_rule](call)  # type: ignore[index]
    mapping = {
        formula.symbols[k]: sympy.Integer(v) if isinstance(v, int) else v
        for k, v in result.symbols.items()
        if k in formula.symbols
    }
    checks = [Check(condition, message) for condition, message in result.checks]
    outputs: dict[str, Shape] = {}
    for out_name, dims in result.outputs.items():
        for index, dim in enumerate(dims):
            if dim.is_number and dim < 1:
                raise ShapeError(f"{where}: output '{out_name}' would have size {dim} in dim {index}", layer.loc)
        outputs[out_name] = tuple(dims)
    node = _node(formula, layer, scope, path, inputs, outputs, mapping, checks)
    unbound = set().union(*(v.free_symbols for v in node.costs.values())) & set(formula.symbols.values())
    if unbound:  # pragma: no cover - a rule binds every symbol its formula's costs use
        raise ArchError(f"{where}: the rule left {sorted(map(str, unbound))} unbound", layer.loc)
    return node


def _node(
    formula: Formula,
    layer: Layer,
    scope: _Scope,
    path: str,
    inputs: tuple[tuple[Shape, str], ...],
    outputs: dict[str, Shape],
    mapping: dict[sympy.Symbol, sympy.Expr],
    checks: list[Check],
) -> Node:
    at = expr.Substitution(mapping)  # the costs share their output sizes: substitute each once
    costs = {key: at(value) for key, value in formula.costs.items()}
    elementwise = {key: at(value) for key, value in formula.elementwise.items()}
    gemm = {key: at(value) for key, value in formula.gemm.items()}
    peers = {key: at(value) for key, value in formula.peers.items()}
    node = Node(
        path,
        formula.name,
        formula,
        layer.loc,
        sympy.Integer(1),
        tuple(s for s, _ in inputs),
        outputs,
        costs,
        elementwise,
        checks,
        gemm=gemm,
        peers=peers,
        values=dict(mapping),  # what the layer binds its formula's symbols to (symcost measure builds torch ops)
    )
    if layer.tied is not None:
        _tie(node, layer, scope)
    return node


def _attribute_input(value: Value, scope: _Scope) -> Any:
    """A layer attribute as written, for :meth:`Formula.normalize_values`: a YAML bool stays a bool
    (it is checked against the attribute's type there), an expression becomes sympy, a per-axis list
    a list of them."""
    raw = value.raw
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, list):
        return [
            item
            if isinstance(item, bool)
            else _expr(Value(item, raw.loc_of(i) if hasattr(raw, "loc_of") else value.loc), scope.names)
            for i, item in enumerate(raw)
        ]
    return _expr(value, scope.names)


def _tie(node: Node, layer: Layer, scope: _Scope) -> None:
    """Parameters shared with an earlier layer are counted once (GPT-2's lm_head and wte)."""
    target_name, loc = layer.tied  # type: ignore[misc]
    candidates = [target_name, f"{scope.prefix}{target_name}"]
    target = next((scope.nodes_by_name[c] for c in candidates if c in scope.nodes_by_name), None)
    if target is None:
        raise ArchError(
            f"'tied' names an unknown layer '{target_name}'{did_you_mean(target_name, scope.nodes_by_name)}", loc
        )
    if equal(node.costs["params"], target.costs["params"]) is False:
        raise ArchError(
            f"layer '{node.path}' is tied to '{target.path}' but their parameter counts differ: "
            f"{_show((node.costs['params'],))[1:-1]} vs {_show((target.costs['params'],))[1:-1]}",
            loc,
        )
    node.costs["params"] = sympy.Integer(0)
    node.tied_to = target.path
