"""`qinglang ledger`: verify a platform's hash chain, export and check proof bundles."""

from __future__ import annotations

import typer

app = typer.Typer(help="The tamper-evident consent ledger.", no_args_is_help=True)
