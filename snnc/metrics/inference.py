"""Metrics of a simulation run: accuracy against labels and against the ANN (onnxruntime),
spikes, synaptic operations, latency/throughput and a compute-energy estimate.

Energy follows Datta et al. 2021 (ALGORITHMS.md §3.3, Horowitz 45 nm): the ANN costs
MACs x E_MAC (4.6 pJ); the SNN costs the MACs of layers fed by analog input x E_MAC plus every
synaptic event x E_AC (0.9 pJ). Memory and routing energy are ignored (Loihi event energies
arrive with the Loihi targets).
"""

from __future__ import annotations

import numpy as np

from snnc.ir import leaky, neurons
from snnc.ir.graph import Graph
from snnc.metrics.model_stats import macs
from snnc.metrics.tasks import TASK_METRICS

__all__ = ["E_MAC_PJ", "E_AC_PJ", "analog_macs", "ann_predict", "build_metrics"]

E_MAC_PJ = 4.6
E_AC_PJ = 0.9
_SPIKE_TRAINS = (leaky.SpikeTrainInput, leaky.QSpikeTrainInput)


def analog_macs(graph: Graph) -> int:
    """MACs per sample of synaptic layers whose input is analog (not derived from spikes).
    An imported SNN's time-series input (``SpikeTrainInput``) arrives as (graded) spike
    messages: its synapses count as synaptic events per input spike, not as MACs."""
    spiking: set[str] = {n.name for n in graph.nodes if isinstance(n.op, _SPIKE_TRAINS)}
    total = 0
    for n in graph.nodes:
        if isinstance(n.op, (neurons.HybridInputNeurons, *_SPIKE_TRAINS)):
            continue  # hybrid input: step 1 is analog, MACs downstream
        if isinstance(n.op, neurons.NEURON_OPS) or any(v.name in spiking for v in n.inputs):
            spiking.add(n.name)
            if not isinstance(n.op, neurons.NEURON_OPS):
                continue
        total += macs(n)
    return total


def _ort_errors() -> tuple[type[Exception], ...]:
    """onnxruntime's exception classes (they derive from Exception, not RuntimeError)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "EngineError",
             "RuntimeException", "InvalidProtobuf", "ModelLoaded", "NotImplemented",
             "InvalidGraph", "EPFail")
    return tuple(getattr(state, n) for n in names if hasattr(state, n))


def ann_predict(model_bytes: bytes, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Outputs of the original ONNX model on ``x`` via onnxruntime (the ANN baseline)."""
    import onnxruntime as ort

    from snnc.errors import BackendError

    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    try:
        sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        static = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
        if static is not None and static * int(np.prod(x.shape[1:])) > 2**26:
            raise BackendError(f"the ONNX model's input has a fixed batch size of {static}, too "
                               "large to pad the data to for onnxruntime (export it with a "
                               "dynamic batch axis)")
        step = static or batch_size
        outs = []
        for i in range(0, len(x), step):
            xb = x[i:i + step]
            if len(xb) < step and static is not None:  # fixed batch: pad the last chunk
                xb = np.concatenate([xb, np.zeros((step - len(xb), *xb.shape[1:]), xb.dtype)])
            outs.append(sess.run(None, {inp.name: xb})[0][:len(x) - i])
    except (RuntimeError, ValueError, *_ort_errors()) as e:
        text = " ".join(str(e).split())
        raise BackendError(f"onnxruntime cannot run the source model for the ANN baseline: "
                           f"{text[:300]}") from None
    return np.concatenate(outs)


def build_metrics(*, snn_out: np.ndarray, ann_out: np.ndarray, labels: np.ndarray | None,
                  result, ann_graph_macs: int, graph: Graph, timing: dict,
                  task: str = "classification") -> dict:
    """The ``simulate --json`` metrics; ``labels``: class labels or regression targets, as
    ``task`` (metrics/tasks.py) scores the outputs."""
    scored = TASK_METRICS[task](snn_out, ann_out, labels)
    synops = result.synops_per_sample
    # partial-sum relays (split_fanin) are hardware plumbing: their graded messages count in
    # synaptic events and energy, not in the network's spikes per neuron
    relays = {n.name for n in graph.nodes if isinstance(n.op, neurons.PartialSumRelay)}
    spikes = sum(v for k, v in result.spikes.items() if k not in relays)
    count = sum(v for k, v in result.neurons.items() if k not in relays)
    extra = {}
    if relays:
        extra = {"relay_neurons": sum(result.neurons.get(k, 0) for k in relays),
                 "relay_messages_per_sample": sum(result.spikes.get(k, 0.0) for k in relays)
                 / max(result.samples, 1)}
    return {
        "samples": result.samples,
        **scored,
        "spikes_per_neuron": spikes / max(count * result.samples, 1),
        "spikes_per_sample": spikes / max(result.samples, 1),
        "neurons": count,
        **extra,
        "latency_steps": timing["latency_steps"],
        "throughput_steps": timing["throughput_steps"],
        "synops_per_sample": synops,
        "analog_macs_per_sample": analog_macs(graph),
        "energy_uj_per_sample": (analog_macs(graph) * E_MAC_PJ + synops * E_AC_PJ) * 1e-6,
        "ann_energy_uj_per_sample": ann_graph_macs * E_MAC_PJ * 1e-6,
        # Datta's compute-energy ratio E_ANN / E_SNN (how many times less energy than the ANN)
        "energy_ratio_vs_ann": (ann_graph_macs * E_MAC_PJ
                                / max(analog_macs(graph) * E_MAC_PJ + synops * E_AC_PJ, 1e-12)),
        "max_spikes_per_neuron": (max(result.max_spikes.values())
                                  if getattr(result, "max_spikes", None) else None),
        "layers": [
            {"name": name, "neurons": count,
             "spikes_per_neuron": result.spikes.get(name, 0.0) / max(count * result.samples, 1),
             "max_spikes_per_neuron": getattr(result, "max_spikes", {}).get(name)}
            for name, count in result.neurons.items()
        ],
        "wall_s": result.wall_s,
    }

