"""The float rate paths' memory and cache work gives the same bits as before: spike trains in
reused buffers (``signals.Buffers``), the max-pool gate in blocks of steps with float keys
(``kernels.gate_rises``) and residual sums of a spike train in one pass
(``kernels.streamed_block``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snnc.backends.reference.simulator import simulate
from snnc.compiler.pipeline import CompileOptions, compile_graph
from snnc.ir import ops
from snnc.ir.graph import Node, TensorType, Value
from snnc.sim import kernels, signals
from snnc.sim.float_rules import FloatRules
from snnc.sim.kernels import Stepped, Train, gate_rises, linear_over_time, streamed_block
from snnc.sim.run import run_batches
from snnc.sim.signals import BufferPool, Buffers, Counters, Signal

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("kernel,steps", [((2, 2), 9), ((3, 2), 5), ((2, 2), 1)])
def test_gate_in_blocks_with_float_keys_equals_int16_keys(monkeypatch, kernel, steps):
    g = torch.Generator().manual_seed(steps)
    bits = (torch.rand(steps, 3, 2, 7, 9, generator=g) < 0.4).to(torch.float32)
    whole = gate_rises(bits.to(torch.int16), kernel)  # integer keys, one block
    assert whole.dtype == torch.int16
    for elems in (1, 200, 1 << 20):  # one step per block, a few, all
        monkeypatch.setattr(kernels, "GATE_ELEMS", elems)
        out = torch.full(whole.shape, 7.0)
        assert torch.equal(gate_rises(bits, kernel, out=out), whole.float())
        assert torch.equal(gate_rises(bits, kernel), whole.float())


def test_buffers_are_reused_only_after_release_and_only_by_their_run():
    a, other = Buffers(), Buffers()
    cpu = torch.device("cpu")
    x = a.empty((3, 4, 1237), torch.float32, cpu)
    y = a.empty((3, 4, 1237), torch.float32, cpu)
    assert x.data_ptr() != y.data_ptr()  # x is still taken
    a.release()
    assert other.empty((3, 4, 1237), torch.float32, cpu).data_ptr() not in (x.data_ptr(),
                                                                            y.data_ptr())
    z = a.empty((3, 4, 1237), torch.float32, cpu)
    assert z.data_ptr() in (x.data_ptr(), y.data_ptr())
    w = a.empty((1, 2), torch.float32, cpu)  # far too small for a big one: a fresh array
    assert w.data_ptr() not in (x.data_ptr(), y.data_ptr())
    a.release()


def test_residual_sum_of_a_train_in_one_pass_is_the_plain_sum():
    g = torch.Generator().manual_seed(1)
    bits = (torch.rand(6, 4, 3, 5, 5, generator=g) < 0.3).to(torch.float32)
    other = torch.randn(6, 4, 3, 5, 5, generator=g)
    node = Node(ops.Add(), (), Value("add", TensorType((3, 5, 5))))
    for order in ((0, 1), (1, 0)):
        sigs = [Train(bits, 3.1298565027236855, bits.sum(0)),
                Stepped(6, 4, lambda lo, hi: other[lo:hi])]
        sigs = [sigs[i] for i in order]
        plain = linear_over_time(node, [Signal(sigs[0].x), Signal(sigs[1].x)])
        assert torch.equal(torch.cat([streamed_block(node, sigs, lo, lo + 2)
                                      for lo in (0, 2, 4)]), plain)


def test_simulate_with_reused_buffers_equals_fresh_arrays():
    """Readouts and counts of the residual CNN, with and without buffers, across batches and
    runs (released buffers are overwritten by the next batch)."""
    calib = np.load(EXAMPLES / "resnet" / "calib.npz")["x"]
    graph = compile_graph(str(EXAMPLES / "resnet" / "resnet.onnx"), calib,
                          CompileOptions(method="rate", timesteps=8)).graph
    x = np.load(EXAMPLES / "resnet" / "test.npz")["x"][:7]
    runs = []
    for buffers in (None, Buffers(), Buffers()):
        counters = Counters()
        rules = FloatRules(counters)
        rules.buffers = buffers
        runs.append(run_batches(graph, rules, counters, x, 3, torch.device("cpu"),
                                torch.float32, None, buffers))
    runs.append(simulate(graph, x, batch_size=3, device="cpu"))
    first = runs[0]
    for r in runs[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(first.outputs, r.outputs))
        assert (r.spikes, r.synops, r.max_spikes) == (first.spikes, first.synops,
                                                      first.max_spikes)


def test_a_closed_run_hands_its_arrays_to_the_next_run_through_the_pool():
    cpu = torch.device("cpu")
    pool = BufferPool(limit=1 << 30)
    a = Buffers(pool)
    x = a.empty((3, 4, 1237), torch.float32, cpu)
    ptr = x.data_ptr()
    b = Buffers(pool)  # a second run while a still holds x: a fresh array
    assert b.empty((3, 4, 1237), torch.float32, cpu).data_ptr() != ptr
    a.close()
    assert Buffers(pool).empty((2, 4, 1237), torch.float32, cpu).data_ptr() == ptr
    assert pool.take(3 * 4 * 1237, torch.float32) is None  # handed out once, not twice


def test_the_pool_keeps_no_more_than_its_limit():
    cpu = torch.device("cpu")
    pool = BufferPool(limit=3 * 1000 * 4)  # room for three of the four arrays below
    run = Buffers(pool)
    for n in (1000, 1000, 1000, 1000):
        run.empty((n,), torch.float32, cpu)
    run.close()
    assert len(pool.free) == 3 and not run.free and not run.taken
    off = BufferPool(limit=0)  # SNNC_BUFFER_POOL_MB=0
    off.give([torch.empty(10)])
    assert not off.free
    pool.clear()
    assert pool.free == []


def test_repeated_simulate_calls_reuse_the_pool_and_give_the_same_results():
    calib = np.load(EXAMPLES / "resnet" / "calib.npz")["x"]
    graph = compile_graph(str(EXAMPLES / "resnet" / "resnet.onnx"), calib,
                          CompileOptions(method="rate", timesteps=8)).graph
    x = np.load(EXAMPLES / "resnet" / "test.npz")["x"][:5]
    signals.POOL.clear()
    first = simulate(graph, x, batch_size=5, device="cpu")
    kept = {b.data_ptr() for b in signals.POOL.free}
    assert kept  # the run's spike trains stayed with the process
    again = simulate(graph, x, batch_size=5, device="cpu")
    assert {b.data_ptr() for b in signals.POOL.free} == kept  # taken and given back
    assert all(np.array_equal(a, b) for a, b in zip(first.outputs, again.outputs))
    assert (again.spikes, again.synops) == (first.spikes, first.synops)
