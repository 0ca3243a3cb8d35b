"""NIR export of rate-coded networks (https://neuroir.org, ``nir`` 1.0).

Requires: the float graph of a ``rate`` artifact (``snnc.api.float_graph``): IFNeurons
populations fed by Conv2d / Dense synapses, with Reshape (flatten) and AvgPool2d between them.
Ensures: a ``nir.NIRGraph`` with one node per snnc node (names with ``/`` -> ``.``), Input and
Output nodes, that ``nir.read`` reads back with the same arrays.

Mapping (docs/decisions.md "NIR export"):

- Dense -> ``nir.Affine``, Conv2d -> ``nir.Conv2d`` (symmetric padding only), Reshape to a
  vector -> ``nir.Flatten``, AvgPool2d -> ``nir.AvgPool2d``.
- IFNeurons(threshold=lambda, amplitude=lambda) -> ``nir.IF(r=1, v_threshold=lambda)``: the
  membrane integrates the synaptic current in ANN units. NIR neurons emit unit spikes, so the
  amplitude lambda (a spike stands for lambda of activation) is folded into the weights of the
  Conv2d / Dense that consume the population (W' = W lambda; biases unchanged). A population
  whose spikes reach anything else (an output, Add...) cannot be folded and is rejected.
- Graph metadata: ``dt`` = 1 (one snnc time step; forward Euler on ``dv/dt = r I``),
  ``reset`` = "subtract" (snnc's IF subtracts the threshold; NIR's IF node itself says reset to
  ``v_reset`` = 0, so a consumer must honour this key to reproduce snnc), ``threshold_compare``
  = ">=" (NIR writes ">"), ``timesteps`` T, ``v_init`` (v(0) in thresholds), ``input`` =
  "analog, every step", ``readout`` = "mean of the output current over T",
  ``amplitude`` = "folded into consumer weights".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from snnc.errors import BackendError
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph, Node

__all__ = ["to_nir", "write_nir", "nir_node_name", "NIR_NODES", "REFUSED"]

_FOLD_THROUGH = (ops.Reshape, ops.AvgPool2d, ops.Identity)


def nir_node_name(name: str) -> str:
    """NIR (HDF5) node name of an snnc node: ``/`` would nest HDF5 groups, so it becomes ``.``."""
    out = name.strip("/").replace("/", ".")
    return out if out not in ("", "input", "output") else f"{out}_"


def _conv_problem(n: Node) -> str | None:
    t, l, b, r = n.op.padding
    return f"asymmetric padding {n.op.padding}" if (t, l) != (b, r) else None


def _pool_problem(n: Node) -> str | None:
    return "padded or ceil_mode average pooling" if any(n.op.padding) or n.op.ceil_mode else None


def _reshape_problem(n: Node) -> str | None:
    return (f"reshape to {n.op.shape} (only flatten to a vector)" if len(n.op.shape) != 1
            else None)


# ops with a NIR node, each with the check of what NIR can express of it (IF populations are
# checked against their consumers: their amplitude is folded into the next weights)
NIR_NODES: dict[type[ops.Op], Callable[[Node], str | None]] = {
    ops.Conv2d: _conv_problem,
    ops.Dense: lambda n: None,
    ops.AvgPool2d: _pool_problem,
    ops.Reshape: _reshape_problem,
    ops.Identity: lambda n: None,
    neurons.IFNeurons: lambda n: None,
}
_NO_NODE = "no NIR node for this op"
REFUSED: dict[type[ops.Op] | ops.Role, str] = {
    neurons.SpikingMaxPool2d: "spiking max-pool gate (no NIR node selects spikes by count)",
    ops.Role.POPULATION: "only rate-coded IF neurons map to NIR",
    ops.Role.RELAY: "only rate-coded IF neurons map to NIR",
    **{role: _NO_NODE for role in (ops.Role.CONSTANT, ops.Role.SYNAPTIC, ops.Role.ELEMENTWISE,
                                   ops.Role.ROUTING, ops.Role.NONLINEAR, ops.Role.POOLING_GATE,
                                   ops.Role.ENCODER, ops.Role.READOUT)},
}


def _nir_check(op: ops.Op) -> Callable[[Node], str | None] | None:
    return next((NIR_NODES[c] for c in type(op).__mro__ if c in NIR_NODES), None)


def _problems(graph: Graph) -> list[str]:
    """Every node NIR export cannot express, as ``'name' (op): why``."""
    consumers = graph.consumers()
    out_names = {v.name for v in graph.outputs}
    bad = []
    for n in graph.nodes:
        check = _nir_check(n.op)
        if isinstance(n.op, neurons.IFNeurons):
            reasons = _unfoldable(n, consumers, out_names)
        elif check is not None:
            reasons = [r for r in (check(n),) if r is not None]
        else:
            reasons = [ops.refusal(n.op, REFUSED) or _NO_NODE]
        bad += [f"'{n.name}' ({type(n.op).__name__}): {why}" for why in reasons]
    return bad


def _unfoldable(n: Node, consumers, out_names) -> list[str]:
    """Why the amplitude of IF population ``n`` cannot be folded into its consumers' weights."""
    reasons, frontier = [], [n]
    while frontier:
        m = frontier.pop()
        if m.name in out_names:
            reasons.append("its spikes reach a graph output (amplitude cannot be folded)")
        for c in consumers.get(m.name, []):
            if isinstance(c.op, _FOLD_THROUGH):
                frontier.append(c)
            elif (not isinstance(c.op, (ops.Conv2d, ops.Dense))
                  and _nir_check(c.op) is not None):  # ops without a NIR node are reported
                # as such, not as blocking the amplitude folding
                reasons.append(f"its spikes reach '{c.name}' ({type(c.op).__name__}), not a "
                               "Conv2d/Dense (amplitude cannot be folded)")
    return reasons


