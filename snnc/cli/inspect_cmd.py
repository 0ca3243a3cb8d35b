"""`snnc inspect`: an ONNX model's layers, or an artifact's populations and placement."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from snnc.cli.app import app
from snnc.cli.common import console, print_placement


@app.command()
def inspect(
    model: Path = typer.Argument(..., show_default=False,
                                 help="An ONNX model (.onnx), a NIR graph (.nir) or a "
                                      "compiled artifact."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Show a model's layers: ops, shapes, parameter counts and MACs per layer."""
    if model.is_dir():
        _inspect_artifact(model, as_json)
        return
    from snnc.compiler.frontend import is_nir_model, load_nir, load_onnx
    from snnc.compiler.passes.canonicalize import canonicalize
    from snnc.metrics.model_stats import layer_table

    # a NIR graph's input is a time series (T, *shape), T the importer's default
    graph = load_nir(model) if is_nir_model(model) else canonicalize(load_onnx(model))
    rows = layer_table(graph)
    summary = {
        "model": str(model),
        "inputs": [{"name": v.name, "shape": list(v.shape)} for v in graph.inputs],
        "outputs": [{"name": v.name, "shape": list(v.shape)} for v in graph.outputs],
        "layers": rows,
        "params": sum(r["params"] for r in rows),
        "macs": sum(r["macs"] for r in rows),
    }
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    table = Table(title=f"{model.name}: {len(rows)} layers", show_lines=False)
    for col, just in (("layer", "left"), ("op", "left"), ("inputs", "left"),
                      ("output", "left"), ("params", "right"), ("MACs", "right")):
        table.add_column(col, justify=just)
    for r in rows:
        table.add_row(r["name"], r["op"], ", ".join(r["inputs"]), "x".join(map(str, r["shape"])),
                      f"{r['params']:,}", f"{r['macs']:,}")
    console().print(table)
    ins = ", ".join(f"{i['name']} {i['shape']}" for i in summary["inputs"])
    console().print(f"inputs: {ins} (batch axis implicit)  params: {summary['params']:,}  "
                  f"MACs/sample: {summary['macs']:,}")


def _inspect_artifact(path: Path, as_json: bool) -> None:
    """`inspect` of an artifact: loading verifies schema version and every sha256 first."""
    from snnc.api import load

    m = load(path).manifest
    keys = ("target", "method", "source_model", "source_sha256", "neurons", "populations",
            "layers", "latency_steps", "throughput_steps", "cores", "chips", "cores_lower_bound",
            "synapses")
    summary = {"artifact": str(path), "schema_version": m["schema_version"],
               **{k: m[k] for k in keys if k in m}}
    if "placement" in m:  # Loihi-class targets: per-layer slices, cores and utilization
        summary["placement"] = m["placement"]["layers"]
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    table = Table(title=f"{path.name}: {m.get('method')} on {m.get('target')} (hashes verified)")
    for col in ("population", "model", "shape", "neurons"):
        table.add_column(col)
    for p in m.get("populations", []):
        table.add_row(str(p.get("name")), str(p.get("model")),
                      "x".join(map(str, p.get("shape", []))), str(p.get("neurons")))
    console().print(table)
    if "placement" in m:
        print_placement(m)
