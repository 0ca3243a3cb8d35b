"""prepare_spiking: ANN rewrites every conversion method needs first.

* the output Softmax/LogSoftmax is dropped: classification reads the argmax of the last linear
  layer, which softmax does not change (Rueckauer's softmax-free readout);
* relu(maxpool(x)) becomes maxpool(relu(x)) (they commute), so pooling always sees neuron output.
"""

from __future__ import annotations

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


def prepare_spiking(graph: Graph) -> Graph:
    """Requires: a canonical graph. Ensures: no Softmax producing a graph output; every
    relu directly after a max-pool is moved before it. Top-1 decisions are unchanged."""
    producers = graph.producers()
    outputs = []
    for v in graph.outputs:
        p = producers.get(v.name)
        while p is not None and isinstance(p.op, ops.Softmax):
            v = p.inputs[0]
            p = producers.get(v.name)
        outputs.append(v)
    from snnc.ir.graph import eliminate_dead_nodes

    graph = eliminate_dead_nodes(graph.replace(outputs=tuple(outputs)))
    return rewrite(graph, [Rule("relu_before_maxpool", ops.Activation, relu_before_maxpool)])
