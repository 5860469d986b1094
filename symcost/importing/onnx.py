"""An ONNX file as an architecture: the importer behind ``symcost import onnx``.

Each ONNX node that computes on activations becomes one layer (a few become two or three: a MatMul
on a batch of matrices by a matrix is a reshape, a matmul and a reshape), named after the node,
with the catalog's formula for it. The graph inputs' ``dim_param`` names become the variables
(unnamed dynamic dims get ``<input>_dim<i>``), initializers become parameters (a shared one counted
once, with ``tied:``), and the small integer tensors an exporter computes from shapes (``Shape`` →
``Gather`` → ``Concat`` → ``Reshape``) are followed symbolically, so a reshape to ``[N, -1]`` stays a
closed form in ``N``. Constants that are not weights (reshape targets, scalars, pads) are arguments,
never parameters.

The ``onnx`` package is needed only here (``pip install "symcost[onnx]"``); only the file is read,
never its external data.

>>> from onnx import TensorProto, helper, numpy_helper
>>> import numpy as np
>>> w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "conv.weight")
>>> g = helper.make_graph(
...     [helper.make_node("Conv", ["x", "conv.weight"], ["y"], name="conv", pads=[1, 1, 1, 1]),
...      helper.make_node("Relu", ["y"], ["z"], name="relu")],
...     "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "H", "W"])],
...     [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [w])
>>> print(to_yaml(helper.make_model(g), "tiny.onnx").split("layers:")[1], end="")
<BLANKLINE>
  - {name: conv, op: conv2d, in: x, C_out: 8, kernel: 3, padding: 1, bias: false}
  - {name: relu, op: relu, in: conv}
outputs: [relu]
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy

from ..errors import Location, SymcostError
from ..printer import format_expr
from ..yamlwrite import Lines, scalar, text

#: The largest file read: protobuf's own limit for one message (larger models keep external data).
MAX_BYTES = 2**31 - 1

#: Names the expression language reserves: a dim_param called ``floor`` becomes ``floor_``.
_RESERVED = {"floor", "ceil", "abs", "min", "max", "gcd", "round", "int", "ceil_div", "make_divisible",
             "experts_read", "and", "or", "not", "true", "false"}  # fmt: skip

#: An end index at least this large means "to the end" (exporters write INT64_MAX or INT32_MAX).
_TO_END = 2**31 - 1


class OnnxImportError(SymcostError):
    """An ONNX file symcost cannot read, or a node it cannot translate."""


# --- tensors while translating ------------------------------------------------------------------


@dataclass
class Act:
    """An activation: the output of a layer (or a graph input), with its symbolic shape."""

    name: str
    shape: tuple[sympy.Expr, ...]


@dataclass
class Const:
    """A tensor known before run time: an initializer, a Constant, or a value computed from shapes.

    ``values`` is a numpy object array (of ints, floats or sympy expressions) when known;
    ``init`` names the initializer it is (a weight), ``kind`` is param, buffer or constant."""

    shape: tuple[Any, ...]
    values: Any = None
    init: str | None = None
    kind: str = "constant"
    is_int: bool = False

    @property
    def numel(self) -> Any:
        return _prod(self.shape)


def _prod(items: Any) -> Any:
    out: Any = sympy.Integer(1)
    for item in items:
        out = out * item
    return out


def _int(value: Any) -> Any:
    """A Python int where the value is a whole number, else the sympy expression (or the float)."""
    if isinstance(value, sympy.Basic):
        return int(value) if value.is_Integer else value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    return int(value)


def _show(value: Any) -> Any:
    """A dim or an argument as the YAML writer takes it: an int, or an expression as text."""
    if isinstance(value, (list, tuple)):
        return [_show(v) for v in value]
    if isinstance(value, (bool, int, float, str)):
        return value
    value = sympy.simplify(value) if not value.is_Integer else value
    return int(value) if value.is_Integer else format_expr(value)


def _axes(values: list[int]) -> Any:
    """One number when every axis agrees (``kernel: 3``), else the list (``kernel: [3, 5]``)."""
    return values[0] if len(set(values)) == 1 else list(values)


# --- reading the file ---------------------------------------------------------------------------


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise OnnxImportError('importing ONNX files needs the onnx package: pip install "symcost[onnx]"') from None
    return onnx


def read_model(path: str | os.PathLike[str]) -> Any:
    """The ModelProto of a local ``.onnx`` file; refuses anything but a regular file of an ONNX model
    of at most :data:`MAX_BYTES`, and models whose weights live in external data files."""
    onnx = _onnx()
    path = Path(path)
    loc = Location(str(path))
    from ..files import read_limited

    try:  # a regular file only (never a FIFO or a device), read to its limit and no further
        raw = read_limited(path, MAX_BYTES, what="file")
    except ValueError as exc:
        message = str(exc)
        if "larger than" in message:
            message += " (larger models keep external data, which symcost does not read)"
        raise OnnxImportError(message, loc) from None
    except IsADirectoryError:
        raise OnnxImportError("not a regular file but a directory: an ONNX model is a file", loc) from None
    except OSError as exc:
        raise OnnxImportError(f"cannot read the model: {exc.strerror}", loc) from None
    return parse_model(raw, str(path), onnx)


def parse_model(raw: bytes, shown: str, onnx: Any = None) -> Any:
    onnx = onnx or _onnx()
    loc = Location(shown)
    try:
        model = onnx.ModelProto.FromString(raw)
    except Exception:  # noqa: BLE001 - protobuf raises DecodeError and others on garbage
        raise OnnxImportError("not an ONNX model (the file does not parse as one)", loc) from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.node:
        raise OnnxImportError("not an ONNX model (no ir_version or no graph nodes)", loc)
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise OnnxImportError(
            f"{len(external)} initializers keep their data in external files ({', '.join(external[:3])}"
            f"{', ...' if len(external) > 3 else ''}): symcost reads only the .onnx file itself",
            loc,
        )
    return model


# --- the translation ----------------------------------------------------------------------------

_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSigmoid": "hardsigmoid",
                "HardSwish": "hardswish", "LeakyRelu": "leaky_relu", "Elu": "elu", "Selu": "selu", "Celu": "celu",
                "Softplus": "softplus", "Softsign": "softsign", "Mish": "mish", "Exp": "exp"}  # fmt: skip
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}
_REDUCE = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "amax", "ReduceMin": "amin"}
_ALIAS = ("Identity", "Cast", "CastLike")
#: Ops that symcost follows only on values known before run time (shapes, constants).
#: Ops whose output has the broadcast shape of their inputs: an unknown one keeps that shape.
_ELEMENTWISE = ("Sqrt", "Neg", "Abs", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan",
                "Sinh", "Cosh", "Erf", "Log", "Reciprocal", "Not", "IsNaN", "IsInf", "Pow", "Where", "Equal", "Less",
                "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Min", "Max", "Mod", "BitShift",
                "ThresholdedRelu", "Shrink")  # fmt: skip
_STATIC_ONLY = ("Shape", "Size", "Constant", "ConstantOfShape", "Range", "Equal", "Where", "Not", "Less",
                "Greater", "Floor", "Ceil", "Sqrt", "Neg", "Abs", "Min", "Max", "Pow")  # fmt: skip


class _Translator:
    def __init__(self, model: Any, source: str, values: dict[str, int] | None = None,
                 allow_unknown: bool = False) -> None:  # fmt: skip
        from onnx import numpy_helper

        self.allow_unknown = allow_unknown
        self.unknown: dict[str, int] = defaultdict(int)  # op type -> nodes kept as unknown layers
        self.inferred: dict[str, Any] | None = None  # ONNX's own shape inference, run only for unknown ops

        self.numpy_helper = numpy_helper
        self.model = model
        self.graph = model.graph
        self.source = source
        self.values = dict(values or {})
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.inits = {t.name: t for t in self.graph.initializer}
        self.kinds = self._initializer_kinds()
        self.env: dict[str, Act | Const] = {}
        self.layers: list[dict[str, Any]] = []
        self.used: set[str] = set()
        self.owner: dict[str, str] = {}  # initializer -> the layer that counts it
        self.variables: dict[str, str] = {}  # name -> doc
        self.symbols: dict[str, sympy.Symbol] = {}
        self.inputs: dict[str, tuple[Any, ...]] = {}
        self.producer: dict[str, Any] = {}
        self.consumers: dict[str, list[Any]] = defaultdict(list)
        for node in self.graph.node:
            for out in node.output:
                self.producer[out] = node
            for inp in node.input:
                self.consumers[inp].append(node)
        self.skip: set[int] = set()
        self.replace: dict[int, tuple[str, str]] = {}  # node id -> (formula, input tensor)
        self.materialized: dict[int, Act] = {}

    # -- names ----------------------------------------------------------------------------------

    def _initializer_kinds(self) -> dict[str, str]:
        """param, buffer or constant per initializer, from torch's exporter metadata where it left some."""
        kinds: dict[str, str] = {}
        sources = [*self.graph.initializer, *self.graph.value_info, *self.graph.input]
        for item in sources:
            for prop in getattr(item, "metadata_props", []):
                if prop.key.endswith("InputSpec.kind"):
                    kinds[item.name] = {"PARAMETER": "param", "BUFFER": "buffer"}.get(prop.value, "constant")
        return kinds

    def variable(self, raw: str, doc: str) -> sympy.Symbol:
        if raw in self.symbols:
            return self.symbols[raw]
        name = re.sub(r"[^A-Za-z0-9_]", "_", raw.strip()) or "d"
        if not name[0].isalpha():
            name = "d" + name
        if name in _RESERVED:
            name += "_"
        base, k = name, 2
        while name in self.variables:
            name, k = f"{base}_{k}", k + 1
        self.variables[name] = doc
        self.symbols[raw] = sympy.Symbol(name, integer=True, positive=True)
        return self.symbols[raw]

    def layer_name(self, node: Any, suffix: str = "") -> str:
        raw = node.name or ""
        segments = [seg for seg in raw.split("/") if seg]
        scopes = _name_scopes(node)
        if raw.startswith("node_") and any(p.key == "pkg.torch.onnx.name_scopes" for p in node.metadata_props):
            raw = raw[len("node_") :]  # the dynamo exporter's prefix on every node name
            segments = [raw]
        if scopes:  # torch's dynamo exporter: the module path in the node's metadata, the call last
            segments, raw = [*scopes, raw], "/" + "/".join([*scopes, raw])
        if raw.startswith("/") and len(segments) >= 2:  # torch's TorchScript exporter: /layer1/layer1.0/conv1/Conv
            path = ""
            for seg in segments[:-1]:
                path = seg if not path or seg.startswith(path + ".") else f"{path}.{seg}"
            raw = path if path not in self.used else f"{path}.{segments[-1]}"
        else:
            raw = ".".join(segments)
        raw = re.sub(r"[^A-Za-z0-9_.\-]", "_", raw)
        raw = raw.strip(".") or f"{node.op_type.lower()}"
        if not re.match(r"[A-Za-z0-9_]", raw):
            raw = "n" + raw
        base = raw + suffix
        name, k = base, 2
        while name in self.used or re.search(r"\.\d+$", name) and name.rsplit(".", 1)[0] in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name

    # -- inputs ---------------------------------------------------------------------------------

    def run(self) -> None:
        self._check_ops()
        self._gelu_patterns()
        for inp in self.graph.input:
            if inp.name in self.inits:
                continue
            dims = []
            tensor_type = inp.type.tensor_type
            if not inp.type.HasField("tensor_type") or not tensor_type.HasField("shape"):
                raise OnnxImportError(f"graph input '{inp.name}' has no tensor shape", Location(self.source))
            name = self._input_name(inp.name)
            for i, d in enumerate(tensor_type.shape.dim):
                if d.HasField("dim_value"):
                    dims.append(sympy.Integer(d.dim_value))
                elif d.HasField("dim_param") and d.dim_param:
                    dims.append(self.variable(d.dim_param, f"dim_param '{d.dim_param}' of input {inp.name}"))
                else:
                    dims.append(self.variable(f"{name}_dim{i}", f"unnamed dynamic dim {i} of input {inp.name}"))
            self.inputs[name] = tuple(dims)
            self.env[inp.name] = Act(name, tuple(dims))
        for node in self.graph.node:
            if id(node) in self.skip:
                continue
            try:
                self.node(node)
            except OnnxImportError:
                raise
            except (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError) as exc:
                raise self.fail(node, f"cannot translate it ({type(exc).__name__}: {exc})") from None

    def _input_name(self, raw: str) -> str:
        name = re.sub(r"[^A-Za-z0-9_]", "_", raw) or "x"
        if not name[0].isalpha():
            name = "x" + name
        base, k = name, 2
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name

    def _check_ops(self) -> None:
        """Every op type symcost has no translation for, with its nodes, in one error."""
        unknown: dict[str, list[str]] = defaultdict(list)
        for node in self.graph.node:
            if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED:
                key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
                unknown[key].append(node.name or "(unnamed)")
        if unknown and self.allow_unknown:
            from .. import registry
            from ..errors import FormulaError

            try:
                registry.get("unknown")
            except FormulaError:
                raise OnnxImportError(
                    "--allow-unknown needs the catalog's 'unknown' formula, which this installation lacks",
                    Location(self.source),
                ) from None
            return
        if unknown:
            lines = []
            for op, names in sorted(unknown.items()):
                shown = ", ".join(names[:5]) + (f", ... ({len(names) - 5} more)" if len(names) > 5 else "")
                lines.append(f"{op} x{len(names)} ({shown})")
            raise OnnxImportError(
                f"{sum(len(v) for v in unknown.values())} nodes use operators symcost has no formula for: "
                + "; ".join(lines)
                + " (the supported operators are listed in docs/reference/onnx-ops.md; --allow-unknown keeps them as"
                " 'unknown' layers that count nothing)",
                Location(self.source),
            )

    def _gelu_patterns(self) -> None:
        """GELU written with Erf (torch's exporter below opset 20): x * 0.5 * (1 + erf(x / sqrt(2)))."""

        def single(tensor: str, op: str) -> Any:
            users = self.consumers.get(tensor, [])
            return users[0] if len(users) == 1 and users[0].op_type == op else None

        for erf in self.graph.node:
            if erf.op_type != "Erf":
                continue
            pre = self.producer.get(erf.input[0])
            if pre is None or pre.op_type not in ("Div", "Mul"):
                continue
            x = pre.input[0]
            add = single(erf.output[0], "Add")
            if not add:
                continue
            chain, cur, used_x = [pre, erf, add], add, False
            for _ in range(2):
                nxt = single(cur.output[0], "Mul")
                other = [n for n in nxt.input if n != cur.output[0]] if nxt else []
                if len(other) != 1:
                    break
                half = self.producer.get(other[0])
                if other[0] == x and not used_x:
                    used_x = True
                elif other[0] in self.inits or (half is not None and half.op_type == "Constant"):
                    pass
                elif (half is not None and half.op_type == "Mul" and x in half.input and not used_x
                      and len(self.consumers[half.output[0]]) == 1):  # fmt: skip
                    chain.append(half)
                    used_x = True
                else:
                    break
                chain.append(nxt)
                cur = nxt
            if not used_x:
                continue
            final = cur
            for item in chain:
                self.skip.add(id(item))
            self.skip.discard(id(final))
            self.replace[id(final)] = ("gelu", x)

    # -- helpers --------------------------------------------------------------------------------

    def fail(self, node: Any, message: str) -> OnnxImportError:
        return OnnxImportError(f"{node.op_type} node '{node.name or '(unnamed)'}': {message}", Location(self.source))

    def get(self, name: str) -> Act | Const | None:
        if name == "":
            return None
        if name in self.env:
            return self.env[name]
        if name in self.inits:
            t = self.inits[name]
            shape = tuple(int(d) for d in t.dims)
            values = None
            numel = math.prod(shape)
            if numel <= 4096:
                values = _objects(self.numpy_helper.to_array(t))
            kind = self.kinds.get(name)
            is_int = t.data_type in (2, 3, 4, 5, 6, 7, 12, 13)
            floating = t.data_type in (1, 10, 11, 16)
            if kind is None:  # no exporter metadata: a float tensor of more elements than a scalar, or a named one
                kind = "param" if floating and (numel > 1 or "." in name) else "constant"
            const = Const(shape, values, name, kind, is_int)
            self.env[name] = const
            return const
        raise KeyError(f"tensor '{name}' is used before it is computed")

    def act(self, node: Any, name: str) -> Act:
        t = self.get(name)
        if isinstance(t, Act):
            return t
        if t is None:
            raise self.fail(node, "a required input is missing")
        return self.materialize(node, t)

    def materialize(self, node: Any, c: Const) -> Act:
        """A constant or a weight read as an activation: a ``parameter``, ``buffer`` or ``constant`` layer."""
        if id(c) in self.materialized:
            return self.materialized[id(c)]
        op = {"param": "parameter", "buffer": "buffer"}.get(c.kind, "constant") if c.init else "constant"
        shape = tuple(c.shape) or (1,)
        label = c.init or "const"
        name = self.layer_name(type("N", (), {"name": label, "op_type": "Constant"})())
        spec: dict[str, Any] = {"shape": _show(list(shape))}
        if op == "parameter":
            tied = self.claim(node, name, [c.init])
            if tied:
                spec["tied"] = tied
        out = self.emit_raw(name, op, [], shape, spec)
        self.materialized[id(c)] = out
        return out

    def static(self, node: Any, name: str) -> Any:
        """The values of an argument tensor (a Constant, an initializer, a shape computation)."""
        t = self.get(name)
        if not isinstance(t, Const) or t.values is None:
            raise self.fail(
                node,
                f"its input '{name}' is computed at run time; symcost follows arguments only when they are "
                "constants, initializers or computed from shapes (Shape, Gather, Concat, ...)",
            )
        return t.values

    def ints(self, node: Any, name: str) -> list[Any]:
        return [_int(v) for v in self.static(node, name).reshape(-1)]

    def attrs(self, node: Any) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def claim(self, node: Any, layer: str, inits: list[str | None]) -> str | None:
        """Record that ``layer`` counts these initializers; the earlier layer it shares them with, if any."""
        owners = {self.owner.get(i) for i in inits if i}
        owners.discard(None)
        if not owners:
            for i in inits:
                if i:
                    self.owner[i] = layer
            return None
        if len(owners) == 1 and all(self.owner.get(i) for i in inits if i):
            return owners.pop()
        raise self.fail(node, "shares some of its weights with another layer and not others: symcost ties whole layers")

    def emit_raw(self, name: str, op: str, ins: list[Act], shape: tuple[Any, ...], spec: dict[str, Any]) -> Act:
        layer: dict[str, Any] = {"name": name, "op": op}
        if ins:
            layer["in"] = ins[0].name if len(ins) == 1 else [a.name for a in ins]
        layer.update(spec)
        self.layers.append(layer)
        return Act(name, tuple(sympy.Integer(s) if isinstance(s, int) else s for s in shape))

    def emit(self, node: Any, op: str, ins: list[Act], shape: tuple[Any, ...], spec: dict[str, Any] | None = None,
             inits: list[str | None] | None = None, suffix: str = "") -> Act:  # fmt: skip
        name = self.layer_name(node, suffix)
        spec = dict(spec or {})
        if inits:
            tied = self.claim(node, name, inits)
            if tied:
                spec["tied"] = tied
        return self.emit_raw(name, op, ins, shape, spec)

    def weight(self, node: Any, name: str, what: str) -> Const:
        t = self.get(name)
        if not isinstance(t, Const):
            raise self.fail(node, f"its {what} is computed at run time; symcost reads it only from an initializer")
        return t

    # -- one node -------------------------------------------------------------------------------

    def node(self, node: Any) -> None:
        if id(node) in self.replace:
            op, x = self.replace[id(node)]
            a = self.act(node, x)
            self.env[node.output[0]] = self.emit(node, op, [a], a.shape)
            return
        ins = [self.get(n) for n in node.input]
        weight_view = node.op_type in ("Transpose", *_ALIAS) and isinstance(ins[0], Const) and ins[0].init
        if (
            node.op_type in _STATIC_ONLY
            or not weight_view
            and (node.op_type in _STATIC_CAPABLE and all(t is None or isinstance(t, Const) for t in ins))
        ):
            if node.op_type == "Shape":
                self.env[node.output[0]] = self.shape_of(node, ins[0])
                return
            if any(isinstance(t, Act) for t in ins):
                if self.allow_unknown:
                    self.unknown_node(node, ins)
                    return
                raise self.fail(node, "works on a tensor's values at run time; symcost has no formula for it")
            out = _static_eval(self, node, ins)
            for name, value in zip(node.output, out):
                self.env[name] = value
            return
        handler = getattr(self, f"op_{node.op_type}", None) if node.domain in ("", "ai.onnx") else None
        if handler is None:
            if self.allow_unknown:
                self.unknown_node(node, ins)
                return
            raise self.fail(node, "no translation")
        handler(node, ins)

    def unknown_node(self, node: Any, ins: list[Any]) -> None:
        """An ``unknown`` layer per output (--allow-unknown): the shape kept, no cost counted. An elementwise op
        keeps the broadcast shape of its inputs; any other takes ONNX's own shape inference, when that states
        every dim as a number or as one of the inputs' dim_params."""
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        self.unknown[key] += 1
        acts = [t for t in ins if isinstance(t, Act)]
        shapes: list[tuple[Any, ...]] = []
        if node.op_type in _ELEMENTWISE and len(node.output) == 1 and acts:
            shape: tuple[Any, ...] = ()
            for t in ins:
                if t is not None:
                    shape = _broadcast(shape, tuple(t.shape))
            shapes = [shape]
        else:
            for name in node.output:
                dims = self._inferred(name)
                if dims is None:
                    raise self.fail(node, "kept as unknown, but its output shape is not known (ONNX's shape "
                                          "inference does not state it in the inputs' dims)")  # fmt: skip
                shapes.append(dims)
        note = f"UNKNOWN COST: {key} (no formula; counted as 0)"
        for k, (name, shape) in enumerate(zip(node.output, shapes)):
            spec = {"shape": _show(list(shape)) or [1]}
            y = self.emit(node, "unknown", acts[:1] if k == 0 else [], shape, spec, suffix="" if k == 0 else f"_{k}")
            self.layers[-1]["_comment"] = note
            self.env[name] = y

    def _inferred(self, name: str) -> tuple[Any, ...] | None:
        if self.inferred is None:
            import onnx

            try:
                model = onnx.shape_inference.infer_shapes(self.model)
            except Exception:  # noqa: BLE001 - inference fails on custom ops in many ways; then nothing is known
                model = self.model
            self.inferred = {v.name: v for v in (*model.graph.value_info, *model.graph.output)}
        info = self.inferred.get(name)
        if info is None or not info.type.tensor_type.HasField("shape"):
            return None
        dims: list[Any] = []
        for d in info.type.tensor_type.shape.dim:
            if d.HasField("dim_value"):
                dims.append(sympy.Integer(d.dim_value))
            elif d.HasField("dim_param") and d.dim_param in self.symbols:
                dims.append(self.symbols[d.dim_param])
            else:
                return None
        return tuple(dims)

    def shape_of(self, node: Any, t: Any) -> Const:
        shape = list(t.shape)
        a = self.attrs(node)
        start, end = a.get("start", 0), a.get("end", len(shape))
        shape = shape[start:end]
        return Const((len(shape),), _objects(shape), is_int=True)

    def out(self, node: Any, value: Act | Const, index: int = 0) -> None:
        self.env[node.output[index]] = value

    # -- layers ---------------------------------------------------------------------------------

    def _pads(self, node: Any, a: dict[str, Any], x: Act, k: list[int], stride: list[int], dil: list[int],
              transpose: bool = False) -> tuple[Act, list[Any]]:  # fmt: skip
        """The input and the padding on each side for a conv or a pool. Pads that differ between the two sides
        (auto_pad SAME_UPPER/SAME_LOWER, TensorFlow converters' explicit pads) become a ``pad`` layer first."""
        nd = len(k)
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER") and not transpose:
            begin, end = [], []
            for h, s, d, kk in zip(x.shape[2:], stride, dil, k):
                total = sympy.Max(0, (sympy.ceiling(h / s) - 1) * s + d * (kk - 1) + 1 - h)
                first = sympy.floor(total / 2) if auto == "SAME_UPPER" else sympy.ceiling(total / 2)
                begin.append(first)
                end.append(total - first)
        elif auto in ("NOTSET", "VALID"):
            pads = [int(p) for p in a.get("pads", [0] * (2 * nd))] if auto == "NOTSET" else [0] * (2 * nd)
            begin, end = pads[:nd], pads[nd:]
        else:
            raise self.fail(node, f"auto_pad {auto} is not supported: export with explicit pads")
        if all(
            sympy.simplify((b if isinstance(b, sympy.Basic) else sympy.Integer(b)) - e) == 0 for b, e in zip(begin, end)
        ):
            return x, [_int(b) if isinstance(b, int) or b.is_Integer else b for b in begin]
        if transpose:
            raise self.fail(node, f"pads {begin} before and {end} after differ: not supported on a ConvTranspose")
        torch_pad: list[Any] = []
        for b, e in reversed(list(zip(begin, end))):
            torch_pad += [b, e]
        shape = (*x.shape[:2], *(h + b + e for h, b, e in zip(x.shape[2:], begin, end)))
        padded = self.emit(node, "pad", [x], shape, {"pad": _show(torch_pad)}, suffix="_pad")
        return padded, [0] * nd

    def _learned(self, node: Any, index: int) -> bool:
        """Whether input ``index`` is a learned initializer: a bias the exporter computes (torch's dynamo
        exporter without its optimizer writes zeros for a conv with bias=False) is not a parameter."""
        if len(node.input) <= index or not node.input[index]:
            return False
        t = self.get(node.input[index])
        return isinstance(t, Const) and t.init is not None and t.kind == "param"

    def _conv(self, node: Any, ins: list[Any], transpose: bool) -> None:
        x = self.act(node, node.input[0])
        w = self.weight(node, node.input[1], "weight")
        a = self.attrs(node)
        k = [int(v) for v in w.shape[2:]]
        nd = len(k)
        if nd not in (1, 2, 3) or len(x.shape) != nd + 2:
            raise self.fail(node, f"a {nd}-d kernel on a rank-{len(x.shape)} input is not a conv symcost counts")
        stride = [int(v) for v in a.get("strides", [1] * nd)]
        dil = [int(v) for v in a.get("dilations", [1] * nd)]
        groups = int(a.get("group", 1))
        x, pad = self._pads(node, a, x, k, stride, dil, transpose)
        bias = self._learned(node, 2)
        spec: dict[str, Any] = {}
        if transpose:
            if "output_shape" in a:
                raise self.fail(node, "output_shape is not supported: export with pads and output_padding")
            c_out = int(w.shape[1]) * groups
            opad = [int(v) for v in a.get("output_padding", [0] * nd)]
            sizes = [(h - 1) * s - 2 * p + d * (kk - 1) + op + 1
                     for h, s, p, d, kk, op in zip(x.shape[2:], stride, pad, dil, k, opad)]  # fmt: skip
            spec = {"C_out": c_out, "kernel": _axes(k), "stride": _axes(stride), "padding": _axes(pad),
                    "output_padding": _axes(opad), "dilation": _axes(dil), "groups": groups, "bias": bias}  # fmt: skip
            op = f"conv_transpose{nd}d"
        else:
            c_out = int(w.shape[0])
            sizes = [sympy.floor((h + 2 * p - d * (kk - 1) - 1) / s) + 1
                     for h, s, p, d, kk in zip(x.shape[2:], stride, pad, dil, k)]  # fmt: skip
            spec = {"C_out": c_out, "kernel": _axes(k), "stride": _axes(stride), "padding": _axes(pad),
                    "dilation": _axes(dil), "groups": groups, "bias": bias}  # fmt: skip
            op = f"conv{nd}d"
        defaults = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "output_padding": 0}
        spec = {key: v for key, v in spec.items() if defaults.get(key) != v}
        inits = [w.init, node.input[2] if bias else None]
        self.out(node, self.emit(node, op, [x], (x.shape[0], c_out, *sizes), spec, inits))

    def op_Conv(self, node: Any, ins: list[Any]) -> None:
        self._conv(node, ins, False)

    def op_ConvTranspose(self, node: Any, ins: list[Any]) -> None:
        self._conv(node, ins, True)

    def _bias_after(self, node: Any, out_features: Any) -> Any:
        """The Add right after a MatMul that adds a learned bias of out_features: folded into linear."""
        users = self.consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Add" or node.output[0] in self._graph_outputs():
            return None
        add = users[0]
        other = [n for n in add.input if n != node.output[0]]
        if len(other) != 1 or other[0] not in self.inits:
            return None
        c = self.get(other[0])
        if isinstance(c, Const) and c.kind == "param" and tuple(c.shape) in ((out_features,), (1, out_features)):
            return add
        return None

    def _graph_outputs(self) -> set[str]:
        return {o.name for o in self.graph.output}

    def _linear(self, node: Any, x: Act, w: Const, in_f: int, out_f: int, bias: str | None) -> None:
        if x.shape[-1] != in_f and sympy.simplify(x.shape[-1] - in_f) != 0:
            raise self.fail(node, f"input features {x.shape[-1]} do not match the weight's {in_f}")
        add = None if bias else self._bias_after(node, out_f)
        if add is not None:
            self.skip.add(id(add))
            bias = [n for n in add.input if n != node.output[0]][0]
        spec = {"out_features": out_f, "bias": bool(bias)}
        y = self.emit(node, "linear", [x], (*x.shape[:-1], out_f), spec, [w.init, bias])
        self.out(node, y)
        if add is not None:
            self.env[add.output[0]] = y

    def op_Gemm(self, node: Any, ins: list[Any]) -> None:
        a = self.attrs(node)
        x = self.act(node, node.input[0])
        if a.get("transA", 0) or len(x.shape) != 2:
            raise self.fail(node, "transA is not supported: symcost reads Gemm as x @ W (+ bias)")
        b = ins[1]
        if not isinstance(b, Const) or not b.init:
            raise self.fail(node, "B is computed at run time: symcost reads Gemm's B from an initializer")
        out_f, in_f = (b.shape[0], b.shape[1]) if a.get("transB", 0) else (b.shape[1], b.shape[0])
        bias = node.input[2] if self._learned(node, 2) else None
        if bias is not None:
            c = self.get(bias)
            if not isinstance(c, Const) or c.numel != out_f:
                raise self.fail(node, "C is not a bias of out_features values")
        self._linear(node, x, b, int(in_f), int(out_f), bias)

    def op_MatMul(self, node: Any, ins: list[Any]) -> None:
        a, b = ins
        if isinstance(b, Const) and b.init and len(b.shape) == 2 and isinstance(a, Act):
            self._linear(node, a, b, int(b.shape[0]), int(b.shape[1]), None)
            return
        a, b = self.act(node, node.input[0]), self.act(node, node.input[1])
        ra, rb = len(a.shape), len(b.shape)
        if ra < 2 or rb < 2:
            raise self.fail(node, "a MatMul of a vector is not supported")
        if ra == rb == 2:
            self.out(node, self.emit(node, "matmul", [a, b], (a.shape[0], b.shape[1])))
            return
        if rb == 2:
            flat = self.emit(node, "reshape", [a], (_prod(a.shape[:-1]), a.shape[-1]),
                             {"shape": [-1, _show(a.shape[-1])]}, suffix="_rows")  # fmt: skip
            mm = self.emit(node, "matmul", [flat, b], (flat.shape[0], b.shape[1]), suffix="_mm")
            shape = (*a.shape[:-1], b.shape[1])
            self.out(node, self.emit(node, "reshape", [mm], shape, {"shape": _show(list(shape))}))
            return
        if ra == rb and all(sympy.simplify(p - q) == 0 for p, q in zip(a.shape[:-2], b.shape[:-2])):
            self.out(node, self.emit(node, "bmm", [a, b], (*a.shape[:-1], b.shape[-1])))
            return
        raise self.fail(node, f"a MatMul of {list(a.shape)} by {list(b.shape)} (broadcast batch dims) is not supported")

    def op_BatchNormalization(self, node: Any, ins: list[Any]) -> None:
        x = self.act(node, node.input[0])
        rank = len(x.shape)
        if rank not in (3, 4, 5):
            raise self.fail(node, f"a rank-{rank} input: symcost's batchnorm1d/2d/3d take [N, C, ...] of rank 3 to 5")
        for i, what in ((1, "scale"), (2, "bias")):
            self.weight(node, node.input[i], what)
        training = bool(self.attrs(node).get("training_mode", 0))
        spec = {"training": True} if training else {}
        y = self.emit(node, f"batchnorm{rank - 2}d", [x], x.shape, spec, [node.input[1], node.input[2]])
        self.out(node, y)

    def op_LayerNormalization(self, node: Any, ins: list[Any]) -> None:
        x = self.act(node, node.input[0])
        axis = int(self.attrs(node).get("axis", -1))
        axis = axis + len(x.shape) if axis < 0 else axis
        n = len(x.shape) - axis
        if n not in (1, 2, 3):
            raise self.fail(node, f"normalizing the last {n} dims is not supported (1 to 3 are)")
        op = "layernorm" if n == 1 else f"layernorm_last{n}"
        scale = self.get(node.input[1])
        bias = self._learned(node, 2)
        affine = isinstance(scale, Const) and scale.init is not None and scale.kind == "param"
        dims = _show(list(x.shape[axis:]))
        spec = {"normalized_shape": dims[0]} if n == 1 else {}  # layernorm_last2/3 read their dims from x
        spec.update({"elementwise_affine": affine, "bias": bias and affine})
        inits = [node.input[1] if affine else None, node.input[2] if bias and affine else None]
        self.out(node, self.emit(node, op, [x], x.shape, spec, inits))

    def _unary(self, node: Any, op: str, spec: dict[str, Any] | None = None) -> None:
        x = self.act(node, node.input[0])
        self.out(node, self.emit(node, op, [x], x.shape, spec))

    def op_Gelu(self, node: Any, ins: list[Any]) -> None:
        approx = self.attrs(node).get("approximate", b"none")
        approx = approx.decode() if isinstance(approx, bytes) else approx
        self._unary(node, "gelu_tanh" if approx == "tanh" else "gelu")

    def op_Clip(self, node: Any, ins: list[Any]) -> None:
        a = self.attrs(node)
        lo = (
            a.get("min")
            if self.opset < 11
            else (self.ints(node, node.input[1])[0] if len(ins) > 1 and ins[1] else None)
        )
        hi = (
            a.get("max")
            if self.opset < 11
            else (self.ints(node, node.input[2])[0] if len(ins) > 2 and ins[2] else None)
        )
        self._unary(node, "relu6" if (lo, hi) == (0, 6) else "clamp")

    def op_PRelu(self, node: Any, ins: list[Any]) -> None:
        x = self.act(node, node.input[0])
        slope = self.weight(node, node.input[1], "slope")
        spec = {"num_parameters": int(slope.numel)} if slope.numel != 1 else {}
        self.out(node, self.emit(node, "prelu", [x], x.shape, spec, [slope.init]))

    def _softmax(self, node: Any, op: str) -> None:
        x = self.act(node, node.input[0])
        rank = len(x.shape)
        axis = int(self.attrs(node).get("axis", -1 if self.opset >= 13 else 1))
        axis = axis + rank if axis < 0 else axis
        if self.opset < 13 and axis != rank - 1:
            raise self.fail(node, "softmax over a flattened block of dims (before opset 13) is not supported")
        if axis == rank - 1:
            self.out(node, self.emit(node, op, [x], x.shape))
            return
        perm = list(range(rank))
        perm[axis], perm[-1] = perm[-1], perm[axis]
        moved = tuple(x.shape[p] for p in perm)
        t = self.emit(node, "permute", [x], moved, {"dims": perm}, suffix="_last")
        s = self.emit(node, op, [t], moved, suffix="_op")
        self.out(node, self.emit(node, "permute", [s], x.shape, {"dims": perm}))

    def op_Softmax(self, node: Any, ins: list[Any]) -> None:
        self._softmax(node, "softmax")

    def op_LogSoftmax(self, node: Any, ins: list[Any]) -> None:
        self._softmax(node, "log_softmax")

    def op_Dropout(self, node: Any, ins: list[Any]) -> None:
        if len(node.output) > 1 and node.output[1] and self.consumers.get(node.output[1]):
            raise self.fail(node, "its mask output is used: symcost does not model it")
        self._unary(node, "dropout")

    def _alias(self, node: Any, ins: list[Any]) -> None:
        self.out(node, ins[0])

    op_Identity = op_Cast = op_CastLike = _alias

    def _binary(self, node: Any, ins: list[Any]) -> None:
        op = _BINARY[node.op_type]
        a, b = ins
        if isinstance(a, Const) and isinstance(b, Act):
            a, b = b, a  # the costs of a op b and b op a are the same
        if isinstance(a, Act) and isinstance(b, Const):
            if b.numel == 1 and b.kind != "param":
                value = b.values.reshape(-1)[0] if b.values is not None else 0
                value = value if isinstance(value, (int, float)) else 0
                self.out(node, self.emit(node, op, [a], a.shape, {"scalar": value}))
                return
            if b.kind == "param" and b.init:
                shape = _broadcast(a.shape, b.shape)
                spec = {"learned": _show(list(b.shape)) or [1]}
                self.out(node, self.emit(node, op, [a], shape, spec, [b.init]))
                return
            b = self.materialize(node, b)
        a, b = self.act(node, node.input[0]) if not isinstance(a, Act) else a, b
        self.out(node, self.emit(node, op, [a, b], _broadcast(a.shape, b.shape)))

    op_Add = op_Sub = op_Mul = op_Div = _binary

    # -- shape ops ------------------------------------------------------------------------------

    def op_Reshape(self, node: Any, ins: list[Any]) -> None:
        x = self.act(node, node.input[0])
        target = self.ints(node, node.input[1])
        allowzero = self.attrs(node).get("allowzero", 0)
        sizes = [x.shape[i] if (t == 0 and not allowzero) else t for i, t in enumerate(target)]
        known = _prod(s for s in sizes if not (isinstance(s, int) and s == -1))
        shape = [sympy.simplify(_prod(x.shape) / known) if isinstance(s, int) and s == -1 else s for s in sizes]
        if list(shape) == list(x.shape):
            self.out(node, x)
            return
        self.out(node, self.emit(node, "reshape", [x], tuple(shape), {"shape": _show(sizes)}))

    def op_Flatten(self, node: Any, ins: list[Any]) -> None:
        x = self.act(node, node.input[0])
        axis = int(self.attrs(node).get("axis", 1))
        axis = axis + len(x.shape) if axis < 0 else axis
        shape = (_prod(x.shape[:axis]), _prod(x.shape[axis:]))
        if axis == 1:
            self.out(node, self.emit(node, "flatten", [x], shape, {"start_dim": 1}))
        else:
            self.out(node, self.emit(node, "reshape", [x], shape, {"shape": [_show(shape[0]), -1]}))

    def op_Transpose(self, node: Any, ins: list[Any]) -> None:
        x = ins[0]
        perm = [int(p) for p in self.attrs(node).get("perm", list(range(len(x.shape)))[::-1])]
        if isinstance(x, Const):
            values = x.values.transpose(perm) if x.values is not None else None
            self.out(node, Const(tuple(x.shape[p] for p in perm), values, x.init, x.kind, x.is_int))
            return
        shape = tuple(x.shape[p] for p in perm)
        self.out(node, self.emit(node, "permute", [x], shape, {"dims": perm}))

    def op_Concat(self, node: Any, ins: list[Any]) -> None:
        xs = [self.act(node, n) for n in node.input if n]
        rank = len(xs[0].shape)
        axis = int(self.attrs(node)["axis"])
        axis = axis + rank if axis < 0 else axis
        shape = list(xs[0].shape)
        shape[axis] = sum((x.shape[axis] for x in xs), sympy.Integer(0))
        self.out(node, self.emit(node, "cat", xs, tuple(shape), {"dim": axis}))

    def op_Split(self, node: Any, ins: list[Any]) -> None:
        x = self.act(node, node.input[0])
        a = self.attrs(node)
        axis = int(a.get("axis", 0))
        axis = axis + len(x.shape) if axis < 0 else axis
        if len(node.input) > 1 and node.input[1]:
            sizes = self.ints(node, node.input[1])
        elif "split" in a:
            sizes = [int(s) for s in a["split"]]
        else:
            n = len(node.output)
            size = sympy.ceiling(x.shape[axis] / n)
            sizes = [size] * (n - 1) + [x.shape[axis] - size * (n - 1)]
        y = self.emit(node, "split", [x], x.shape, {"sizes": _show(sizes), "dim": axis})
        for i, (name, size) in enumerate(zip(node.output, sizes)):
            shape = list(x.shape)
            shape[axis] = size
            self.env[name] = Act(f"{y.name}.{i}", tuple(shape))

    def op_Slice(self, node: Any, ins: list[Any]) -> None:
        x = self.act(node, node.input[0])
        if self.opset < 10:
            a = self.attrs(node)
            starts, ends = list(a["starts"]), list(a["ends"])
            axes = list(a.get("axes", range(len(starts))))
            steps = [1] * len(starts)
        else:
            starts, ends = self.ints(node, node.input[1]), self.ints(node, node.input[2])
            axes = self.ints(node, node.input[3]) if len(node.input) > 3 and node.input[3] else list(range(len(starts)))
            steps = self.ints(node, node.input[4]) if len(node.input) > 4 and node.input[4] else [1] * len(starts)
        cur = x
        todo = []
        for start, end, axis, step in zip(starts, ends, axes, steps):
            axis = int(axis) + len(x.shape) if int(axis) < 0 else int(axis)
            if not isinstance(step, int) or step < 1:
                raise self.fail(node, f"step {step}: symcost slices with positive steps only")
            size = cur.shape[axis]
            if isinstance(end, int) and (end >= _TO_END or (size.is_Integer and end >= size)):
                end = None
            if isinstance(start, int) and start <= -_TO_END:
                start = 0
            if start == 0 and end is None and step == 1:
                continue
            todo.append((axis, start, end, step))
        for k, (axis, start, end, step) in enumerate(todo):
            size = cur.shape[axis]
            lo = size + start if isinstance(start, int) and start < 0 else start
            hi = size if end is None else (size + end if isinstance(end, int) and end < 0 else end)
            if isinstance(lo, int) and size.is_Integer:
                lo = min(max(lo, 0), int(size))
            shape = list(cur.shape)
            shape[axis] = sympy.ceiling((hi - lo) / step)
            spec: dict[str, Any] = {"dim": axis, "start": _show(start)}
            if end is not None:
                spec["end"] = _show(end)
            if step != 1:
                spec["step"] = step
            cur = self.emit(node, "slice", [cur], tuple(shape), spec, suffix="" if k == len(todo) - 1 else f"_{axis}")
        self.out(node, cur)

    def op_Gather(self, node: Any, ins: list[Any]) -> None:
        data, idx = ins
        axis = int(self.attrs(node).get("axis", 0))
        if isinstance(data, Const) and data.init and isinstance(idx, Act):
            if axis != 0 or len(data.shape) != 2:
                raise self.fail(node, "a lookup in a weight that is not a 2-d table on axis 0")
            spec = {"num_embeddings": int(data.shape[0]), "embedding_dim": int(data.shape[1])}
            y = self.emit(node, "embedding", [idx], (*idx.shape, data.shape[1]), spec, [data.init])
            self.out(node, y)
            return
        x = self.act(node, node.input[0])
        axis = axis + len(x.shape) if axis < 0 else axis
        if isinstance(idx, Const) and idx.values is not None and len(idx.shape) == 0:
            index = _int(idx.values.reshape(-1)[0])
            shape = x.shape[:axis] + x.shape[axis + 1 :]
            self.out(node, self.emit(node, "select", [x], shape, {"dim": axis, "index": _show(index)}))
            return
        if isinstance(idx, Const) and len(idx.shape) == 1:
            index = self.materialize(node, idx)
            shape = (*x.shape[:axis], idx.shape[0], *x.shape[axis + 1 :])
            self.out(node, self.emit(node, "index_select", [x, index], shape, {"dim": axis}))
            return
        raise self.fail(node, "a gather by run-time indices from an activation is not supported")

    def _axes_arg(self, node: Any, ins: list[Any]) -> list[int] | None:
        a = self.attrs(node)
        if "axes" in a:
            return [int(v) for v in a["axes"]]
        if len(node.input) > 1 and node.input[1]:
            return [int(v) for v in self.ints(node, node.input[1])]
        return None

    def op_Squeeze(self, node: Any, ins: list[Any]) -> None:
        x = self.act(node, node.input[0])
        axes = self._axes_arg(node, ins)
        rank = len(x.shape)
        if axes is None:
            axes = [i for i, s in enumerate(x.shape) if s == 1]
        axes = sorted(a + rank if a < 0 else a for a in axes)
        shape = tuple(s for i, s in enumerate(x.shape) if i not in axes)
        self.out(node, self.emit(node, "squeeze", [x], shape, {"dim": axes}))

    def op_Unsqueeze(self, node: Any, ins: list[Any]) -> None:
        x = self.act(node, node.input[0])
        axes = self._axes_arg(node, ins) or []
        rank = len(x.shape) + len(axes)
        axes = sorted(a + rank if a < 0 else a for a in axes)
        cur = x
        for k, axis in enumerate(axes):
            shape = list(cur.shape)
            shape.insert(axis, sympy.Integer(1))
            suffix = "" if k == len(axes) - 1 else f"_{axis}"
            cur = self.emit(node, "unsqueeze", [cur], tuple(shape), {"dim": axis}, suffix=suffix)
        self.out(node, cur)

    def op_Expand(self, node: Any, ins: list[Any]) -> None:
        x = self.act(node, node.input[0])
        target = self.ints(node, node.input[1])
        shape = _broadcast(x.shape, tuple(sympy.Integer(t) if isinstance(t, int) else t for t in target))
        if list(shape) == list(x.shape):
            self.out(node, x)
            return
        self.out(node, self.emit(node, "expand", [x], shape, {"sizes": _show(list(shape))}))

    def op_Pad(self, node: Any, ins: list[Any]) -> None:
        x = self.act(node, node.input[0])
        a = self.attrs(node)
        pads = [int(p) for p in a["pads"]] if self.opset < 11 else self.ints(node, node.input[1])
        rank = len(x.shape)
        axes = list(range(rank))
        if len(node.input) > 3 and node.input[3]:
            axes = [v + rank if v < 0 else v for v in self.ints(node, node.input[3])]
        n = len(axes)
        full_begin, full_end = [0] * rank, [0] * rank
        for i, axis in enumerate(axes):
            full_begin[axis], full_end[axis] = pads[i], pads[n + i]
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        mode = {"edge": "replicate", "wrap": "circular"}.get(mode, mode)
        first = next((i for i in range(rank) if full_begin[i] or full_end[i]), rank)
        torch_pad: list[Any] = []
        for d in reversed(range(first, rank)):
            torch_pad += [full_begin[d], full_end[d]]
        if not torch_pad:
            self.out(node, x)
            return
        shape = tuple(s + full_begin[i] + full_end[i] for i, s in enumerate(x.shape))
        spec: dict[str, Any] = {"pad": _show(torch_pad)}
        if mode != "constant":
            spec["mode"] = mode
        self.out(node, self.emit(node, "pad", [x], shape, spec))

    def _reduce(self, node: Any, ins: list[Any]) -> None:
        x = self.act(node, node.input[0])
        a = self.attrs(node)
        axes = self._axes_arg(node, ins)
        keep = bool(a.get("keepdims", 1))
        rank = len(x.shape)
        if axes is None or axes == []:
            if a.get("noop_with_empty_axes", 0):
                self.out(node, x)
                return
            axes = list(range(rank))
        axes = sorted(v + rank if v < 0 else v for v in axes)
        shape = tuple(sympy.Integer(1) if i in axes else s for i, s in enumerate(x.shape) if keep or i not in axes)
        spec = {"dim": axes, "keepdim": keep}
        self.out(node, self.emit(node, _REDUCE[node.op_type], [x], shape, spec))

    op_ReduceMean = op_ReduceSum = op_ReduceMax = op_ReduceMin = _reduce

    def _pool(self, node: Any, ins: list[Any], kind: str) -> None:
        x = self.act(node, node.input[0])
        if len(node.output) > 1 and node.output[1] and self.consumers.get(node.output[1]):
            raise self.fail(node, "its indices output is used: symcost does not model it")
        a = self.attrs(node)
        k = [int(v) for v in a["kernel_shape"]]
        nd = len(k)
        stride = [int(v) for v in a.get("strides", [1] * nd)]
        dil = [int(v) for v in a.get("dilations", [1] * nd)]
        x, pad = self._pads(node, a, x, k, stride, dil)
        ceil = bool(a.get("ceil_mode", 0))
        rounding = sympy.ceiling if ceil else sympy.floor
        sizes = [rounding((h + 2 * p - d * (kk - 1) - 1) / s) + 1
                 for h, s, p, d, kk in zip(x.shape[2:], stride, pad, dil, k)]  # fmt: skip
        spec: dict[str, Any] = {"kernel": _axes(k), "stride": _axes(stride)}
        if any(pad):
            spec["padding"] = _axes(pad)
        if kind == "max" and any(d != 1 for d in dil):
            spec["dilation"] = _axes(dil)
        if ceil:
            spec["ceil_mode"] = True
        if kind == "avg":
            if any(d != 1 for d in dil):
                raise self.fail(node, "a dilated average pool is not supported")
            spec["count_include_pad"] = bool(a.get("count_include_pad", 0))
        op = f"{kind}pool{nd}d"
        self.out(node, self.emit(node, op, [x], (*x.shape[:2], *sizes), spec))

    def op_MaxPool(self, node: Any, ins: list[Any]) -> None:
        self._pool(node, ins, "max")

    def op_AveragePool(self, node: Any, ins: list[Any]) -> None:
        self._pool(node, ins, "avg")

    def _global(self, node: Any, kind: str) -> None:
        x = self.act(node, node.input[0])
        nd = len(x.shape) - 2
        shape = (*x.shape[:2], *([sympy.Integer(1)] * nd))
        if kind == "avg" and nd == 2:
            self.out(node, self.emit(node, "global_avg_pool2d", [x], shape))
        else:
            self.out(node, self.emit(node, f"adaptive_{kind}_pool{nd}d", [x], shape, {"output_size": 1}))

    def op_GlobalAveragePool(self, node: Any, ins: list[Any]) -> None:
        self._global(node, "avg")

    def op_GlobalMaxPool(self, node: Any, ins: list[Any]) -> None:
        self._global(node, "max")

    def op_Resize(self, node: Any, ins: list[Any]) -> None:
        x = self.act(node, node.input[0])
        a = self.attrs(node)
        mode = a.get("mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        ctm = a.get("coordinate_transformation_mode", b"half_pixel")
        ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
        if len(x.shape) != 4:
            raise self.fail(node, "symcost resizes 4-d [N, C, H, W] inputs only")
        kind = {"nearest": "nearest", "linear": "bilinear", "cubic": "bicubic"}[mode]
        scales = self.static(node, node.input[2]).reshape(-1) if len(node.input) > 2 and node.input[2] else []
        scales = [] if scales is None else list(scales)
        spec: dict[str, Any] = {}
        if scales:
            if [float(s) for s in scales[:2]] != [1.0, 1.0] or any(float(s) != int(s) for s in scales[2:]):
                raise self.fail(node, f"scales {scales}: symcost upsamples H and W by whole factors")
            factors = [int(s) for s in scales[2:]]
            if kind == "bicubic":
                op = "upsample_bicubic2d"
            else:
                op = f"upsample_{kind}2d"
            spec["scale_factor"] = _axes(factors)
            shape = (*x.shape[:2], x.shape[2] * factors[0], x.shape[3] * factors[1])
        else:
            sizes = self.ints(node, node.input[3])
            if sympy.simplify(sizes[0] - x.shape[0]) != 0 or sympy.simplify(sizes[1] - x.shape[1]) != 0:
                raise self.fail(node, "a resize of N or C is not supported")
            op = f"interpolate_{kind}2d_size"
            spec["size"] = _axes(_show(sizes[2:]))
            shape = tuple(sizes)
        if kind != "nearest" and ctm == "align_corners":
            spec["align_corners"] = True
        self.out(node, self.emit(node, op, [x], shape, spec))

    def op_Attention(self, node: Any, ins: list[Any]) -> None:
        q, k, v = (self.act(node, n) for n in node.input[:3])
        if len(q.shape) != 4:
            raise self.fail(node, "symcost reads Attention on 4-d [B, heads, S, D] inputs only")
        spec = {"causal": True} if self.attrs(node).get("is_causal", 0) else {}
        shape = (*q.shape[:3], v.shape[3])
        self.out(node, self.emit(node, "sdpa", [q, k, v], shape, spec))


for _onnx_op, _formula in _ACTIVATIONS.items():
    setattr(_Translator, f"op_{_onnx_op}", lambda self, node, ins, _f=_formula: self._unary(node, _f))


def _name_scopes(node: Any) -> list[str]:
    """The module path torch's dynamo exporter records on a node (``['', 'layer1', 'layer1.0', 'conv1',
    'conv2d']``), without the call's own name; [] when there is none. Read with a regex, never evaluated."""
    for prop in getattr(node, "metadata_props", []):
        if prop.key == "pkg.torch.onnx.name_scopes":
            items = re.findall(r"'((?:[^'\\]|\\.)*)'", prop.value)
            return [item for item in items[:-1] if item]
    return []


def _objects(array: Any) -> Any:
    import numpy as np

    arr = np.asarray(array, dtype=object)
    out = np.empty(arr.shape, dtype=object)
    for index, value in np.ndenumerate(arr):
        if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
            out[index] = int(value)
        elif isinstance(value, (np.floating, float)):
            out[index] = float(value)
        elif isinstance(value, (np.bool_, bool)):
            out[index] = bool(value)
        else:
            out[index] = value
    return out


def _broadcast(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
    rank = max(len(a), len(b))
    pa = (1,) * (rank - len(a)) + tuple(a)
    pb = (1,) * (rank - len(b)) + tuple(b)

    def sym(v: Any) -> Any:
        return sympy.Integer(v) if isinstance(v, int) else v

    return tuple(sym(y) if x == 1 else sym(x) for x, y in zip(pa, pb))


# --- static evaluation (shapes and constants) ---------------------------------------------------


def _static_eval(t: _Translator, node: Any, ins: list[Any]) -> list[Const]:
    import numpy as np

    a = t.attrs(node)
    op = node.op_type

    def val(i: int) -> Any:
        c = ins[i]
        if c is None or c.values is None:
            raise t.fail(node, f"input {i} has values symcost does not know before run time")
        return c.values

    is_int = bool(ins) and all(c is None or c.is_int for c in ins)

    def Const(shape: Any, values: Any, init: Any = None, kind: str = "constant", is_int: bool = False) -> Any:
        if values is not None and not isinstance(values, np.ndarray):
            wrapped = np.empty((), dtype=object)
            wrapped[()] = values
            values = wrapped
        return _Const(values.shape if values is not None else shape, values, init, kind, is_int)

    if op == "Constant":
        from onnx import numpy_helper

        if "value" in a:
            arr = numpy_helper.to_array(a["value"])
            return [Const(arr.shape, _objects(arr), is_int=arr.dtype.kind in "iu")]
        for key in ("value_int", "value_float"):
            if key in a:
                return [Const((), _objects(a[key]), is_int=key == "value_int")]
        for key in ("value_ints", "value_floats"):
            if key in a:
                return [Const((len(a[key]),), _objects(list(a[key])), is_int=key == "value_ints")]
        raise t.fail(node, "a Constant of a kind symcost does not read")
    if op == "Size":
        return [Const((), _objects(_prod(ins[0].shape)), is_int=True)]
    if op == "ConstantOfShape":
        shape = tuple(_int(v) for v in val(0).reshape(-1))
        fill = 0
        if "value" in a:
            from onnx import numpy_helper

            fill = _objects(numpy_helper.to_array(a["value"])).reshape(-1)[0]
        values = None
        if all(isinstance(s, int) for s in shape) and math.prod(shape) <= 4096:
            values = np.full(shape, fill, dtype=object)
        return [Const(shape, values, is_int=isinstance(fill, int))]
    if op in ("Identity", "Cast", "CastLike"):
        c = ins[0]
        if op == "Cast":
            to = a.get("to", 1)
            ints = to in (2, 3, 4, 5, 6, 7, 12, 13)
            values = c.values
            if values is not None and ints:
                values = np.vectorize(lambda v: _int(sympy.floor(v)) if not isinstance(v, int) else v, otypes=[object])(
                    values
                )
            return [Const(c.shape, values, c.init, c.kind, ints)]
        return [c]
    if op in ("Add", "Sub", "Mul", "Div"):
        x, y = val(0), val(1)
        if op == "Add":
            r = x + y
        elif op == "Sub":
            r = x - y
        elif op == "Mul":
            r = x * y
        else:
            f = np.vectorize(
                lambda p, q: _int(sympy.floor(sympy.Rational(1) * p / q)) if is_int else p / q, otypes=[object]
            )
            r = f(x, y)
        r = np.vectorize(lambda v: _int(sympy.expand(v)) if isinstance(v, sympy.Basic) else v, otypes=[object])(r)
        return [Const(None, _objects(r), is_int=is_int)]
    if op == "Gather":
        axis = int(a.get("axis", 0))
        r = np.take(val(0), np.asarray(val(1), dtype=np.int64), axis=axis)
        return [Const(None, _objects(r), is_int=ins[0].is_int)]
    if op == "Concat":
        arrs = [val(i) for i in range(len(ins)) if ins[i] is not None]
        r = np.concatenate([x.reshape(x.shape or (1,)) for x in arrs], axis=int(a["axis"]))
        return [Const(None, r, is_int=is_int)]
    if op in ("Unsqueeze", "Squeeze", "Reshape", "Flatten"):
        x = val(0)
        if op == "Reshape":
            target = [int(v) for v in val(1).reshape(-1)]
            target = [x.shape[i] if v == 0 else v for i, v in enumerate(target)]
            r = x.reshape(target)
        elif op == "Flatten":
            axis = int(a.get("axis", 1))
            r = x.reshape((math.prod(x.shape[:axis]), -1))
        else:
            axes = a.get("axes")
            if axes is None and len(ins) > 1 and ins[1] is not None:
                axes = [int(v) for v in val(1).reshape(-1)]
            if op == "Squeeze":
                r = np.squeeze(x, axis=tuple(axes)) if axes else np.squeeze(x)
            else:
                r = x
                rank = x.ndim + len(axes)
                for axis in sorted(v + rank if v < 0 else v for v in axes):
                    r = np.expand_dims(r, axis)
        return [Const(None, r, is_int=ins[0].is_int)]
    if op == "Slice":
        x = val(0)
        starts, ends = [int(v) for v in val(1).reshape(-1)], [int(v) for v in val(2).reshape(-1)]
        axes = [int(v) for v in val(3).reshape(-1)] if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        steps = [int(v) for v in val(4).reshape(-1)] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
        index = [slice(None)] * x.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps):
            index[ax] = slice(s, e, st)
        r = x[tuple(index)]
        return [Const(None, r, is_int=ins[0].is_int)]
    if op == "Range":
        start, limit, delta = (val(i).reshape(-1)[0] for i in range(3))
        if not all(isinstance(v, int) for v in (start, limit, delta)):
            raise t.fail(node, "a Range over symbolic bounds is not supported")
        r = np.array(list(range(start, limit, delta)), dtype=object)
        return [Const(None, r, is_int=True)]
    if op == "Transpose":
        x = val(0)
        r = x.transpose(a.get("perm", list(range(x.ndim))[::-1]))
        return [Const(None, r, is_int=ins[0].is_int)]
    if op in ("Equal", "Less", "Greater", "Where", "Not", "Floor", "Ceil", "Sqrt", "Neg", "Abs", "Min", "Max",
              "Expand", "Pow"):  # fmt: skip
        r = _elementwise_static(op, [val(i) for i in range(len(ins))])
        return [Const(None, _objects(r), is_int=is_int)]
    raise t.fail(node, "no translation on constants")


def _elementwise_static(op: str, args: list[Any]) -> Any:
    import numpy as np

    def number(v: Any) -> Any:
        if isinstance(v, sympy.Basic) and not v.is_number:
            raise ValueError(f"{op} of the symbolic value {v}")
        return v

    f = {
        "Equal": lambda a, b: sympy.simplify(a - b) == 0,
        "Less": lambda a, b: bool(number(a) < number(b)),
        "Greater": lambda a, b: bool(number(a) > number(b)),
        "Where": lambda c, a, b: a if c else b,
        "Not": lambda a: not a,
        "Floor": lambda a: _int(sympy.floor(a)),
        "Ceil": lambda a: _int(sympy.ceiling(a)),
        "Sqrt": lambda a: float(sympy.sqrt(number(a))),
        "Neg": lambda a: -a,
        "Abs": lambda a: abs(a),
        "Min": lambda a, b: sympy.Min(a, b),
        "Max": lambda a, b: sympy.Max(a, b),
        "Pow": lambda a, b: float(number(a)) ** float(number(b)),
    }
    if op == "Expand":
        shape = tuple(int(v) for v in args[1].reshape(-1))
        return np.broadcast_to(args[0], np.broadcast_shapes(args[0].shape, shape)).copy()
    return np.vectorize(f[op], otypes=[object])(*args)


#: Op types that compute on constants and shapes as well as (some) on activations.
_STATIC_CAPABLE = ("Add", "Sub", "Mul", "Div", "Gather", "Concat", "Unsqueeze", "Squeeze", "Reshape", "Flatten",
                   "Slice", "Cast", "CastLike", "Identity", "Transpose", "Expand")  # fmt: skip

#: Every ONNX operator (default domain) the importer reads, with the symcost formula(s) it becomes.
OPERATORS: dict[str, str] = {
    **{op: f for op, f in _ACTIVATIONS.items()},
    "Conv": "conv1d, conv2d, conv3d (by the kernel's rank)",
    "ConvTranspose": "conv_transpose1d, conv_transpose2d, conv_transpose3d",
    "Gemm": "linear (B an initializer; transB read)",
    "MatMul": "linear (by a 2-d initializer; a following Add of a bias folds in), matmul, bmm",
    "BatchNormalization": "batchnorm1d, batchnorm2d, batchnorm3d (by the input's rank)",
    "LayerNormalization": "layernorm, layernorm_last2, layernorm_last3 (by the axis)",
    "Gelu": "gelu, gelu_tanh (approximate='tanh')",
    "Erf": "gelu, when it is x * 0.5 * (1 + erf(x / sqrt(2))), torch's export of GELU before opset 20",
    "Clip": "relu6 (min 0, max 6), clamp",
    "PRelu": "prelu",
    "Softmax": "softmax (over another axis: permute, softmax, permute)",
    "LogSoftmax": "log_softmax",
    "Dropout": "dropout",
    "Add": "add (a learned tensor: learned; a scalar constant: scalar)",
    "Sub": "sub",
    "Mul": "mul",
    "Div": "div",
    "Reshape": "reshape (0 copies the input's dim)",
    "Flatten": "flatten (axis 1), reshape",
    "Transpose": "permute",
    "Concat": "cat",
    "Split": "split",
    "Slice": "slice, one per sliced axis",
    "Gather": "embedding (from an initializer), select, index_select",
    "Squeeze": "squeeze",
    "Unsqueeze": "unsqueeze, one per axis",
    "Expand": "expand",
    "Pad": "pad (constant, reflect, edge, wrap)",
    "Resize": "upsample_nearest2d, upsample_bilinear2d, upsample_bicubic2d (scales), interpolate_*2d_size (sizes)",
    "ReduceMean": "mean",
    "ReduceSum": "sum",
    "ReduceMax": "amax",
    "ReduceMin": "amin",
    "MaxPool": "maxpool1d, maxpool2d, maxpool3d",
    "AveragePool": "avgpool1d, avgpool2d, avgpool3d",
    "GlobalAveragePool": "global_avg_pool2d, adaptive_avg_pool1d/3d",
    "GlobalMaxPool": "adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d",
    "Attention": "sdpa (4-d q, k, v)",
    "Identity": "no layer: the same tensor",
    "Cast": "no layer: the same tensor",
    "CastLike": "no layer: the same tensor",
    **{op: "no layer: followed on shapes and constants only" for op in _STATIC_ONLY},
}
SUPPORTED = frozenset(OPERATORS)


# --- the YAML -----------------------------------------------------------------------------------


def to_yaml(model: Any, source: str = "model.onnx", values: dict[str, int] | None = None,
            allow_unknown: bool = False) -> str:  # fmt: skip
    """The architecture YAML of an ONNX ModelProto; ``values`` are the variables' defaults; ``allow_unknown``
    keeps nodes with no formula as ``unknown`` layers (shape kept, nothing counted) instead of an error."""
    t = _Translator(model, source, values, allow_unknown)
    t.run()
    out = Lines()
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(source).stem) or "model"
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    out.add(f"# Imported from {Path(source).name} by `symcost import onnx`: one layer per ONNX node that computes,")
    out.add("# named after the node; the inputs' dim_params are the variables.")
    out.add(f"name: {text(stem)}")
    out.add(f"summary: {text(f'{stem}, imported from ONNX (opset {t.opset})')}")
    out.add("sources:")
    out.add(f"- {text(f'{Path(source).name}' + (f', exported by {producer}' if producer else ''))}", 2)
    if t.unknown:
        ops = ", ".join(f"{op} x{count}" for op, count in sorted(t.unknown.items()))
        out.add("notes:")
        out.add(f"- {text(f'UNKNOWN COSTS: {ops} have no formula; their layers are unknown and count nothing')}", 2)
    if t.variables:
        out.add("variables:")
        for name, doc in t.variables.items():
            default = t.values.get(name)
            shown = "null" if default is None else scalar(default)
            out.add(f"{name}: {{default: {shown}, doc: {text(doc)}}}", 2)
    out.add("inputs:")
    for name, shape in t.inputs.items():
        out.add(f"{name}: {scalar([_show(s) for s in shape])}", 2)
    out.add("layers:")
    for layer in t.layers:
        comment = layer.pop("_comment", None)
        if comment:
            out.add(f"# {comment}", 2)
        out.layer(2, **layer)
    outputs = []
    for o in t.graph.output:
        v = t.env.get(o.name)
        if isinstance(v, Act) and v.name not in outputs:
            outputs.append(v.name)
    if outputs:
        out.add(f"outputs: {scalar(outputs)}")
    return out.text()


