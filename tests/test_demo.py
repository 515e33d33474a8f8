"""`qinglang demo`: the simulated week is deterministic for a seed, the case's offender is caught
before his fifth child contact, the compliance audit of the week runs at the end (a signed bundle
next to the database), and `--no-serve` ends with one JSON line of the figures."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from qinglang.audit.bundle import verify_bundle
from qinglang.commands import demo as demo_command
from qinglang.demo import (
    DAYS,
    OFFENDER,
    START,
    DemoResult,
    audit_dir_for,
    build_population,
    build_week,
    run_demo,
)

SMALL = 400


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    """The figures without the timings and the bundle's location (which differ between runs)."""
    out = {k: v for k, v in summary.items() if k != "seconds"}
    out["audit"] = {k: v for k, v in summary["audit"].items() if k != "bundle"}
    return out


def manifest_files(bundle: Path) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = json.loads((bundle / "MANIFEST.json").read_text())["files"]
    return files


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    path = tmp_path_factory.mktemp("demo-a") / "demo.db"
    return run_demo(seed=1, accounts=SMALL, db_path=path, console_users=False)


@pytest.fixture(scope="module")
def first_run(first: DemoResult) -> dict[str, Any]:
    return first.summary


def test_population_and_week_are_pure_functions_of_the_seed() -> None:
    a, b = build_population(3, 300), build_population(3, 300)
    assert a.people == b.people and a.friends == b.friends
    assert build_week(a, 3) == build_week(b, 3)
    assert build_population(4, 300).people != a.people
    kinds = {p.kind for p in a.people}
    assert kinds == {"adult", "guardian", "minor", "unverified_minor", "offender"}
    assert len(a.people) == 300


def test_same_seed_same_figures(first_run: dict[str, Any], tmp_path: Path) -> None:
    again = run_demo(seed=1, accounts=SMALL, db_path=tmp_path / "b.db", console_users=False)
    assert figures(again.summary) == figures(first_run)
    assert set(first_run["seconds"]) >= {"accounts", "age_inference", "week", "audit", "total"}
    # The audit finds the same: the same result and evidence files. Only the ledger head's hash
    # differs (each ledger entry carries a random nonce), and so the report that shows it, and
    # the demo's own signing key (the manifest's key fields and signature).
    a, b = Path(first_run["audit"]["bundle"]), Path(again.summary["audit"]["bundle"])
    assert a != b
    ra, rb = (json.loads((x / "result.json").read_text()) for x in (a, b))
    assert ra.pop("ledger_head")[0] == rb.pop("ledger_head")[0]
    assert ra == rb
    evidence_a, evidence_b = (
        [f for f in manifest_files(x) if f["path"].startswith("evidence/")] for x in (a, b)
    )
    assert evidence_a and evidence_a == evidence_b
    assert {f["path"] for f in manifest_files(a)} >= {"report.html", "result.json"}


def test_every_part_ran(first_run: dict[str, Any]) -> None:
    s = first_run
    assert s["accounts"] == SMALL
    assert 0 < s["unknown_age_minors_found"] <= s["minors_age_unknown"]
    assert s["suspected_adults"] == 0
    assert s["guardian_links"] > 0 and s["consents_granted"] > 0
    by_action = s["decisions_by_action"]
    follows = sum(v for k, v in by_action.items() if k.startswith("follow:"))
    exposures = sum(v for k, v in by_action.items() if k.startswith("exposure:"))
    assert s["decisions"] == s["dms_delivered"] + s["dms_denied"] + follows + exposures
    # children's videos reach strangers only with the guardian's consent to recommendation
    assert by_action["exposure:deny"] == s["impressions_withheld"] > 0
    assert by_action["exposure:allow"] > 0 and s["videos_flagged"] > 0
    assert s["messages_scanned"] == s["dms_delivered"] and s["pii_findings"] > 0
    assert s["events"] > s["decisions"]
    assert s["alerts"] >= 1


