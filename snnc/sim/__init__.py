"""Spiking semantics shared by the compiler and the backends: signals and counters, kernels,
few-spike coding, the float and the bit-exact (fixed-point) rule tables, and running them over a
graph. The compiler uses them to calibrate and fine-tune; the reference backend to simulate data
sets; the Lava backend to check its processes against.
"""

from snnc.sim.fixed_rules import FixedRules
from snnc.sim.float_rules import FloatRules
from snnc.sim.run import run_batches, run_once, time_steps
from snnc.sim.signals import Counters, Signal, SimulationResult

__all__ = ["FloatRules", "FixedRules", "Counters", "Signal", "SimulationResult", "run_once",
           "run_batches", "time_steps"]
