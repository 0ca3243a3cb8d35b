"""ONNX models built at test time for the frontend's golden tests against onnxruntime.

Every builder returns an ``onnx.ModelProto`` with random but seeded weights (no training), so the
same call always gives the same model. Builders are cheap (well under a second each) and touch no
files: torch modules are exported to an in-memory buffer and loaded back.

Torch-exported models (opset 13, input ``x``, output ``logits``, dynamic batch axis ``N``):
    lenet, small_resnet, mlp, silu_se
Hand-built with ``onnx.helper`` (opset 13, symbolic batch ``N``):
    keras_nhwc (output ``probs``), bn_as_mul_add (output ``y``)

``BUILDERS`` maps names to builders; ``random_inputs`` makes a seeded feed dict for a model.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

OPSET = 13
# IR version 8 goes with opset 13 and is loadable by every onnxruntime we support.
IR_VERSION = 8


# --------------------------------------------------------------------------- torch export


def export_module(module: nn.Module, example: torch.Tensor) -> onnx.ModelProto:
    """Export ``module`` (eval mode) to an in-memory ONNX model with a dynamic batch axis."""
    module.eval()
    buf = io.BytesIO()
    torch.onnx.export(
        module, example, buf, opset_version=OPSET,
        input_names=["x"], output_names=["logits"],
        dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}}, do_constant_folding=True,
    )
    return onnx.load_from_string(buf.getvalue())


def compile_on_random_inputs(model: onnx.ModelProto, shape: tuple[int, ...], tmp_path, name: str,
                             method: str, target: str, n: int = 64):
    """Compile ``model`` with ``n`` seeded inputs uniform in [0, 1) as calibration data
    (``tmp_path``/x.npz); returns the artifact and the inputs."""
    import snnc

    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(1).uniform(size=(n, *shape)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    art = snnc.compile(path, target=target, method=method, calib=tmp_path / "x.npz",
                       out=tmp_path / f"{name}-{method}-{target}.snnc")
    return art, x


def _build(ctor: Callable[[], nn.Module], example_shape: tuple[int, ...], seed: int,
           init: Callable[[nn.Module], None] | None = None) -> onnx.ModelProto:
    """Construct and export a module under a private torch RNG, leaving the global one alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = ctor()
        if init is not None:
            with torch.no_grad():
                init(module)
        return export_module(module, torch.rand(example_shape))


class _LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def lenet(seed: int = 0) -> onnx.ModelProto:
    """LeNet-5-style CNN on (N, 1, 28, 28): conv/ReLU/maxpool x2, flatten, Gemm/ReLU, Gemm."""
    return _build(_LeNet, (1, 1, 28, 28), seed)


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout)
    )


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.a = _conv_bn(cin, cout, 3, stride)
        self.b = _conv_bn(cout, cout, 3)
        self.proj = _conv_bn(cin, cout, 1, stride) if (stride != 1 or cin != cout) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.proj is None else self.proj(x)
        return F.relu(self.b(F.relu(self.a(x))) + skip)


