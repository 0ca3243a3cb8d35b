"""ConvTranspose (issue 25), lowered to zero insertion and a convolution, against onnxruntime
over its attributes."""

from __future__ import annotations

import numpy as np
import pytest
from support.onnx_models import check_against_ort, one_node_model

from snnc.errors import UnsupportedOp
from snnc.ir import ops

R = np.random.default_rng(3)


def w(*shape):
    return R.standard_normal(shape).astype(np.float32)


CASES = {
    "stride2_k2": lambda: one_node_model("ConvTranspose", (3, 5, 6), initializers=[w(3, 4, 2, 2),
                                                                                   w(4)],
                                         strides=[2, 2]),
    "stride2_k4_pad1": lambda: one_node_model("ConvTranspose", (2, 4, 4),
                                              initializers=[w(2, 3, 4, 4)], strides=[2, 2],
                                              pads=[1, 1, 1, 1]),
    "stride2_k3_outpad": lambda: one_node_model("ConvTranspose", (2, 4, 5),
                                                initializers=[w(2, 3, 3, 3), w(3)],
                                                strides=[2, 2], pads=[1, 1, 1, 1],
                                                output_padding=[1, 1]),
    "stride1_k3": lambda: one_node_model("ConvTranspose", (2, 5, 5),
                                         initializers=[w(2, 2, 3, 3)]),
    "stride_3_1_dilated": lambda: one_node_model("ConvTranspose", (2, 4, 4),
                                                 initializers=[w(2, 2, 3, 2)], strides=[3, 1],
                                                 dilations=[1, 2]),
    "groups": lambda: one_node_model("ConvTranspose", (4, 3, 3),
                                     initializers=[w(4, 3, 2, 2), w(6)], strides=[2, 2], group=2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_conv_transpose_matches_onnxruntime(case):
    g = check_against_ort(CASES[case](), batch=2)
    assert sum(isinstance(n.op, ops.Conv2d) for n in g.nodes) == 1


def test_large_pads_are_refused():
    model = one_node_model("ConvTranspose", (2, 4, 4), initializers=[w(2, 2, 2, 2)],
                           strides=[2, 2], pads=[2, 2, 2, 2])
    with pytest.raises(UnsupportedOp, match=r"ConvTranspose.*pads \[2, 2, 2, 2\] larger"):
        check_against_ort(model)
