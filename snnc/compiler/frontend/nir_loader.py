"""NIR frontend: ``load_nir(model)`` -> IR graph of an imported spiking network.

A NIR graph (snntorch, norse, sinabs, rockpool, spikingjelly, snnc's own export) becomes one
``SpikeTrainInput`` (the graph input is a time series (T, *shape)), synapses (Dense, Conv2d;
pools as uniform depthwise convolutions), routing (Reshape) and leaky neuron ops
(``snnc.ir.leaky``), discretized with step ``dt`` (docs/nir-import.md). Each neuron's input gain
(r dt / tau...) is folded into the synapse feeding it when that synapse feeds nothing else.

Every node that cannot be imported -- an unknown type, a nested (recurrent) subgraph, a node on
a cycle, a shape that does not fit -- is named in one ``UnsupportedOp``; a file that is not a
NIR graph raises ``InvalidModel``.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from snnc.compiler.frontend.nir_nodes import NEURON_TYPES, NODE_CONVERTERS
from snnc.compiler.frontend.nir_reader import NirGraph, NirNode, read_nir
from snnc.errors import InvalidModel, UnsupportedOp
from snnc.ir import leaky, ops
from snnc.ir.graph import Graph, GraphBuilder
from snnc.ir.ops import ShapeError
from snnc.ir.types import TensorType

__all__ = ["DEFAULT_DT", "DEFAULT_TIMESTEPS", "is_nir_model", "load_nir", "nir_dt"]

DEFAULT_DT = 1e-4  # snntorch's writer (its tau = dt / (1 - beta) with dt = 1e-4)
DEFAULT_TIMESTEPS = 25


def is_nir_model(model) -> bool:
    """A .nir path or an in-memory ``nir.NIRGraph``."""
    if type(model).__name__ == "NIRGraph":
        return True
    return isinstance(model, (str, os.PathLike)) and str(model).lower().endswith(".nir")


def nir_dt(graph: NirGraph, dt: float | None) -> float:
    """The discretization step: ``dt`` when given, else the graph's metadata ``dt``, else
    DEFAULT_DT."""
    if dt is None:
        dt = graph.metadata.get("dt", DEFAULT_DT)
    dt = float(np.asarray(dt).reshape(-1)[0])
    if not np.isfinite(dt) or dt <= 0:
        raise InvalidModel(f"dt must be a positive number of seconds, got {dt}")
    return dt


def _input_shape(node: NirNode) -> tuple[int, ...]:
    shape = node.params.get("shape")
    if shape is None:
        shape = (node.params.get("input_type") or {}).get("input")
    if shape is None:
        raise ValueError("Input node without a shape")
    shape = tuple(int(d) for d in np.asarray(shape).reshape(-1))
    if not shape or min(shape) < 1:
        raise ValueError(f"Input shape {shape} is empty")
    return shape


def _structure_problems(g: NirGraph) -> dict[str, str]:
    """Unknown node types, nested graphs, dangling edges and nodes on cycles."""
    import networkx as nx

    problems: dict[str, str] = {}
    for name, node in g.nodes.items():
        if node.type == "NIRGraph":
            problems[name] = "nested NIRGraph (a recurrent subgraph) is not supported"
        elif node.type not in NODE_CONVERTERS and node.type not in ("Input", "Output"):
            problems[name] = (f"unknown node type '{node.type}' (supported: Input, Output, "
                              f"{', '.join(NODE_CONVERTERS)})")
    for a, b in g.edges:
        for end in (a, b):
            if end not in g.nodes:
                problems[end] = "edge to or from a node that does not exist"
    dg = nx.DiGraph(g.edges)
    for comp in nx.strongly_connected_components(dg):
        if len(comp) > 1 or any(dg.has_edge(c, c) for c in comp):
            for c in sorted(comp):
                problems.setdefault(c, "on a cycle (recurrent edge): snnc imports "
                                       "feed-forward networks only")
    return problems


def _fold_gain(pending: dict, name: str, gain: np.ndarray | None, producer: str | None,
               single: bool, shape) -> str:
    """Multiply the input current of neuron ``name`` by ``gain``: into the Dense/Conv2d
    ``producer`` when it feeds only this neuron, else by an explicit Mul. Returns the value name
    the neuron reads."""
    if gain is None or np.all(gain == 1.0):
        return producer
    g = np.broadcast_to(gain, shape).astype(np.float64)
    op = pending[producer][0] if producer in pending and single else None
    if isinstance(op, ops.Dense) and len(shape) == 1:
        pending[producer][0] = replace(op, weight=(op.weight * g[:, None]).astype(np.float32),
                                       bias=(op.bias * g).astype(np.float32))
        return producer
    if isinstance(op, ops.Conv2d) and np.all(g == g[:, :1, :1]):
        c = g[:, 0, 0]
        pending[producer][0] = replace(op, weight=(op.weight * c[:, None, None, None])
                                       .astype(np.float32), bias=(op.bias * c).astype(np.float32))
        return producer
    const = f"{name}/gain"
    pending[const] = [ops.Constant(g.astype(np.float32)), []]
    pending[f"{name}/in"] = [ops.Mul(), [producer, const]]
    return f"{name}/in"


def _fold_scale(pending: dict, name: str, scale: np.ndarray, producer: str,
                single: bool) -> bool:
    """Fold a ``Scale`` node into the Dense / Conv2d ``producer`` that feeds only it (rows, or
    output channels with one factor each): the synapse then takes the Scale's name, and the
    graph stays quantizable (an explicit Mul is not). False when it does not fold."""
    op = pending[producer][0] if single and producer in pending else None
    per_channel = (isinstance(op, ops.Conv2d) and scale.ndim == 3
                   and np.all(scale == scale[:, :1, :1]))
    if not (isinstance(op, ops.Dense) and scale.ndim == 1) and not per_channel:
        return False
    if _fold_gain(pending, name, scale, producer, True, scale.shape) != producer:
        return False
    pending[name] = pending.pop(producer)
    return True


def _convert_all(g: NirGraph, dt: float, timesteps: int, problems: dict[str, str]):
    """IR ops (``pending``: name -> [op, input names], insertion order topological), the graph
    input's shape and the names of the output values."""
    import networkx as nx

    dg = nx.DiGraph()
    dg.add_nodes_from(g.nodes)
    dg.add_edges_from(e for e in g.edges if e[0] in g.nodes and e[1] in g.nodes)
    pending: dict[str, list] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    inputs, outputs = [], []
    # every node off the reported ones converts, so one error names all problems
    order = list(nx.topological_sort(dg.subgraph(n for n in dg if n not in problems)))
    for name in order:
        node, preds = g.nodes[name], sorted(dg.predecessors(name))
        try:
            if node.type == "Input":
                shape = _input_shape(node)
                pending[name] = [leaky.SpikeTrainInput(timesteps), ["x"]]
                inputs.append(shape)
                shapes[name] = shape
                continue
            if not preds:
                raise ValueError("has no input edge")
            if any(p not in shapes for p in preds):
                continue  # downstream of a node already reported
            src = preds[0]
            if len(preds) > 1:  # NIR sums the inputs of a node
                src = f"{name}/sum"
                pending[src] = [ops.Add(), list(preds)]
                shapes[src] = ops.Add().infer(*(shapes[p] for p in preds))
            if node.type == "Output":
                outputs.append(src)
                continue
            converted, gain = NODE_CONVERTERS[node.type](node, shapes[src], dt)
            if node.type == "Scale" and _fold_scale(pending, name, converted[0][1].value, src,
                                                    len(preds) == 1 and dg.out_degree(src) == 1):
                shapes[name] = shapes[src]
                continue
            if node.type in NEURON_TYPES:
                single = len(preds) == 1 and dg.out_degree(src) == 1
                src = _fold_gain(pending, name, gain, src, single, shapes[src])
            shape = shapes[preds[0]] if len(preds) == 1 else shapes[f"{name}/sum"]
            for suffix, op in converted:
                if isinstance(op, ops.Constant):
                    pending[name + suffix] = [op, []]
                    const = name + suffix
                    continue
                ins = [src, const] if isinstance(op, ops.Mul) else [src]
                pending[name + suffix] = [op, ins]
                shape = op.infer(shape, shape) if isinstance(op, ops.Mul) else op.infer(shape)
                src = name + suffix
            shapes[name] = tuple(shape)
        except (ShapeError, ValueError, TypeError, KeyError) as e:
            problems[name] = " ".join(str(e).split()) or type(e).__name__
    return pending, inputs, outputs