@dataclass
class Imported:
    """An imported model: ``.arch`` is the architecture every symcost function takes, ``.to_yaml()`` its text."""

    yaml: str
    source: str
    arch: Any = field(repr=False, default=None)

    def to_yaml(self) -> str:
        return self.yaml


def load(path: str | os.PathLike[str], values: dict[str, int] | None = None, allow_unknown: bool = False) -> Imported:
    """Import a local ``.onnx`` file: the architecture and its YAML."""
    from ..arch import load_text

    model = read_model(path)
    text_ = to_yaml(model, str(path), values, allow_unknown)
    return Imported(text_, str(path), load_text(text_, str(path)))


def write(path: str | os.PathLike[str], output: str | os.PathLike[str] | None = None,
          values: dict[str, int] | None = None, allow_unknown: bool = False) -> str:  # fmt: skip
    """Import ``path`` and write the YAML to ``output`` (if given); return the text."""
    text_ = to_yaml(read_model(path), str(path), values, allow_unknown)
    if output is not None:
        Path(output).write_text(text_, encoding="utf-8")
    return text_


def operators_markdown() -> str:
    """The reference page of supported ONNX operators (docs/reference/onnx-ops.md)."""
    lines = ["# Supported ONNX operators", "",
             "Generated from `symcost/importing/onnx.py` by `scripts/gen_docs.py`: every operator of the default",
             "ONNX domain that `symcost import onnx` reads, and the catalog formula it becomes. Any other operator",
             "is an error that lists every such node, by op type, with its name and count.", "",
             "| ONNX operator | symcost |", "|---|---|"]  # fmt: skip
    for op in sorted(OPERATORS):
        lines.append(f"| `{op}` | {OPERATORS[op]} |")
    return "\n".join(lines) + "\n"


__all__ = ["Imported", "OnnxImportError", "OPERATORS", "load", "read_model", "to_yaml", "write"]

_Const = Const
