"""Command-line interface (typer). User errors print one ``error: ...`` line and exit 2.

One module per command (``*_cmd.py``), each registering on ``snnc.cli.app.app``."""

from __future__ import annotations

import sys

import click

from snnc.cli import compile_cmd, export_cmd, inspect_cmd, report_cmd, simulate_cmd, targets_cmd  # noqa: F401 (register)
from snnc.cli import sweep_cmd  # noqa: F401 (register)
from snnc.cli.app import app
from snnc.errors import SnncError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``snnc`` script; returns the exit code."""
    try:
        app(args=argv, prog_name="snnc", standalone_mode=False)
    except SnncError as e:
        print(f"error: {' '.join(str(e).split(chr(10))[:1])}", file=sys.stderr)
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except click.ClickException as e:
        print(f"error: {e.format_message()}", file=sys.stderr)
        return 2
    return 0
