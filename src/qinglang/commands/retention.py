"""`qinglang retention`: purge personal information whose retention period has passed."""

from __future__ import annotations

import typer

app = typer.Typer(help="Retention of personal information.", no_args_is_help=True)
