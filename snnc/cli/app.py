"""The typer application the command modules register on."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(
    name="snnc",
    help="snnc: compile trained ANNs (ONNX) into spiking networks for Loihi-class hardware.",
    epilog="Example: snnc compile examples/lenet/lenet.onnx --calib examples/lenet/calib.npz "
           "-o lenet.snnc && snnc simulate lenet.snnc --data examples/lenet/test.npz. "
           "Run snnc COMMAND --help for each command's options; docs/ has the guides.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
