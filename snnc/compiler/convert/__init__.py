"""Conversion passes: ANN activations rewritten into spiking populations, one module per method
(rate: Rueckauer 2017; fs: Stöckl & Maass 2021; amos: Stöckl & Maass 2019; ttfs: Datta 2021),
their shared helpers, and surrogate-gradient fine-tuning of the converted network."""

from snnc.compiler.convert.amos import convert_amos
from snnc.compiler.convert.fs import convert_fs
from snnc.compiler.convert.rate import convert_rate
from snnc.compiler.convert.ttfs import convert_ttfs

__all__ = ["convert_rate", "convert_fs", "convert_amos", "convert_ttfs"]
