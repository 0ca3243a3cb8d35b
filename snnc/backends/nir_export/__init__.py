"""NIR export of rate-coded networks (https://neuroir.org), readable by nir 1.0.4 to 1.0.8.

Requires: the float graph of a ``rate`` artifact (``snnc.api.float_graph``): IFNeurons
populations fed by Conv2d / Dense synapses, with Add (residual sums), Concat (channels, into a
Conv2d / Dense), AvgPool2d, GlobalAvgPool, BatchNorm, Reshape (flatten) and Identity between.
Ensures: a ``nir.NIRGraph`` whose node names hold only ``[A-Za-z0-9_]`` and whose nodes hold
only the fields every nir version in use reads (``portable.PORTABLE_FIELDS``), that
``nir.read`` reads back with the same arrays; it computes, step by step, the currents of snnc's
reference simulator (docs/nir.md "Export"; docs/decisions.md "NIR export").

Mapping:

- Dense -> ``Affine``; Conv2d -> ``Conv2d`` (symmetric padding); BatchNorm -> a diagonal 1x1
  ``Conv2d`` or a diagonal ``Affine``; Reshape to a vector -> ``Flatten``
  over the per-sample dims (``start_dim = -rank``: readers that add the batch dim and readers
  that do not agree on negative dims); Identity -> no node.
- AvgPool2d / GlobalAvgPool -> ``SumPool2d`` (the readers that run pooling implement sum, not
  average), the 1/k factor folded into the consumer's weights.
- IFNeurons(threshold=lambda, amplitude=lambda) -> ``IF(r=1, v_threshold=lambda)``, node
  metadata ``reset="subtract"``, ``threshold_compare=">="``, ``v_init`` (v(0), ANN units),
  ``amplitude``. NIR neurons emit unit spikes: the amplitude (and any pooling factor) is a
  pending scale folded into the weights of the Conv2d / Dense that consume the spikes; an IF
  whose input arrives with a pending scale s gets ``v_threshold`` and ``v_init`` divided by s;
  where spikes reach the output, a scaling node (diagonal 1x1 Conv2d or diagonal Affine, named
  ``<value>_scale``) carries it.
- Add -> no node: NIR sums all edges into a node, so each summand's node gets an edge to each
  consumer of the sum. The summands share the scale of the first spike summand (a skip
  connection is one edge from the IF); Conv2d / Dense / BatchNorm summands used only there are
  rescaled, any other summand gets a scaling node.
- Edge order: a depth-first pre-order walk in edge order (nirtorch's deprecated ``load``, used
  by sinabs and norse) is a topological order where ``order.py`` can make it one (zero-weight
  ``<node>_order`` guide nodes for projection shortcuts and concatenation branches). Concat (channel axis) -> no node: each consumer Conv2d / Dense is split
  by input channels into one node per part (``<name>_part<i>``, the bias on part 0), all
  summed by the consumer's consumers.
- ``reader="snntorch"`` (``--nir-reader snntorch``): IF -> ``LIF`` and pools -> ``AvgPool2d``
  (no 1/k to fold), the nodes snntorch 1.0.0 runs; no residual sums or concatenations
  (readers.py).
- A 1-D network (Conv1d, 1-D pools) is written in its 2-D form (``planar.py``): every
  ``(C, L)`` value as ``(C, 1, L)``, the frontend's height reshapes gone, the input
  ``(C, 1, L)``.
- Graph metadata: ``dt`` = 1, ``timesteps`` T, ``input`` = analog current every step,
  ``readout`` = mean over T of the output node's input, plus the per-IF facts above.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from snnc.backends.nir_export.order import order_for_depth_first
from snnc.backends.nir_export.portable import check_round_trip, strip_to_portable
from snnc.backends.nir_export.problems import nir_problems
from snnc.backends.nir_export.readers import (
    NIR_READERS,
    SNNTORCH_METADATA,
    check_nir_reader,
    reader_note,
    reader_refusals,
    single_input_problems,
    snntorch_lif,
)
from snnc.backends.planar import as_planar
from snnc.errors import BackendError
from snnc.ir import neurons, ops
from snnc.ir.graph import Graph, Node

__all__ = ["NIR_NODES", "NIR_READERS", "REFUSED", "check_nir_reader", "nir_node_name", "to_nir",
           "write_nir"]

_RESERVED = ("", "input", "output", "state")


def nir_node_name(name: str) -> str:
    """NIR node name of an snnc value: every character outside ``[A-Za-z0-9_]`` (``/`` nests
    HDF5 groups, ``.`` breaks torch module names) becomes ``_``; a name that would start with a
    digit or be a reserved one gets a prefix."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name.strip("/")).strip("_")
    return out if out not in _RESERVED and not out[0].isdigit() else f"n_{out}"