def load_nir(source, *, dt: float | None = None, timesteps: int | None = None) -> Graph:
    """Import a NIR graph (path, bytes or ``nir.NIRGraph``) as an IR graph whose input is a
    time series of ``timesteps`` steps (default DEFAULT_TIMESTEPS).

    Raises:
        InvalidModel: not a readable NIR graph.
        UnsupportedOp: one message naming every node that cannot be imported.
    """
    g = read_nir(source)
    dt = nir_dt(g, dt)
    timesteps = int(timesteps or g.metadata.get("timesteps") or DEFAULT_TIMESTEPS)
    problems = _structure_problems(g)
    pending, inputs, outputs = _convert_all(g, dt, timesteps, problems)
    for name, node in g.nodes.items():
        if node.type in ("LI", "CubaLI") and name not in problems and not any(
                o == name for o in outputs):
            problems[name] = f"{node.type} (a non-spiking readout) must feed an Output node"
    if problems:
        listed = "; ".join(f"'{n}' ({g.nodes[n].type if n in g.nodes else '?'}): {r}"
                           for n, r in problems.items())
        raise UnsupportedOp(f"{len(problems)} NIR node(s) cannot be imported: {listed}")
    if len(inputs) != 1 or not outputs:
        raise UnsupportedOp(f"snnc imports graphs with one Input and at least one Output node "
                            f"(this one has {len(inputs)} inputs, {len(outputs)} outputs)")
    b = GraphBuilder("nir")
    values = {"x": b.input("x", TensorType((timesteps, *inputs[0])))}
    for name, (op, ins) in pending.items():
        values[name] = b.add(name, op, *(values[i] for i in ins))
    return b.build([values[o] for o in outputs])
