"""snnc's reference simulator against SpikingJelly and sinabs on the same converted networks.

The shipped LeNet and residual CNN (examples/lenet, examples/resnet) are converted by each tool
from the same ANN: snnc compiles the ONNX file (``--method rate``, float ``cpu`` target, and the
bit-exact ``loihi2`` target), SpikingJelly 0.0.0.0.14 converts it with
``ann2snn.Converter(mode="max")``, sinabs 3.1.3 with ``sinabs.from_model``; the torch module the
peers convert is built here from the ONNX file (same weights). All run the same MNIST test
images for the same T with one torch thread, in interleaved rounds (each round times every
tool once per row); the table gives medians in ms per sample and the ratios of the fastest peer
to snnc. The ANN's onnxruntime time per sample (one thread, batch 100) is measured in the same
rounds for the goals "rate <= 2 x T x ANN" and "fs <= 2 x K x ANN".

The peers are an optional extra (``pip install -e .[peers]``); a missing one is skipped.

Usage: python benchmarks/peers.py [--quick] [--device cpu|cuda] [--rounds 5] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

import snnc
from snnc.backends.reference.simulator import simulate

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FULL_ROWS = [("lenet", 64, 100), ("lenet", 128, 100), ("resnet", 64, 100), ("lenet", 64, 1),
             ("lenet", 64, 10), ("resnet", 64, 10), ("resnet", 64, 1)]
FS_STEPS: dict[str, int] = {}  # K of each network's fs compile
QUICK_ROWS = [("lenet", 64, 100), ("resnet", 64, 100), ("lenet", 64, 1)]


# ----------------------------------------------------------------------------- the torch ANN
class OnnxNet(nn.Module):
    """The ANN of a small ONNX CNN (Conv, Relu, MaxPool, Add, Flatten, Gemm,
    GlobalAveragePool) as a torch module with one ``nn.ReLU`` per Relu node, so the peers'
    converters find and replace them; fx-traceable (the node list is static)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        g = onnx.load(str(path)).graph
        init = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in g.initializer}
        self.input = g.input[0].name
        self.output = g.output[0].name
        self.steps: list[tuple[str, str, list[str], str]] = []
        for k, n in enumerate(g.node):
            a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
            name, ins = f"m{k}", [i for i in n.input if i not in init]
            if n.op_type == "Conv":
                w = init[n.input[1]]
                pads = list(a.get("pads", [0, 0, 0, 0]))
                m = nn.Conv2d(w.shape[1] * a.get("group", 1), w.shape[0], tuple(w.shape[2:]),
                              stride=tuple(a.get("strides", [1, 1])), padding=tuple(pads[:2]),
                              groups=a.get("group", 1), bias=len(n.input) > 2)
                m.weight.data = w
                if len(n.input) > 2:
                    m.bias.data = init[n.input[2]]
            elif n.op_type == "Gemm":
                w = init[n.input[1]]
                w = w if a.get("transB", 0) else w.t()
                m = nn.Linear(w.shape[1], w.shape[0])
                m.weight.data, m.bias.data = w.contiguous(), init[n.input[2]]
            elif n.op_type == "Relu":
                m = nn.ReLU()
            elif n.op_type == "MaxPool":
                m = nn.MaxPool2d(tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1])))
            elif n.op_type == "GlobalAveragePool":
                m = nn.AdaptiveAvgPool2d(1)
            elif n.op_type == "Flatten":
                m = nn.Flatten()
            elif n.op_type == "Add":
                m = None
            else:
                raise ValueError(f"unsupported ONNX op {n.op_type}")
            if m is not None:
                self.add_module(name, m)
            self.steps.append((n.op_type, name, ins, n.output[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {self.input: x}
        for kind, name, ins, out in self.steps:
            if kind == "Add":
                env[out] = env[ins[0]] + env[ins[1]]
            else:
                env[out] = getattr(self, name)(env[ins[0]])
        return env[self.output]


# ----------------------------------------------------------------------------- the tools
def snnc_runner(model: str, method: str, target: str, T: int | None, tmp: Path, device: str):
    src = EXAMPLES / model
    art = snnc.compile(src / f"{model}.onnx", target=target, method=method, timesteps=T,
                       calib=src / "calib.npz", out=tmp / f"{model}-{method}-{target}-{T}.snnc")

    def run(x: np.ndarray, b: int):
        return simulate(art.graph, x, batch_size=b, device=device)
    run.steps = art.manifest.get("throughput_steps", T)
    return run


def spikingjelly_runner(ann: nn.Module, calib: np.ndarray, T: int, device: str):
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.ann2snn import Converter

    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.as_tensor(calib), torch.zeros(len(calib))),
        batch_size=100)
    snn = Converter(loader, device=device, mode="max")(ann).to(device).eval()

    def run(x: np.ndarray, b: int) -> np.ndarray:
        outs = []
        with torch.no_grad():
            for lo in range(0, len(x), b):
                xb = torch.as_tensor(x[lo:lo + b], device=device)
                functional.reset_net(snn)
                acc = 0.0
                for _ in range(T):
                    acc = acc + snn(xb)
                outs.append((acc / T).cpu().numpy())
        return np.concatenate(outs)
    return run


def sinabs_runner(ann: nn.Module, T: int, device: str):
    import sinabs

    snn = sinabs.from_model(ann, input_shape=(1, 28, 28), num_timesteps=T).to(device).eval()

    def run(x: np.ndarray, b: int) -> np.ndarray:
        outs = []
        with torch.no_grad():
            for lo in range(0, len(x), b):
                xb = torch.as_tensor(x[lo:lo + b], device=device)
                snn.reset_states()
                seq = xb.unsqueeze(1).expand(len(xb), T, *xb.shape[1:]).reshape(-1, *xb.shape[1:])
                out = snn(seq).reshape(len(xb), T, -1)
                outs.append(out.mean(1).cpu().numpy())
        return np.concatenate(outs)
    return run


def ort_runner(model: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(EXAMPLES / model / f"{model}.onnx"), opts,
                                providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x, b: np.concatenate([sess.run(None, {name: x[i:i + b]})[0]
                                        for i in range(0, len(x), b)])


# ----------------------------------------------------------------------------- timing
def timed(fn, x, b) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn(x, b)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / len(x) * 1e3


def build(rows, device: str, tmp: Path, skip_exact: bool):
    """{row: {tool: runner}} for every row; the ANN rows keyed by (model, 0, 100)."""
    tools: dict = {}
    for model in sorted({r[0] for r in rows}):
        calib = np.load(EXAMPLES / model / "calib.npz")["x"].astype(np.float32)
        tools[(model, 0, 100)] = {"onnxruntime ANN": ort_runner(model)}
        for T in sorted({r[1] for r in rows if r[0] == model}):
            run = {"snnc": snnc_runner(model, "rate", "cpu", T, tmp, device)}
            if not skip_exact:
                run["snnc bit-exact"] = snnc_runner(model, "rate", "loihi2", T, tmp, device)
            for peer in ("SpikingJelly", "sinabs"):
                ann = OnnxNet(EXAMPLES / model / f"{model}.onnx").eval()
                try:
                    run[peer] = (spikingjelly_runner(ann, calib, T, device)
                                 if peer == "SpikingJelly" else sinabs_runner(ann, T, device))
                except ImportError as e:
                    print(f"{peer} skipped: {e}")
            for r in rows:
                if r[0] == model and r[1] == T:
                    tools[r] = run
        fs = snnc_runner(model, "fs", "cpu", None, tmp, device)
        tools[(model, -1, 100)] = {"snnc fs": fs}
        FS_STEPS[model] = fs.steps
    return tools


def samples_for(b: int, quick: bool) -> int:
    return {1: 5 if quick else 20, 10: 20 if quick else 50}.get(b, 100 if quick else 200)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 rows, 3 rounds, fewer samples")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--no-exact", action="store_true", help="skip the bit-exact snnc column")
    ap.add_argument("--out", type=Path, default=None, help="also write the medians as JSON")
    ap.add_argument("--only", nargs="+", default=None, metavar="MODEL",
                    help="rows of these networks only (lenet, resnet)")
    ap.add_argument("--samples", type=int, default=None,
                    help="samples per timed call at batch 100 (default 100 quick, 200 full); "
                         "more batches per call reuse the spike-train memory of the first")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.filterwarnings("ignore")
    rows = QUICK_ROWS if args.quick else FULL_ROWS
    if args.only:
        rows = [r for r in rows if r[0] in args.only]
    rounds = args.rounds or (3 if args.quick else 5)
    times: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tools = build(rows, args.device, Path(tmp), args.no_exact)
        data = {m: np.load(EXAMPLES / m / "test.npz")["x"].astype(np.float32)
                for m in {r[0] for r in tools}}
        for key, run in tools.items():  # warm-up (allocators, oneDNN kernels, fx graphs)
            for fn in run.values():
                fn(data[key[0]][:key[2]], key[2])
        for _ in range(rounds):
            for key, run in tools.items():
                b = key[2]
                n = args.samples if args.samples and b == 100 else samples_for(b, args.quick)
                x = data[key[0]][:n if key[1] > 0 else 1000]
                for tool, fn in run.items():
                    times.setdefault(key, {}).setdefault(tool, []).append(timed(fn, x, b))
    med = {k: {t: statistics.median(v) for t, v in d.items()} for k, d in times.items()}
    report(med, rows)
    if args.out:
        args.out.write_text(json.dumps({f"{k[0]} T={k[1]} batch {k[2]}": v
                                        for k, v in med.items()}, indent=1) + "\n")


def report(med: dict, rows) -> None:
    ann = {k[0]: v["onnxruntime ANN"] for k, v in med.items() if k[1] == 0}
    print(f"device: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}, "
          f"torch threads 1; ms per sample, medians")
    print("| network, T, batch | snnc | snnc bit-exact | SpikingJelly | sinabs | "
          "fastest peer / snnc | snnc / (T x ANN) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        m = med[r]
        peers = [m[p] for p in ("SpikingJelly", "sinabs") if p in m]
        cell = [f"{m[t]:.2f}" if t in m else "-" for t in ("snnc", "snnc bit-exact",
                                                           "SpikingJelly", "sinabs")]
        lead = f"{min(peers) / m['snnc']:.2f}x" if peers else "-"
        print(f"| {r[0]}, T={r[1]}, batch {r[2]} | {' | '.join(cell)} | {lead} | "
              f"{m['snnc'] / (r[1] * ann[r[0]]):.2f} |")
    for model, a in sorted(ann.items()):
        fs = med[(model, -1, 100)]["snnc fs"]
        k = FS_STEPS[model]
        print(f"{model}: onnxruntime ANN {a * 1e3:.1f} us/sample (batch 100, 1 thread); "
              f"snnc fs (K={k}) {fs:.3f} ms/sample = {fs / (k * a):.2f} x K x ANN")


if __name__ == "__main__":
    main()