# ops with a NIR mapping: the name of what each becomes (checks live in problems.py)
NIR_NODES: dict[type[ops.Op], str] = {
    ops.Conv2d: "Conv2d",
    ops.Dense: "Affine",
    ops.BatchNorm: "per-channel Conv2d / diagonal Affine",
    ops.AvgPool2d: "SumPool2d (1/k folded into the consumer)",
    ops.GlobalAvgPool: "SumPool2d over the whole map (1/HW folded into the consumer)",
    ops.Reshape: "Flatten",
    ops.Identity: "no node (edges pass through)",
    ops.Add: "no node (NIR sums the edges into a node)",
    ops.Concat: "no node (the consuming Conv2d / Dense is split by input channels)",
    neurons.IFNeurons: "IF",
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


def _f32(a) -> np.ndarray:
    return np.asarray(a, np.float32)


def _diagonal(values: np.ndarray, shape: tuple[int, ...], bias: np.ndarray | None = None):
    """A node multiplying a (C, H, W) or (F,) value by ``values`` per channel, plus ``bias``."""
    import nir

    c = len(values)
    bias = np.zeros(c) if bias is None else bias
    if len(shape) == 1:
        return nir.Affine(weight=_f32(np.diag(values)), bias=_f32(bias))
    if len(shape) == 3:
        # groups=1 with a diagonal kernel: the readers take in_channels from weight.shape[1]
        return nir.Conv2d(input_shape=tuple(int(s) for s in shape[1:]),
                          weight=_f32(np.diag(values)[:, :, None, None]), stride=(1, 1),
                          padding=(0, 0), dilation=(1, 1), groups=1, bias=_f32(bias))
    raise BackendError(f"NIR export cannot scale a value of shape {shape} (only (C, H, W) or "
                       "vectors)")


class _Builder:
    """Walks the snnc graph in order and collects NIR nodes and edges. ``sources[v]`` are the
    NIR nodes whose outputs, summed, give value ``v`` divided by ``scale[v]`` (the factor still
    to fold into a consumer); ``parts[v]`` are the inputs of a Concat value."""

    def __init__(self, graph: Graph, reader: str = "generic") -> None:
        import nir

        self.nir = nir
        self.graph = graph
        self.reader = reader
        x = graph.inputs[0]
        self.nodes = {"input": nir.Input(input_type={"input": np.array(x.shape)})}
        self.edges: list[tuple[str, str]] = []
        self.sources = {x.name: ["input"]}
        self.scale = {x.name: 1.0}
        self.parts: dict[str, tuple] = {}
        self.ifs: list[tuple[str, Node]] = []
        self.consumers = graph.consumers()
        self.shapes = {"input": tuple(x.shape)}
        self.scaled: dict[tuple[str, float], str] = {}
        self.producers = {n.name: n for n in graph.nodes}

    def add(self, name: str, node, inputs: list[str], shape: tuple) -> str:
        if name in self.nodes:
            raise BackendError(f"two layers map to the NIR node name '{name}'")
        self.nodes[name] = node
        self.shapes[name] = tuple(shape)
        self.edges += [(s, name) for s in inputs]
        return name

    def unscaled(self, value) -> list[str]:
        """Sources of ``value`` with its pending scale applied (a scaling node if needed)."""
        s = self.scale[value.name]
        return self.sources[value.name] if s == 1.0 else self._scaled(value, s)

    def synapse(self, n: Node) -> None:
        """Conv2d / Dense, split into one node per part when its input is a Concat."""
        op, v = n.op, n.inputs[0]
        parts = self.parts.get(v.name, (v,))
        offsets = np.cumsum([0] + [p.shape[0] for p in parts])
        names = []
        for i, p in enumerate(parts):
            w = op.weight[:, offsets[i]:offsets[i + 1]] * self.scale[p.name]
            b = op.bias if i == 0 else np.zeros_like(op.bias)
            name = nir_node_name(n.name) + (f"_part{i}" if len(parts) > 1 else "")
            if isinstance(op, ops.Dense):
                node = self.nir.Affine(weight=_f32(w), bias=_f32(b))
            else:
                node = self.nir.Conv2d(input_shape=tuple(int(s) for s in p.shape[1:]),
                                       weight=_f32(w), stride=tuple(op.stride),
                                       padding=tuple(op.padding[:2]),
                                       dilation=tuple(op.dilation), groups=int(op.groups),
                                       bias=_f32(b))
            names.append(self.add(name, node, self.sources[p.name], n.output.shape))
        self.sources[n.name], self.scale[n.name] = names, 1.0

    def visit(self, n: Node) -> None:
        op, v, out = n.op, (n.inputs[0] if n.inputs else None), n.name
        name = nir_node_name(out)
        if isinstance(op, (ops.Conv2d, ops.Dense)):
            return self.synapse(n)
        self.scale[out] = 1.0
        if isinstance(op, ops.Identity):
            self.sources[out], self.scale[out] = self.sources[v.name], self.scale[v.name]
        elif isinstance(op, ops.Add):
            self.sources[out], self.scale[out] = self.summands(n)
        elif isinstance(op, ops.Concat):
            self.parts[out] = n.inputs
        elif isinstance(op, neurons.IFNeurons):
            # the input arrives divided by its pending scale s: so do threshold and v(0)
            shape, s = n.output.shape, self.scale[v.name]
            if self.reader == "snntorch":
                node = snntorch_lif(self.nir, n.name, shape, op.threshold / s,
                                    _if_metadata(op, s))
            else:
                node = self.nir.IF(r=np.ones(shape, np.float32),
                                   v_threshold=np.full(shape, op.threshold / s, np.float32),
                                   metadata=_if_metadata(op, s))
            self.sources[out] = [self.add(name, node, self.sources[v.name], n.output.shape)]
            self.scale[out] = float(op.amplitude)
            self.ifs.append((name, n))
        elif isinstance(op, ops.BatchNorm):
            k = op.scale / np.sqrt(op.var + op.eps)
            node = _diagonal(k * self.scale[v.name], v.shape, op.bias - op.mean * k)
            self.sources[out] = [self.add(name, node, self.sources[v.name], n.output.shape)]
        else:  # pools and Reshape keep the pending scale (pools divide it by their window)
            node, factor = self._routing(n)
            self.sources[out] = [self.add(name, node, self.sources[v.name], n.output.shape)]
            self.scale[out] = self.scale[v.name] * factor

    def summands(self, n: Node) -> tuple[list[str], float]:
        """Sources and pending scale of an Add. NIR sums edges, so the summands need one
        scale: that of the first spike summand (whose unit spikes then need no scaling node,
        so a skip connection is one edge); summands made by a Conv2d / Dense / BatchNorm node
        used only here get their weights and bias rescaled, the rest a scaling node."""
        consumers = self.consumers
        fixed = [x for x in n.inputs if not self.rescalable(x, consumers)]
        common = self.scale[fixed[0].name] if fixed else 1.0
        sources = []
        for x in n.inputs:
            factor = self.scale[x.name] / common
            if factor == 1.0:
                sources += self.sources[x.name]
            elif x in fixed:  # a scaling node brings it to scale 1, then 1/common
                sources += self._scaled(x, factor)
            else:
                for name in self.sources[x.name]:
                    node = self.nodes[name]
                    node.weight, node.bias = _f32(node.weight * factor), _f32(node.bias * factor)
                sources += self.sources[x.name]
        return sources, common

    def rescalable(self, value, consumers) -> bool:
        """Whether ``value`` comes from weight nodes made for it alone (rescaling is exact
        up to float rounding and changes nothing else)."""
        producer = self.producers.get(value.name)
        return (producer is not None and len(consumers.get(value.name, ())) == 1
                and isinstance(producer.op, (ops.Conv2d, ops.Dense, ops.BatchNorm)))

    def _scaled(self, value, factor: float) -> list[str]:
        """A node multiplying ``value``'s sources by ``factor`` (one per value and factor)."""
        key = (value.name, factor)
        if key not in self.scaled:
            base = nir_node_name(value.name) + "_scale"
            name = base + (str(len([k for k in self.scaled if k[0] == value.name])) if any(
                k[0] == value.name for k in self.scaled) else "")
            self.add(name, _diagonal(np.full(value.shape[0], factor), value.shape),
                     self.sources[value.name], value.shape)
            self.scaled[key] = name
        return [self.scaled[key]]

    def _routing(self, n: Node):
        op, shape = n.op, n.inputs[0].shape
        if isinstance(op, ops.Reshape):
            return self.nir.Flatten(input_type={"input": np.array(shape)},
                                    start_dim=-len(shape), end_dim=-1), 1.0
        kernel = tuple(shape[1:]) if isinstance(op, ops.GlobalAvgPool) else tuple(op.kernel)
        stride = kernel if isinstance(op, ops.GlobalAvgPool) else tuple(op.stride)
        if self.reader == "snntorch":  # torch.nn.AvgPool2d: the 1/k is applied by the reader
            return self.nir.AvgPool2d(kernel_size=np.array(kernel), stride=np.array(stride),
                                      padding=np.array([0, 0])), 1.0
        node = self.nir.SumPool2d(kernel_size=np.array(kernel), stride=np.array(stride),
                                  padding=np.array([0, 0]))
        return node, 1.0 / float(np.prod(kernel))

    def finish(self, metadata: dict):
        out = self.graph.outputs[0]
        sources = self.unscaled(out)
        if len(sources) > 1:  # one edge into Output: a reader's output node does not sum
            name = self.add(nir_node_name(out.name) + "_sum",
                            _diagonal(np.ones(out.shape[0]), out.shape), sources, out.shape)
            sources = [name]
        edges = (list(self.edges) if self.reader == "snntorch"  # fx orders it by dependence
                 else order_for_depth_first(self.nodes, self.edges, self.shapes))
        self.add("output", self.nir.Output(output_type={"output": np.array(out.shape)}),
                 [], out.shape)
        edges += [(s, "output") for s in sources]
        bad = single_input_problems(edges, self.reader) if self.reader != "generic" else []
        if bad:
            raise BackendError("; ".join(bad))
        return self.nir.NIRGraph(nodes=self.nodes, edges=edges, metadata=metadata)


def _if_metadata(op: neurons.IFNeurons, scale: float = 1.0) -> dict:
    """Node metadata of an IF whose input arrives divided by ``scale`` (v_init likewise)."""
    return {"reset": "subtract", "threshold_compare": ">=",
            "v_init": float(op.v_init * op.threshold / scale), "amplitude": float(op.amplitude)}


def to_nir(graph: Graph, *, method: str = "rate", reader: str = "generic"):
    """The NIR graph of a rate-coded float graph (see the module docstring for the mapping);
    ``reader="snntorch"``: the flavour snntorch 1.0.0 runs (readers.py). Raises BackendError
    listing every layer NIR (or that reader's flavour) cannot express."""
    check_nir_reader(reader)
    if method != "rate":
        raise BackendError(f"NIR export supports method 'rate' (rate-coded IF neurons), not "
                           f"'{method}'")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise BackendError("NIR export needs a graph with one input and one output")
    planar = as_planar(graph)
    one_dimensional, graph = planar is not graph, planar
    refused = reader_refusals(reader)
    handled = {k: v for k, v in NIR_NODES.items() if k not in refused}
    bad = nir_problems(graph, handled, {**REFUSED, **refused})
    if bad:
        what = "NIR" if reader == "generic" else f"NIR for reader {reader}"
        raise BackendError(f"{what} cannot express {len(bad)} layer(s): " + "; ".join(bad)
                           + reader_note(reader))
    b = _Builder(graph, reader)
    for n in graph.nodes:
        b.visit(n)
    steps = {n.op.timesteps for _, n in b.ifs}
    metadata = {
        "producer": "snnc",
        "method": "rate",
        "dt": 1.0,
        "reset": "subtract",
        "threshold_compare": ">=",
        "timesteps": int(max(steps, default=1)),
        "v_init": np.array([n.op.v_init for _, n in b.ifs] or [0.0], np.float64),
        "v_init_units": "thresholds, per IF node in graph order",
        "if_nodes": ",".join(name for name, _ in b.ifs),
        "amplitude": "folded into consumer weights (IF emits unit spikes; W' = W * amplitude)",
        "input": "analog input current, every step",
        "readout": "mean over timesteps of the output node's input current",
    }
    if one_dimensional:
        shape = tuple(graph.inputs[0].shape)
        metadata["input"] += (f", shape {shape}: the 1-D network's (C, L) input with a unit "
                              "height axis (Conv1d and 1-D pools are written as 1 x k Conv2d "
                              "and SumPool2d)")
    if reader == "snntorch":
        metadata.update(SNNTORCH_METADATA)
    return b.finish(metadata)


def write_nir(graph: Graph, path: Path | str, *, method: str = "rate", reader: str = "generic"):
    """Export ``graph`` to the NIR file ``path`` (``reader``: see ``to_nir``), keep only
    portable fields, and check that ``nir.read`` gives back the same arrays and edges. Returns
    the NIR graph written."""
    import h5py
    import nir

    g = to_nir(graph, method=method, reader=reader)
    config, track = h5py.get_config(), h5py.get_config().track_order
    config.track_order = True  # groups iterate in creation order: readers that build their
    try:  # module in file order (nirtorch.nir_to_torch) see Input first, then topological order
        nir.write(str(path), g)
    finally:
        config.track_order = track
    strip_to_portable(path)
    check_round_trip(g, path)
    return g

