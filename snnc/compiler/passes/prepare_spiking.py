"""prepare_spiking: ANN rewrites every conversion method needs first.

* the output Softmax/LogSoftmax is dropped: classification reads the argmax of the last linear
  layer, which softmax does not change (Rueckauer's softmax-free readout); a reshape after a
  softmax over all of a sample's values (SqueezeNet's (1000,) -> (1000, 1, 1)) is kept, applied
  to the logits;
* relu(maxpool(x)) becomes maxpool(relu(x)) (they commute), so pooling always sees neuron output;
* two weighted layers with no nonlinearity between them are merged into one where that is exact
  and does not inflate the synapses (``fold_linear``). Pairs it leaves apart run as they are in
  float; fixed-point targets relay them afterwards (``relay``, compile_graph).
"""

from __future__ import annotations

import math

from snnc.compiler.passes.fold_linear import fold_linear
from snnc.compiler.passes.rewrite import GraphView, Rule, rewrite
from snnc.ir import ops
from snnc.ir.graph import Graph, Node
from snnc.ir.types import Value

__all__ = ["prepare_spiking"]


def relu_before_maxpool(node: Node, view: GraphView):
    if node.op.kind != "relu":
        return None
    p = view.producer(node.inputs[0])
    if p is None or type(p.op) is not ops.MaxPool2d or view.uses(node.inputs[0]) != 1:
        return None
    x = p.inputs[0]
    relu = Node(node.op, (x,), Value(f"{node.name}/pre", x.type))
    return [relu, node.replace(op=p.op, inputs=(relu.output,))]


def _without_softmax(v: Value, producers) -> tuple[Value, list[Node]] | None:
    """(the value under the output softmaxes, the reshapes between them and ``v``, outermost
    first), or None when ``v`` is not a softmax output. A reshape is passed only above a
    softmax over every value of a sample, whose argmax it keeps."""
    p, reshapes = producers.get(v.name), []
    while p is not None and isinstance(p.op, ops.Reshape):
        reshapes.append(p)
        p = producers.get(p.inputs[0].name)
    if p is None or not isinstance(p.op, ops.Softmax):
        return None
    if reshapes and math.prod(p.output.shape) != p.output.shape[p.op.axis]:
        return None
    while p is not None and isinstance(p.op, ops.Softmax):
        v = p.inputs[0]
        p = producers.get(v.name)
    return v, reshapes


def prepare_spiking(graph: Graph) -> Graph:
    """Requires: a canonical graph. Ensures: no Softmax producing a graph output; every
    relu directly after a max-pool is moved before it; consecutive weighted layers are merged as
    ``fold_linear`` says. Top-1 decisions are unchanged."""
    producers = graph.producers()
    outputs, added = [], []
    for v in graph.outputs:
        found = _without_softmax(v, producers)
        if found is None:
            outputs.append(v)
            continue
        x, reshapes = found
        for p in reversed(reshapes):  # the reshapes after the softmax, now on the logits
            out = Value(f"{p.name}/logits", type(p.output.type)(p.output.shape, x.type.dtype))
            added.append(Node(p.op, (x,), out))
            x = out
        outputs.append(x)
    from snnc.ir.graph import eliminate_dead_nodes

    graph = graph.replace(nodes=graph.nodes + tuple(added), outputs=tuple(outputs))
    graph = eliminate_dead_nodes(graph)
    graph = rewrite(graph, [Rule("relu_before_maxpool", ops.Activation, relu_before_maxpool)])
    return fold_linear(graph)
