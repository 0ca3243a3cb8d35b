"""The quantization report (stored in the artifact's manifest): per synaptic layer its weight
exponent, mantissa bits, max relative error and saturated weights; per population its state
scale, threshold and bias format and saturated biases; totals. Key order is part of the
manifest's bytes: keep it."""

from __future__ import annotations

import numpy as np

from snnc.compiler.quantize.formats import (
    QuantizedBias,
    WeightQuantization,
)
from snnc.targets.target import TargetSpec, WeightFormat

__all__ = ["jsonable", "population_entry", "quantization_report", "synapse_record"]


def jsonable(x):
    """A scalar or per-channel report value as JSON (a float/int or a flat list)."""
    a = np.asarray(x)
    return a.item() if a.ndim == 0 else a.reshape(-1).tolist()


def synapse_record(name: str, dest: str, wq: WeightQuantization, w_eff: np.ndarray,
                   steps: list[int] | None, wf: WeightFormat) -> dict:
    """One synaptic layer: ``w_eff`` its weights in its destination's units of synaptic input,
    ``steps`` the per-step exponents of folded FS payloads (binary-spike targets) or None."""
    wmax = float(np.abs(w_eff).max()) if w_eff.size else 0.0
    rec = {"layer": name, "destination": dest, "weight_exp": wq.exp,
           "mantissa_bits": wq.bits, "max_rel_error": wq.max_abs_error / wmax if wmax else 0.0,
           "saturated": wq.saturated, "weights": int(w_eff.size)}
    if steps is not None:
        rec["per_step_exp"] = steps
        rec["per_step_exp_in_range"] = bool(wf.exp_min <= steps[0] and steps[1] <= wf.exp_max)
    return rec


def population_entry(name: str, model: str, sigma, bias: QuantizedBias, fields: dict) -> dict:
    """One population: common keys, then its model's ``fields`` (scales.py)."""
    return {"name": name, "model": model, "state_scale": jsonable(sigma),
            "bias_exp": bias.exp, "bias_saturated": bias.saturated, **fields}


def quantization_report(spec: TargetSpec, s_in: float, input_signed: bool, input_bits: int,
                        input_absmax: float, synapses: list[dict],
                        populations: list[dict]) -> dict:
    """The whole report: input code format, every synaptic layer and population, totals."""
    return {
        "target": spec.name,
        "input": {"scale": s_in, "bits": input_bits, "signed": bool(input_signed),
                  "absmax": float(input_absmax)},
        "synapses": synapses,
        "populations": populations,
        "weights_saturated": sum(r["saturated"] for r in synapses),
        "biases_saturated": sum(r["bias_saturated"] for r in populations),
        "max_rel_error": max((r["max_rel_error"] for r in synapses), default=0.0),
    }