class _SmallResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(1, 8, 3)
        self.block1 = _ResBlock(8, 8)
        self.block2 = _ResBlock(8, 16, stride=2)
        # A BN that follows an Add, not a conv: the exporter cannot fold it away.
        self.post_bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.block1(F.relu(self.stem(x))), 2)
        x = F.relu(self.post_bn(self.block2(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _randomize_bn(module: nn.Module) -> None:
    """Give every BatchNorm non-trivial statistics and affine parameters (fresh ones are 0/1)."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c) * 0.5)
            m.running_var.copy_(torch.rand(c) * 1.5 + 0.25)
            m.weight.copy_(torch.rand(c) + 0.5)
            m.bias.copy_(torch.randn(c) * 0.2)


def small_resnet(seed: int = 0) -> onnx.ModelProto:
    """Small ResNet on (N, 1, 28, 28) with randomized BatchNorm statistics and residual Adds.

    Stem conv+BN+ReLU (8 ch), an identity residual block, maxpool, a stride-2 block to 16 ch with
    a 1x1 conv+BN projection on the skip, a BatchNorm after the last Add, GAP and a Linear.
    With constant folding the exporter folds conv-following BNs into the convs, so the graph
    keeps one ``BatchNormalization`` node (after the Add).
    """
    return _build(_SmallResNet, (1, 1, 28, 28), seed, init=_randomize_bn)


def mlp(seed: int = 0) -> onnx.ModelProto:
    """MLP on (N, 20): Linear(20->32)-ReLU-Linear(32->16)-ReLU-Linear(16->10), exported as Gemm."""
    def ctor() -> nn.Module:
        return nn.Sequential(
            nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10)
        )

    return _build(ctor, (1, 20), seed)


class _ManualSiLU(nn.Module):
    def __init__(self, swapped: bool = False) -> None:
        super().__init__()
        self.swapped = swapped

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * x if self.swapped else x * torch.sigmoid(x)


class _SiluSE(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.act = act
        self.se1 = nn.Linear(16, 4)
        self.se2 = nn.Linear(4, 16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.act(self.conv1(x)), 2)
        x = self.act(self.conv2(x))
        # Squeeze-excite: the gate is Sigmoid of a *different* tensor than the one it multiplies,
        # which a SiLU pattern matcher must not confuse with x * Sigmoid(x).
        s = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        s = torch.sigmoid(self.se2(F.relu(self.se1(s))))
        x = x * s.unsqueeze(-1).unsqueeze(-1)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def silu_se(seed: int = 0, silu: str = "module") -> onnx.ModelProto:
    """Conv+SiLU CNN on (N, 1, 16, 16) with a squeeze-excite block (sigmoid-gated channel Mul).

    ``silu`` picks how SiLU is written in torch: ``"module"`` (``nn.SiLU``), ``"manual"``
    (``x * torch.sigmoid(x)``) or ``"manual_swapped"`` (``torch.sigmoid(x) * x``). At opset 13
    torch exports ``nn.SiLU`` as ``Mul(x, Sigmoid(x))`` too, so the first two give the same
    graph structure; the swapped form flips the Mul operands.
    """
    acts = {"module": nn.SiLU, "manual": _ManualSiLU,
            "manual_swapped": lambda: _ManualSiLU(swapped=True)}
    if silu not in acts:
        raise ValueError(f"silu must be one of {sorted(acts)}, got {silu!r}")
    return _build(lambda: _SiluSE(acts[silu]()), (1, 1, 16, 16), seed)


def silu_se_manual(seed: int = 0) -> onnx.ModelProto:
    """``silu_se`` with SiLU written by hand as ``x * torch.sigmoid(x)``."""
    return silu_se(seed, silu="manual")


# --------------------------------------------------------------------------- onnx.helper graphs


class _ConcatThenRelu(nn.Module):
    """SqueezeNet's fire module as the CIFAR model exports it: the 1x1 and 3x3 expand branches
    are concatenated before their ReLU, so the population reads a Concat of two convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.e1, self.e3 = nn.Conv2d(8, 6, 1), nn.Conv2d(8, 6, 3, padding=1)
        self.head = nn.Linear(12 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.squeeze(x))
        h = F.relu(torch.cat([self.e1(h), self.e3(h)], 1))
        return self.head(torch.flatten(h, 1))


def concat_then_relu(seed: int = 0) -> onnx.ModelProto:
    """A fire module on (N, 1, 14, 14) whose expand branches meet in a Concat before the ReLU;
    on 64-axon cores its 3x3 branch (8 x 9 inputs per neuron) must be split."""
    return _build(_ConcatThenRelu, (1, 1, 14, 14), seed)


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array, name=name)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="snnc-tests")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def keras_nhwc(seed: int = 0) -> onnx.ModelProto:
    """Keras/tf2onnx-style NHWC classifier on (N, 8, 8, 3), built with ``onnx.helper``.

    Transpose to NCHW -> Conv(3->4, 3x3, pads 1) -> Relu -> Transpose back to NHWC -> Reshape to
    (N, -1) via the Shape -> Gather(0) -> Unsqueeze -> Concat([-1]) idiom -> MatMul (256, 5) ->
    Add bias -> Softmax. Output ``probs``: (N, 5).
    """
    rng = np.random.default_rng(seed)
    f32 = np.float32
    inits = [
        _init("conv_w", (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(f32)),
        _init("conv_b", (rng.standard_normal(4) * 0.1).astype(f32)),
        _init("gather_idx", np.array(0, dtype=np.int64)),
        _init("unsq_axes", np.array([0], dtype=np.int64)),
        _init("minus_one", np.array([-1], dtype=np.int64)),
        _init("fc_w", (rng.standard_normal((256, 5)) * 0.1).astype(f32)),
        _init("fc_b", (rng.standard_normal(5) * 0.1).astype(f32)),
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x_nchw", "conv_w", "conv_b"], ["conv"],
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("Transpose", ["relu"], ["relu_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Shape", ["relu_nhwc"], ["shape"]),
        helper.make_node("Gather", ["shape", "gather_idx"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "unsq_axes"], ["batch_1d"]),
        helper.make_node("Concat", ["batch_1d", "minus_one"], ["new_shape"], axis=0),
        helper.make_node("Reshape", ["relu_nhwc", "new_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "fc_w"], ["mm"]),
        helper.make_node("Add", ["mm", "fc_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "keras_nhwc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 8, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 5])],
        initializer=inits,
    )
    return _model(graph)


def bn_as_mul_add(seed: int = 0) -> onnx.ModelProto:
    """A BatchNorm exported as elementwise ops, built with ``onnx.helper``.

    Conv(3->4, 3x3, pads 1) -> Mul(scale, shape [1, 4, 1, 1]) -> Add(shift, [1, 4, 1, 1]) -> Relu
    on (N, 3, 8, 8). The scale is gamma / sqrt(var + eps) of a random BN and includes a negative
    channel, so folding it into the conv must flip that channel's sign. Output ``y``.
    """
    rng = np.random.default_rng(seed)
    f32 = np.float32
    gamma = rng.uniform(0.5, 1.5, 4) * np.array([1, 1, -1, 1])
    var = rng.uniform(0.25, 2.0, 4)
    mean = rng.standard_normal(4) * 0.5
    beta = rng.standard_normal(4) * 0.2
    scale = gamma / np.sqrt(var + 1e-5)
    shift = beta - mean * scale
    inits = [
        _init("conv_w", (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(f32)),
        _init("conv_b", (rng.standard_normal(4) * 0.1).astype(f32)),
        _init("bn_scale", scale.reshape(1, 4, 1, 1).astype(f32)),
        _init("bn_shift", shift.reshape(1, 4, 1, 1).astype(f32)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["conv"],
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["conv", "bn_scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "bn_shift"], ["shifted"]),
        helper.make_node("Relu", ["shifted"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "bn_as_mul_add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])],
        initializer=inits,
    )
    return _model(graph)


# --------------------------------------------------------------------------- helpers for tests


BUILDERS: dict[str, Callable[..., onnx.ModelProto]] = {
    "lenet": lenet,
    "small_resnet": small_resnet,
    "mlp": mlp,
    "silu_se": silu_se,
    "silu_se_manual": silu_se_manual,
    "keras_nhwc": keras_nhwc,
    "bn_as_mul_add": bn_as_mul_add,
}


def random_inputs(model: onnx.ModelProto, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded float32 inputs in [0, 1) for every graph input; symbolic dims become ``batch``."""
    rng = np.random.default_rng(seed)
    init_names = {t.name for t in model.graph.initializer}
    feeds = {}
    for inp in model.graph.input:
        if inp.name in init_names:  # old-style models list initializers as inputs too
            continue
        dims = [d.dim_value if d.HasField("dim_value") else batch
                for d in inp.type.tensor_type.shape.dim]
        feeds[inp.name] = rng.random(dims, dtype=np.float32)
    return feeds
