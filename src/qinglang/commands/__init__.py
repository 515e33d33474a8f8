"""Sub-commands of the `qinglang` CLI that work on a database (ledger, retention, keys)."""
