"""compile(): ONNX -> converted SNN graph, pass by pass, with timing and verification."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from snnc.compiler.convert.amos import circuit_depth, convert_amos
from snnc.compiler.convert.common import neuron_depth
from snnc.compiler.convert.finetune import finetune
from snnc.compiler.convert.fs import DEFAULT_K, convert_fs
from snnc.compiler.convert.rate import DEFAULT_TIMESTEPS, convert_rate
from snnc.compiler.convert.rate_calibration import calibrate_rate
from snnc.compiler.convert.ttfs import DEFAULT_TIMESTEPS as TTFS_TIMESTEPS
from snnc.compiler.convert.ttfs import convert_ttfs
from snnc.compiler.frontend import load_onnx
from snnc.compiler.pass_runner import PassRunner
from snnc.compiler.passes.approximate_lrn import approximate_lrn
from snnc.compiler.passes.approximate_norm import approximate_norm, refuse_norms
from snnc.compiler.passes.calibrate import DEFAULT_PERCENTILE, ActivationStats, calibrate
from snnc.compiler.passes.canonicalize import canonicalize
from snnc.compiler.passes.fold_bn import fold_batchnorm
from snnc.compiler.passes.prepare_spiking import prepare_spiking
from snnc.compiler.passes.relay import relay
from snnc.compiler.placement import place, split_fanin
from snnc.compiler.quantize import quantize_with_report
from snnc.errors import SnncError
from snnc.ir import neurons
from snnc.ir.graph import Graph
from snnc.targets import load_target

__all__ = ["CompileOptions", "CompileResult", "compile_graph", "pass_plan", "METHODS",
           "timing_of"]

METHODS = ("rate", "fs", "amos", "ttfs")


@dataclass(frozen=True)
class CompileOptions:
    method: str = "fs"
    target: str = "cpu"
    timesteps: int | None = None  # rate: T (default 64); fs/amos: K of ReLU gates (default
    # 10); ttfs: T (default 5)
    percentile: float | None = None  # rate: 99.99; fs/amos: 100 (alpha from the max, as
    # ml_genn); ttfs: unused (thresholds fitted layer-wise, convert_ttfs)
    finetune_epochs: int = 0  # epochs of surrogate-gradient fine-tuning (0: none)
    seed: int = 0
    deterministic: bool = False  # fine-tuning in float64, machine-independent (finetune.py)
    approximate_lrn: bool = False  # LRN -> calibrated per-channel scale (approximate_lrn.py)
    approximate_norm: bool = False  # LayerNorm/InstanceNorm/GroupNorm -> calibrated affine map
    # (approximate_norm.py)
    rate_calibration: str = "none"  # rate: "bias" = layer-wise bias calibration
    # (convert/rate_calibration.py, Li et al. 2021)

    @property
    def effective_percentile(self) -> float:
        if self.percentile is not None:
            return self.percentile
        return DEFAULT_PERCENTILE if self.method == "rate" else 100.0

    def to_dict(self) -> dict:
        d = {"method": self.method, "target": self.target, "timesteps": self.timesteps,
             "percentile": self.percentile}
        if self.finetune_epochs:  # keys only when used: artifacts without fine-tuning unchanged
            d.update(finetune_epochs=self.finetune_epochs, seed=self.seed)
            if self.deterministic:
                d.update(deterministic=True)
        if self.approximate_lrn:
            d.update(approximate_lrn=True)
        if self.approximate_norm:
            d.update(approximate_norm=True)
        if self.rate_calibration != "none":
            d.update(rate_calibration=self.rate_calibration)
        return d


@dataclass(frozen=True)
class CompileResult:
    graph: Graph
    ann: Graph
    pass_seconds: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, dict] = field(default_factory=dict)
    placement: object | None = None  # placement.Placement for Loihi-class targets
    quantized: Graph | None = None  # fixed-point targets: the integer graph (graph stays float)
    quantization: dict | None = None  # its report (compiler.quantize.quantize_with_report)
    lrn_approximation: dict | None = None  # passes.approximate_lrn's report, when asked for
    norm_approximation: dict | None = None  # passes.approximate_norm's report, when asked for


def timing_of(graph: Graph, method: str) -> dict[str, int]:
    """latency_steps (input to decision) and throughput_steps (steps between pipelined images)."""
    if method == "nir":  # imported SNNs: every layer steps through the input's T steps
        steps = int(graph.inputs[0].shape[0])
        return {"latency_steps": steps, "throughput_steps": steps}
    pops = [n.op for n in graph.nodes if isinstance(n.op, neurons.NEURON_OPS)
            and not isinstance(n.op, neurons.PartialSumRelay)]
    if method in ("rate", "ttfs"):  # all layers step together over one window of T steps
        steps = max((p.timesteps for p in pops), default=1)
        return {"latency_steps": steps, "throughput_steps": steps}
    if method == "amos":  # every neuron is used once per image: one new image every step
        return {"latency_steps": circuit_depth(graph), "throughput_steps": 1}
    window = max((p.K for p in pops), default=1)  # all FS layers of a pipeline share the window
    return {"latency_steps": window * neuron_depth(graph), "throughput_steps": window}


def needs_relays(target: str) -> bool:
    """Whether two synaptic layers in a row need a population between them: on fixed-point
    targets every synapse carries a population's output (quantize); the float simulators
    compose them as they are, so cpu gets no relay neurons it does not need."""
    return target != "cpu" and load_target(target).fixed_point


def pass_plan(options: CompileOptions) -> list[str]:
    """Names of the passes ``compile_graph`` runs for ``options``, in order (for progress bars;
    a test checks it against ``CompileResult.pass_seconds``)."""
    names = ["frontend", "canonicalize",
             *(["approximate_norm"] if options.approximate_norm else []),
             "fold_batchnorm", "prepare_spiking",
             *(["relay"] if needs_relays(options.target) else []),
             *(["approximate_lrn"] if options.approximate_lrn else []), "calibrate",
             f"convert_{options.method}"]
    if options.method == "rate" and options.rate_calibration != "none":
        names.append("calibrate_rate")
    if options.finetune_epochs > 0:
        names.append("finetune")
    if options.target != "cpu":
        if load_target(options.target).fixed_point:
            names.append("quantize")
        names += ["split_fanin", "place"]
    return names


def prepared_ann(source) -> Graph:
    """The ANN as the conversion passes see it: frontend, canonicalize, fold_batchnorm and
    prepare_spiking applied to an ONNX model (path, bytes or ModelProto)."""
    return prepare_spiking(fold_batchnorm(canonicalize(load_onnx(source))))


def reconvert(ann: Graph, calibration: dict[str, dict], method: str, k: int) -> Graph:
    """The float fs or amos network of ``ann`` with K = ``k``, from an artifact's stored
    calibration (``manifest["calibration"]``): what ``compile --timesteps k`` gives for the same
    calibration data, without fine-tuning or quantization."""
    stats = {name: ActivationStats(**v) for name, v in calibration.items()}
    convert = {"fs": convert_fs, "amos": convert_amos}.get(method)
    if convert is None:
        raise SnncError(f"reconvert: only fs and amos codes are refitted by K, not {method!r}")
    return convert(ann, stats, k)


def compile_graph(source, calib_x: np.ndarray, options: CompileOptions,
                  on_pass: Callable[[str, float], None] | None = None,
                  check: bool = True, finetune_data=None,
                  on_epoch: Callable[..., None] | None = None) -> CompileResult:
    """Run the pass pipeline on an ONNX model (path, bytes or ModelProto). With
    ``finetune_data`` (a Dataset with labels) and ``options.finetune_epochs`` > 0 the converted
    network is fine-tuned (convert/finetune.py); ``on_epoch`` receives its progress."""
    if options.method not in METHODS:
        raise SnncError(f"unknown method {options.method!r}; available: {', '.join(METHODS)}")
    run = PassRunner(on_pass, check)
    seconds = run.seconds

    graph = run("frontend", load_onnx, source)
    graph = run("canonicalize", canonicalize, graph)
    norm_report = None
    if options.approximate_norm:
        graph, norm_report = run("approximate_norm", approximate_norm, graph, calib_x)
    else:
        refuse_norms(graph)  # a clear error naming the layer and --approximate-norm
    graph = run("fold_batchnorm", fold_batchnorm, graph)
    ann = run("prepare_spiking", prepare_spiking, graph)
    if needs_relays(options.target):
        ann = run("relay", relay, ann)
    lrn_report = None
    if options.approximate_lrn:
        ann, lrn_report = run("approximate_lrn", approximate_lrn, ann, calib_x)
    stats = run("calibrate", calibrate, ann, calib_x, options.effective_percentile)
    if options.method == "rate":
        snn = run("convert_rate", convert_rate, ann, stats, options.timesteps or DEFAULT_TIMESTEPS)
        if options.rate_calibration != "none":
            snn = run("calibrate_rate", calibrate_rate, snn, ann, calib_x,
                      options.rate_calibration)
    elif options.method == "amos":
        snn = run("convert_amos", convert_amos, ann, stats, options.timesteps or DEFAULT_K)
    elif options.method == "ttfs":
        snn = run("convert_ttfs", convert_ttfs, ann, calib_x, options.timesteps or TTFS_TIMESTEPS)
    else:
        snn = run("convert_fs", convert_fs, ann, stats, options.timesteps or DEFAULT_K)
    if finetune_data is not None and options.finetune_epochs > 0:
        snn = run("finetune", lambda g: finetune(g, finetune_data.x, finetune_data.y,
                                                 epochs=options.finetune_epochs,
                                                 seed=options.seed, on_epoch=on_epoch,
                                                 deterministic=options.deterministic), snn)
    quantized, quant_report, placement = None, None, None
    if options.target != "cpu":  # Loihi-class targets: integer formats, fan-in splits, placement
        spec = load_target(options.target)
        if spec.fixed_point:  # compiler/quantize/
            absmax = float(np.abs(calib_x).max()) if np.size(calib_x) else 1.0
            signed = bool(np.min(calib_x) < 0) if np.size(calib_x) else True
            quantized, quant_report = run(
                "quantize", lambda g: quantize_with_report(g, spec, input_absmax=absmax,
                                                           input_signed=signed), snn)
        if quantized is not None:  # `run` verifies the graphs these passes return
            quantized = run("split_fanin", split_fanin, quantized, spec)
        else:
            snn = run("split_fanin", split_fanin, snn, spec)
        placement = run("place", place, quantized if quantized is not None else snn, spec)
    calib = {k: {f: x for f, x in asdict(v).items() if x is not None} for k, v in stats.items()}
    return CompileResult(snn, ann, seconds, calib, placement, quantized, quant_report,
                         lrn_report, norm_report)
