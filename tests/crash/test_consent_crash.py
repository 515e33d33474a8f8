"""Crash safety of consents (issue 4): acknowledged writes survive SIGKILL of the server.

For each backend, 50 concurrent clients write consents for 10 s while the whole server process
group is SIGKILLed and restarted twice (see :mod:`tests.crash.crash_driver`). PostgreSQL runs
``--workers 2`` in a fresh schema; SQLite a temporary file with one worker (one writer
process). Afterwards every write acknowledged with a 2xx must be in the ledger exactly once, as
acknowledged, the consent rows must match the ledger and the chain must verify. Only counts and
correctness are asserted, never speed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from qinglang.store.crypto import DataKey

from . import crash_driver

pytestmark = pytest.mark.slow

MIN_ACKNOWLEDGED = 100


def test_acknowledged_consents_survive_server_kills(db_url: str, tmp_path: Path) -> None:
    postgres = make_url(db_url).get_backend_name() == "postgresql"
    figures = crash_driver.run(
        db_url,
        tmp_path,
        workers=2 if postgres else 1,
        data_key=DataKey.generate().to_b64() if postgres else None,
        duration=crash_driver.DURATION,
        kill_at=crash_driver.KILL_AT,
    )
    report = figures.summary()
    print("\n" + report)
    assert figures.problems == [], report
    assert figures.kills >= 2, report
    assert len(figures.restart_seconds) == figures.kills, report
    assert figures.chain == "intact", report
    assert figures.acknowledged > MIN_ACKNOWLEDGED, report
    assert figures.keyed_entries >= figures.acknowledged, report
