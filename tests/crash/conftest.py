"""Crash tests: register their marker (they run in the normal suite)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: runs a real server for a while (about 15-30 s per case); part of the normal suite",
    )
