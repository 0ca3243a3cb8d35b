"""Export a rate-coded network to NIR and to lava-dl netx, read both back and check them.

    .venv/bin/python examples/export.py [--lava-samples 1] [--limit 100]

NIR and netx express rate-coded IF networks made of conv/dense layers (README "Export"): the
shipped LeNet is refused (its spiking max-pool has no NIR or netx equivalent), so this example
trains the max-pool-free digits CNN of examples/from_pytorch.py, compiles it with
``--method rate``, then

1. writes ``digits.nir``, reads it back with ``nir.read`` (same weights as the artifact) and
   runs it in sinabs and norse (``sinabs.from_nir``, ``norse.torch.from_nir``, those installed;
   docs/nir.md), printing their top-1 agreement with snnc's reference simulator;
2. writes ``digits.net`` and loads it with lava-dl's ``netx.hdf5.Network``; runs the first
   ``--lava-samples`` test images through it in Lava (``Loihi2SimCfg``, fixed point) and
   compares its decision with snnc's numpy model of the netx semantics (``simulate_netx``)
   and with snnc's own reference simulator.

Same from the command line: ``snnc export ART.snnc --format nir -o digits.nir``. The last
line printed is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

import snnc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from from_pytorch import digits, digits_cnn, train

TIMESTEPS = 32


def read_nir(path: Path) -> dict:
    """Node types of a NIR file read back with ``nir.read``."""
    import nir

    graph = nir.read(str(path))
    kinds = sorted(type(n).__name__ for n in graph.nodes.values())
    return {"nodes": len(graph.nodes), "edges": len(graph.edges), "node_types": kinds}


def nir_in_readers(path: Path, x: np.ndarray, steps: int) -> dict:
    """Mean output over ``steps`` of the NIR file run in sinabs and norse (those installed), the
    image fed as input current every step (docs/nir.md "Loading the file")."""
    import contextlib
    import io
    import warnings

    import nir

    graph, xt, outs = nir.read(str(path)), torch.as_tensor(x), {}
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        with contextlib.suppress(ImportError):
            import sinabs

            model = sinabs.from_nir(graph, batch_size=len(x), num_timesteps=steps)
            out, _ = model(xt.unsqueeze(1).expand(-1, steps, *xt.shape[1:]).flatten(0, 1))
            outs["sinabs.from_nir"] = out.reshape(len(x), steps, -1).mean(1).numpy()
        with contextlib.suppress(ImportError):
            import norse.torch

            model, state, total = norse.torch.from_nir(graph), None, 0.0
            for _ in range(steps):
                out, state = model(xt, state)
                total = total + out
            outs["norse.torch.from_nir"] = (total / steps).numpy()
    return outs


def run_netx_in_lava(path: Path, x: np.ndarray, steps: int) -> np.ndarray:
    """The readout ``v`` of a netx file run in Lava on one sample ``x`` (C, H, W)."""
    import contextlib
    import io

    import h5py

    with contextlib.redirect_stdout(io.StringIO()):  # lava-dl prints a notice on import
        from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer

    from snnc.backends.netx_export import INPUT_MESSAGE_BITS

    with h5py.File(path, "r") as f:  # input scale chosen by the exporter
        input_exp = int(f["snnc/input_exp"][()])
    net = netx.hdf5.Network(net_config=str(path), input_message_bits=INPUT_MESSAGE_BITS)
    graded = np.rint(x * 2.0 ** input_exp).astype(np.int32).transpose(2, 1, 0)  # CHW -> WHC
    src = RingBuffer(data=np.repeat(graded[..., None], steps, axis=-1))
    src.s_out.connect(net.inp)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        return net.layers[-1].neuron.v.get().astype(np.int64)
    finally:
        net.stop()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30, help="training epochs of the torch model")
    p.add_argument("--limit", type=int, default=100, help="test images for the agreement checks")
    p.add_argument("--lava-samples", type=int, default=1, help="test images run in Lava (0: skip)")
    p.add_argument("--out", type=Path, default=Path("out/examples/export"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    x_train, y_train, x_test, y_test = digits()
    x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    model = train(digits_cnn(), x_train, y_train, epochs=args.epochs)
    art = snnc.from_torch(model, torch.zeros(1, 1, 8, 8), calib=x_train[:256], method="rate",
                          timesteps=TIMESTEPS, out=args.out / "digits-rate.snnc")
    m = art.simulate((x_test, y_test))
    print(f"rate artifact {art.path}: SNN accuracy {m.accuracy:.2%} on {m.samples} images")

    # 1. NIR: write, read back
    nir_path = art.export("nir", args.out / "digits.nir")
    nir_info = read_nir(nir_path)
    print(f"wrote {nir_path}; nir.read: {nir_info['nodes']} nodes {nir_info['node_types']}")

    from snnc.api import float_graph
    from snnc.backends.reference.simulator import simulate

    graph = float_graph(art)
    snn_top = simulate(graph, x_test, device="cpu").outputs[0].argmax(1)
    nir_agreement = {name: float(np.mean(out.argmax(1) == snn_top))
                     for name, out in nir_in_readers(nir_path, x_test, TIMESTEPS).items()}
    for name, agree in nir_agreement.items():
        print(f"{name} ran {nir_path}: top-1 agreement with snnc's reference "
              f"{agree:.2%}")

    # 2. netx: write, numpy model of its semantics, Lava
    from snnc.backends.netx_export import netx_layers, simulate_netx

    net_path = art.export("netx", args.out / "digits.net")
    layers = netx_layers(graph)
    steps = TIMESTEPS + len(layers)  # one step of delay per synapse
    _, v = simulate_netx(graph, x_test, steps)
    netx_top = v.argmax(1)
    netx_agreement = float(np.mean(netx_top == snn_top))
    netx_accuracy = float(np.mean(netx_top == y_test))
    print(f"wrote {net_path}; netx semantics (simulate_netx): accuracy {netx_accuracy:.2%}, "
          f"top-1 agreement with snnc's reference {netx_agreement:.2%}")
    lava_equal = None
    if args.lava_samples > 0:
        lava_v = [run_netx_in_lava(net_path, x_test[i], steps) for i in range(args.lava_samples)]
        lava_equal = all(np.array_equal(lv, v[i]) for i, lv in enumerate(lava_v))
        print(f"netx.hdf5.Network ran {args.lava_samples} image(s) in Lava: readout equal to "
              f"simulate_netx bit for bit: {lava_equal}")
    result = {"accuracy": m.accuracy, "samples": m.samples, "nir_file": str(nir_path),
              **{f"nir_{k}": v for k, v in nir_info.items()}, "nir_agreement": nir_agreement,
              "netx_file": str(net_path),
              "netx_layers": len(layers), "netx_accuracy": netx_accuracy,
              "netx_agreement": netx_agreement, "lava_samples": args.lava_samples,
              "lava_equal": lava_equal}
    print("RESULT " + json.dumps(result))
    return result


if __name__ == "__main__":
    main()
