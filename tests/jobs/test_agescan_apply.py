"""Applying `qinglang age scan` results to a platform's age assessments, on SQLite and
PostgreSQL: the same state machine as the API, verified accounts untouched, unknown accounts
counted and never created, idempotent re-runs, whole chunks after a killed run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from qinglang.jobs.agescan import apply_results, read_results, scan_accounts
from qinglang.store import assessments, ledger, repo
from qinglang.store.db import transaction
from qinglang.store.models import Account, AgeAssessment, AgeAssessmentEvent, LedgerEntry


def result(uid: str | None, p18: float, p14: float = 0.01, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "index": 0,
        "user_id": uid,
        "p_under18": p18,
        "p_under14": p14,
        "band": "16to17" if p18 >= 0.5 else "adult",
        "suspected": p18 >= 0.5,
        "suspected_child": p14 >= 0.5,
        "signals": [{"name": "grade", "weight": 2.5}, {"name": "bio", "weight": -0.25}],
        "error": None,
    }
    row.update(kw)
    return row


ROWS = [
    result("teen", 0.93),
    result("adult", 0.04),
    result("kyc-adult", 0.97),
    result("gone", 0.9),
    result("ghost", 0.99),
    result(None, 0.0, error="line 6: user_id: missing"),
    result("bad", 0.5) | {"p_under18": "high"},
    result("child", 0.99, 0.8),
]


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    lines = [json.dumps(r | {"index": i + 1}, ensure_ascii=False) for i, r in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def platform_id(session_maker: sessionmaker[Session]) -> int:
    with transaction(session_maker) as s:
        p = repo.create_platform(s, "video", "Video")
        for name in ("teen", "adult", "kyc-adult", "gone", "child", "bad"):
            repo.upsert_account(s, p.id, name)
        kyc = repo.get_account(s, p.id, "kyc-adult")
        assert kyc is not None
        assessments.verify(s, kyc, minor=False, method="id_number", actor="kyc")
        gone = repo.get_account(s, p.id, "gone")
        assert gone is not None
        gone.cancelled_at = gone.created_at
        return p.id


def tx(sm: sessionmaker[Session]) -> Callable[[], AbstractContextManager[Session]]:
    return lambda: transaction(sm)


def states(sm: sessionmaker[Session]) -> dict[str, tuple[str, float | None, bool]]:
    with sm() as s:
        rows = s.execute(
            select(Account.external_id, AgeAssessment.state, AgeAssessment.p_under18)
            .join(AgeAssessment, AgeAssessment.account_id == Account.id)
            .add_columns(AgeAssessment.suspected_child)
        )
        return {e: (st, p, c) for e, st, p, c in rows}


def counts(sm: sessionmaker[Session]) -> tuple[int, int]:
    with sm() as s:
        events = s.scalar(select(func.count()).select_from(AgeAssessmentEvent))
        entries = s.scalar(select(func.count()).select_from(LedgerEntry))
        return int(events or 0), int(entries or 0)


def test_apply_dry_run_then_apply_then_rerun(
    session_maker: sessionmaker[Session], platform_id: int, tmp_path: Path
) -> None:
    path = write(tmp_path / "results.jsonl", ROWS)
    before = counts(session_maker)
    dry = apply_results(
        path, tx(session_maker), platform_id, "video", threshold=0.5, chunk=3, dry_run=True
    )
    assert (dry.applied, dry.newly_suspected, dry.unknown) == (3, 2, 1)
    assert counts(session_maker) == before and "teen" not in states(session_maker)

    done = apply_results(path, tx(session_maker), platform_id, "video", threshold=0.5, chunk=3)
    assert done.to_dict() | {"invalid_list": []} == {
        "platform": "video",
        "dry_run": False,
        "rows": 8,
        "applied": 3,
        "newly_suspected": 2,
        "unchanged": 0,
        "unknown": 1,
        "skipped_verified": 1,
        "skipped_cancelled": 1,
        "not_scored": 1,
        "invalid": 1,
        "chunks": 2,
        "unknown_sample": ["ghost"],
        "invalid_list": [],
    }
    assert done.invalid == [(7, "p_under18: expected a probability in [0, 1], got 'high'")]
    got = states(session_maker)
    assert got["teen"] == ("verification_requested", 0.93, False)
    assert got["child"] == ("verification_requested", 0.99, True)
    assert got["adult"] == ("clear", 0.04, False)
    assert got["kyc-adult"] == ("verified_adult", None, False)  # never downgraded or rescored
    assert "gone" not in got and "ghost" not in got
    with session_maker() as s:
        assert s.scalar(select(func.count()).select_from(Account).where(
            Account.external_id == "ghost")) == 0  # fmt: skip
        teen = repo.get_account(s, platform_id, "teen")
        assert teen is not None
        row = assessments.get_assessment(s, teen.id)
        assert row is not None and row.model == "default"
        assert row.signals == [
            {"name": "grade", "weight": 2.5, "age": None},
            {"name": "bio", "weight": -0.25, "age": None},
        ]
        history = assessments.events_of(s, teen.id)
        assert [(e.transition, e.actor) for e in history] == [
            ("suspect", "batch-scan"),
            ("request_verification", "batch-scan"),
        ]
        kinds = [e.kind for e in ledger.entries_about(s, platform_id, "teen")]
        assert kinds == ["age.suspect", "age.request_verification"]
        assert ledger.verify(s, platform_id) is None
        stamp = teen.updated_at

    after = counts(session_maker)
    again = apply_results(path, tx(session_maker), platform_id, "video", threshold=0.5, chunk=3)
    assert (again.applied, again.unchanged, again.newly_suspected) == (0, 3, 0)
    assert counts(session_maker) == after and states(session_maker) == got
    with session_maker() as s:
        teen = repo.get_account(s, platform_id, "teen")
        assert teen is not None and teen.updated_at == stamp

    # a new score for a suspected account updates it without new transitions
    write(path, [result("teen", 0.88)])
    moved = apply_results(path, tx(session_maker), platform_id, "video", threshold=0.5)
    assert (moved.applied, moved.newly_suspected) == (1, 0)
    assert states(session_maker)["teen"] == ("verification_requested", 0.88, False)
    assert counts(session_maker) == after


def test_platform_threshold_decides_and_a_killed_run_leaves_whole_chunks(
    session_maker: sessionmaker[Session], platform_id: int, tmp_path: Path
) -> None:
    rows = [result(n, 0.6) for n in ("teen", "adult", "child", "bad")]
    path = write(tmp_path / "r.jsonl", rows)
    calls = {"n": 0}

    @contextmanager
    def killed() -> Iterator[Session]:
        calls["n"] += 1
        with transaction(session_maker) as s:
            yield s
            if calls["n"] == 2:
                raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        apply_results(path, killed, platform_id, "video", threshold=0.7, chunk=2)
    got = states(session_maker)
    assert set(got) - {"kyc-adult"} == {"teen", "adult"}  # the first chunk, whole
    assert got["teen"] == ("clear", 0.6, False)  # below this platform's threshold
    done = apply_results(path, tx(session_maker), platform_id, "video", threshold=0.7, chunk=2)
    assert (done.applied, done.unchanged) == (2, 2)
    assert set(states(session_maker)) == {"teen", "adult", "child", "bad", "kyc-adult"}


def _stand_in(record: dict[str, Any], model: Any, policy: Any) -> Any:
    from qinglang.age.infer import AgeEstimate, Signal

    p = 0.9 if "学生" in str(record.get("bio", "")) else 0.1
    sig = (Signal("bio", 1.5 if p > 0.5 else -1.5, "", ""),)
    uid = str(record["user_id"])
    return AgeEstimate(uid, p, 0.05, "12to15" if p > 0.5 else "adult", p >= 0.5, False, sig)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_results_of_a_scan_apply_in_either_format(
    session_maker: sessionmaker[Session], platform_id: int, tmp_path: Path, suffix: str
) -> None:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    accounts = tmp_path / "accounts.jsonl"
    accounts.write_text(
        "\n".join(
            json.dumps({"user_id": u, "bio": b}, ensure_ascii=False)
            for u, b in (("teen", "初二学生"), ("adult", "会计"), ("ghost", "学生"))
        )
        + "\nnot json\n",
        encoding="utf-8",
    )
    out = tmp_path / f"results{suffix}"
    scan_accounts(accounts, out, scorer=_stand_in)
    assert [n for n, _ in read_results(out)] == [1, 2, 3, 4]
    done = apply_results(out, tx(session_maker), platform_id, "video", threshold=0.5)
    assert (done.applied, done.newly_suspected, done.unknown, done.not_scored) == (2, 1, 1, 1)
    got = states(session_maker)
    assert got["teen"][0] == "verification_requested" and got["adult"][0] == "clear"


def test_a_missing_results_file_is_an_input_error(
    session_maker: sessionmaker[Session], platform_id: int, tmp_path: Path
) -> None:
    from qinglang.jobs.agescan import ScanInputError

    with pytest.raises(ScanInputError, match="no such file"):
        apply_results(tmp_path / "nope.jsonl", tx(session_maker), platform_id, "v", threshold=0.5)