def _source_amplitude(graph: Graph, value_name: str) -> float:
    """Amplitude of the IF population whose spikes arrive at ``value_name`` through routing."""
    producers = graph.producers()
    node = producers.get(value_name)
    while node is not None and isinstance(node.op, _FOLD_THROUGH):
        node = producers.get(node.inputs[0].name)
    if node is not None and isinstance(node.op, neurons.IFNeurons):
        return float(node.op.amplitude)
    return 1.0


def to_nir(graph: Graph, *, method: str = "rate"):
    """The NIR graph of a rate-coded float graph (see the module docstring for the mapping)."""
    import nir

    if method != "rate":
        raise BackendError(f"NIR export supports method 'rate' (rate-coded IF neurons), not "
                           f"'{method}'")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise BackendError("NIR export needs a graph with one input and one output")
    bad = _problems(graph)
    if bad:
        raise BackendError(f"NIR cannot express {len(bad)} layer(s): " + "; ".join(bad))
    names = {graph.inputs[0].name: "input"}
    nodes = {"input": nir.Input(input_type={"input": np.array(graph.inputs[0].shape)})}
    edges = []
    ifs = []
    for n in graph.nodes:
        op, name = n.op, nir_node_name(n.name)
        if name in nodes:
            raise BackendError(f"two layers map to the NIR node name '{name}'")
        names[n.name] = name
        in_shape = n.inputs[0].shape
        if isinstance(op, ops.Dense):
            amp = _source_amplitude(graph, n.inputs[0].name)
            node = nir.Affine(weight=(op.weight * amp).astype(np.float32),
                              bias=op.bias.astype(np.float32))
        elif isinstance(op, ops.Conv2d):
            amp = _source_amplitude(graph, n.inputs[0].name)
            node = nir.Conv2d(input_shape=tuple(int(s) for s in in_shape[1:]),
                              weight=(op.weight * amp).astype(np.float32),
                              stride=tuple(op.stride), padding=tuple(op.padding[:2]),
                              dilation=tuple(op.dilation), groups=int(op.groups),
                              bias=op.bias.astype(np.float32))
        elif isinstance(op, neurons.IFNeurons):
            shape = n.output.shape
            node = nir.IF(r=np.ones(shape, np.float32),
                          v_threshold=np.full(shape, op.threshold, np.float32))
            ifs.append(n)
        elif isinstance(op, ops.Reshape):
            node = nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0)
        elif isinstance(op, ops.AvgPool2d):
            node = nir.AvgPool2d(kernel_size=np.array(op.kernel), stride=np.array(op.stride),
                                 padding=np.array([0, 0]))
        else:  # Identity
            node = nir.Scale(scale=np.ones(n.output.shape, np.float32))
        nodes[name] = node
        edges.append((names[n.inputs[0].name], name))
    nodes["output"] = nir.Output(output_type={"output": np.array(graph.outputs[0].shape)})
    edges.append((names[graph.outputs[0].name], "output"))
    steps = {n.op.timesteps for n in ifs}
    metadata = {
        "producer": "snnc",
        "method": "rate",
        "dt": 1.0,
        "reset": "subtract",
        "threshold_compare": ">=",
        "timesteps": int(max(steps, default=1)),
        "v_init": np.array([n.op.v_init for n in ifs] or [0.0], np.float64),
        "v_init_units": "thresholds, per IF node in graph order",
        "if_nodes": ",".join(names[n.name] for n in ifs),
        "amplitude": "folded into consumer weights (IF emits unit spikes; W' = W * amplitude)",
        "input": "analog input current, every step",
        "readout": "mean over timesteps of the output node's input current",
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(graph: Graph, path: Path | str, *, method: str = "rate"):
    """Export ``graph`` to the NIR file ``path`` and check that ``nir.read`` gives back the same
    arrays. Returns the NIR graph written."""
    import nir

    g = to_nir(graph, method=method)
    nir.write(str(path), g)
    back = nir.read(str(path))
    for name, node in g.nodes.items():
        for field in ("weight", "bias", "v_threshold", "r"):
            a, b = getattr(node, field, None), getattr(back.nodes.get(name), field, None)
            if a is not None and not np.array_equal(a, b):
                raise BackendError(f"NIR round trip changed {name}.{field}")
    if sorted(g.edges) != sorted(back.edges) or not math.isclose(back.metadata["dt"], 1.0):
        raise BackendError("NIR round trip changed the graph's edges or metadata")
    return g
