"""`qinglang keys`: data keys for encryption at rest (rotation)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Data keys for encryption at rest.", no_args_is_help=True)
