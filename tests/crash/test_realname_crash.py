"""The real-name outbox survives a SIGKILLed uploader: 10,000 reports, none lost (see driver)."""

from __future__ import annotations

import pytest

from qinglang.store.crypto import DataKey
from tests.crash.realname_driver import run


@pytest.mark.slow
def test_ten_thousand_reports_survive_a_killed_uploader(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QINGLANG_DATA_KEY", DataKey.generate().to_b64())
    result = run(db_url, reports=10_000, kill_after=3_000)
    assert result.problems == [], result.to_dict()
    assert result.distinct == 10_000
    assert result.requests >= 10_000 // 128
