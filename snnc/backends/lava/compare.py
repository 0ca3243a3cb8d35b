"""The bit-exact reference simulator's per-layer spike trains, to compare the Lava backend with
(tests, benchmarks): the reference backend's recorder."""

from snnc.backends.reference.record import reference_spikes

__all__ = ["reference_spikes"]
