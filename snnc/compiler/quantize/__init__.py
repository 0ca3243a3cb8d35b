"""quantize: converted (float) SNN graph -> fixed-point graph for a Loihi-class target.

Modules by concern: ``formats`` (weight/bias/input number formats), ``units`` (payload unit
maps), ``payloads`` (what each value carries: ``PAYLOAD_RULES``, ``SENDS``), ``destinations``
(which population each synaptic current reaches), ``scales`` (state scales and integer neuron
parameters per population type: ``SCALES``), ``lowering`` (float op -> integer op(s):
``LOWERING``, and ``REFUSED``), ``report`` (the manifest's quantization report) and
``quantize_pass`` (the pass).
"""

from snnc.compiler.quantize.formats import (
    INPUT_BITS,
    NotQuantizable,
    WeightQuantization,
    mantissa_max,
    quantize_weights,
    synapse_bits,
    weight_exponent,
)
from snnc.compiler.quantize.lowering import LOWERING, REFUSED
from snnc.compiler.quantize.payloads import PAYLOAD_RULES, SENDS
from snnc.compiler.quantize.quantize_pass import quantize, quantize_with_report
from snnc.compiler.quantize.scales import SCALES

__all__ = [
    "INPUT_BITS",
    "LOWERING",
    "PAYLOAD_RULES",
    "REFUSED",
    "SCALES",
    "SENDS",
    "NotQuantizable",
    "WeightQuantization",
    "mantissa_max",
    "quantize",
    "quantize_weights",
    "quantize_with_report",
    "synapse_bits",
    "weight_exponent",
]