def test_the_offender_is_caught_before_his_fifth_child_contact(first_run: dict[str, Any]) -> None:
    s = first_run
    assert s["offender"] == OFFENDER
    assert s["offender_alert_at_contact"] is not None
    assert s["offender_alert_at_contact"] < 5
    blocked = s["offender_blocked_at_contact"]
    assert blocked is not None and blocked <= s["offender_alert_at_contact"] + 1
    assert s["dms_blocked_restricted"] > 0
    assert s["offender_children_reached_before_alert"] <= s["offender_alert_at_contact"]
    later = [c for c in s["offender_contacts"] if c["contact"] >= blocked]
    assert later and all(c["first_dm"] == "blocked" for c in later if c["age_known"])


def test_the_audit_of_the_week_ran_and_its_figures_are_in_the_summary(
    first: DemoResult, first_run: dict[str, Any]
) -> None:
    a = first_run["audit"]
    assert a["period"] == "2026-11-16..2026-11-22" and a["as_of"] == "2026-11-23T00:00+08:00"
    assert a["passed"] + a["failed"] + a["not_evidenced"] == a["requirements"] > 0
    assert a["failed"] == len(a["failed_requirements"]) and a["passed"] > 0
    bundle = Path(a["bundle"])
    assert bundle.parent == audit_dir_for(Path(first.db_url.removeprefix("sqlite:///")))
    assert a["bundle_verified"] and verify_bundle(bundle).ok
    result = json.loads((bundle / "result.json").read_text())
    status = {f["requirement_id"]: f["status"] for f in result["findings"]}
    assert sorted(r for r, st in status.items() if st == "fail") == a["failed_requirements"]
    # What the demo's platform does not do is found, not passed: it has no impact assessment,
    # and it reports no processing records (so consent coverage is not evidenced).
    assert status["cn.req.governance.impact_assessment"] == "fail"
    assert status["cn.req.consent.guardian_before_processing"] == "not_evidenced"
    # The ledger, stamped on the simulated clock, verifies and is in time order; the consents
    # were given before the week's activity, not at the wall-clock time the demo ran.
    assert status["cn.req.governance.ledger_intact"] == "pass"
    # What it does is evidenced: the reviewer opens the evidence before acting (logged), and
    # children's videos were pushed only within what the exposure decisions allowed.
    assert status["cn.req.storage.staff_access_logged"] == "pass"
    assert status["cn.req.sharing.consented_audience"] == "pass"
    db = sqlite3.connect(first.db_url.removeprefix("sqlite:///"))
    try:
        rows = db.execute("SELECT kind, at FROM ledger_entries ORDER BY seq").fetchall()
    finally:
        db.close()
    ats = [datetime.fromisoformat(at).replace(tzinfo=UTC) for _, at in rows]
    assert ats == sorted(ats)
    week_end = START + timedelta(days=DAYS)
    simulated = [t for (kind, _), t in zip(rows, ats, strict=True) if kind != "audit.run"]
    assert all(t <= week_end for t in simulated)
    consents = [t for (kind, _), t in zip(rows, ats, strict=True) if kind.startswith("consent.")]
    assert consents and max(consents) <= START
    assert [kind for kind, _ in rows].count("audit.run") == 1


def test_cli_no_serve_ends_with_the_figures_as_json(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("demo")(demo_command.demo)
    app.command("other")(lambda: None)  # a group, so "demo" is a subcommand as in qinglang
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--seed", "2", "--accounts", "200"])
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    figures_ = json.loads(last)
    assert figures_["seed"] == 2 and figures_["accounts"] == 200
    assert "offender_alert_at_contact" in figures_ and "total" in figures_["seconds"]
    audit = figures_["audit"]
    assert audit["passed"] + audit["failed"] + audit["not_evidenced"] == audit["requirements"]
    assert isinstance(audit["failed_requirements"], list) and audit["bundle"]
    assert "compliance audit" in result.stdout and audit["bundle"] in result.stdout
    assert "demo-reviewer" not in result.stdout  # no logins for a database that is thrown away


def test_cli_refuses_an_existing_database(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("demo")(demo_command.demo)
    app.command("other")(lambda: None)
    db = tmp_path / "exists.db"
    db.write_text("")
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--db", str(db)])
    assert result.exit_code != 0
    assert db.read_text() == ""


def test_cli_refuses_an_existing_audit_directory(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("demo")(demo_command.demo)
    app.command("other")(lambda: None)
    db = tmp_path / "fresh.db"
    audit_dir_for(db).mkdir()
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--db", str(db)])
    assert result.exit_code != 0
    assert not db.exists()
