"""BatchNormalization (inference) and LRN."""

from __future__ import annotations

import numpy as np

from snnc.compiler.frontend.registry import converter
from snnc.ir import ops


@converter("BatchNormalization", since=1)
def convert_batch_norm(ctx, x, scale, bias, mean, var, *, epsilon=1e-5, momentum=0.9, spatial=1,
                       is_test=1, training_mode=0, consumed_inputs=None):
    if not spatial:
        ctx.fail("spatial=0 (per-element statistics) unsupported")
    if training_mode:
        ctx.fail("training_mode=1 unsupported (export the model in eval mode)")
    arrays = [ctx.constant(a, name).astype(np.float32).reshape(-1)
              for a, name in ((scale, "scale"), (bias, "B"), (mean, "mean"), (var, "var"))]
    return ctx.add(ops.BatchNorm(*arrays, eps=float(epsilon)), x)


@converter("LRN", since=1)
def convert_lrn(ctx, x, *, size, alpha=1e-4, beta=0.75, bias=1.0):
    return ctx.add(ops.LRN(int(size), float(alpha), float(beta), float(bias)), x)
