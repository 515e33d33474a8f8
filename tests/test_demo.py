"""`qinglang demo`: the simulated week is deterministic for a seed, the case's offender is caught
before his fifth child contact, and `--no-serve` ends with one JSON line of the figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from qinglang.commands import demo as demo_command
from qinglang.demo import OFFENDER, build_population, build_week, run_demo

SMALL = 400


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "seconds"}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("demo-a") / "demo.db"
    return run_demo(seed=1, accounts=SMALL, db_path=path, console_users=False).summary


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
    assert set(first_run["seconds"]) >= {"accounts", "age_inference", "week", "total"}


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
