"""`snnc targets`: the built-in hardware targets."""

from __future__ import annotations

import json

import typer

from snnc.cli.app import app
from snnc.cli.common import console


@app.command()
def targets(
    as_json: bool = typer.Option(False, "--json", help="Print the full target descriptions."),
) -> None:
    """List the built-in hardware targets and their main limits."""
    from snnc.targets import builtin_targets, format_targets, load_target, target_to_dict

    specs = [load_target(name) for name in builtin_targets()]
    if as_json:
        print(json.dumps({s.name: target_to_dict(s) for s in specs}, indent=1))
        return
    console().print(format_targets(specs))
