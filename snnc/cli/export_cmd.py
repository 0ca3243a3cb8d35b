"""`snnc export`: an artifact to NIR or lava-dl netx."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from snnc.cli.app import app
from snnc.cli.common import check_verbosity, print_populations


@app.command()
def export(
    artifact: Path = typer.Argument(..., show_default=False,
                                    help="A compiled artifact (.snnc directory, rate)."),
    fmt: str = typer.Option(..., "--format", show_default=False,
                            help="nir (NIR graph) or netx (lava-dl HDF5)."),
    out: Path = typer.Option(..., "-o", "--out", show_default=False,
                             help="Output file (.nir, .net)."),
    nir_reader: str = typer.Option("generic", "--nir-reader",
                                   help="NIR flavour: generic (IF, SumPool2d) or snntorch "
                                   "(LIF, AvgPool2d: runs in snntorch 1.0.0; docs/nir.md)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print the exported "
                                 "populations and the file size."),
) -> None:
    """Export a rate-coded artifact to NIR or lava-dl netx (see README "Export")."""
    from snnc.api import export_artifact, load
    from snnc.backends.nir_export import check_nir_reader

    check_verbosity(quiet, verbose)
    check_nir_reader(nir_reader, fmt)
    art = load(artifact)
    path = export_artifact(art, fmt, out, nir_reader=nir_reader)
    err = Console(stderr=True, quiet=quiet)
    if verbose:
        print_populations(art.manifest, artifact)
        err.print(f"{path.stat().st_size:,} bytes")
    err.print(f"wrote {path} ({fmt}" + (f", for {nir_reader})" if nir_reader != "generic"
                                        else ")"))
