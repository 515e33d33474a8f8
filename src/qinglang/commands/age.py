"""`qinglang age`: train a platform's own age model from verified ages, and evaluate models.

Input: JSON lines as in ``blog_users_train.jsonl``: ``{user_id, age, posts: [{date, text}]}``,
optionally ``nickname``, ``bio``, ``background``, ``comments``, ``events``,
``friends_minor_share``, ``as_of`` (see `qinglang.age.infer.records`). A bad record (not JSON,
missing or wrong-typed field, absurd age) is reported on stderr as ``line N: field: reason``
and skipped; the rest are used.

``eval DATA.jsonl`` prints AUC, Brier score, precision and recall at the pack's suspect
threshold (``age.infer.suspect_under18``) and precision at 90 % recall, writes a reliability
plot (PNG), and prints as its LAST line one JSON object
``{"auc": …, "brier": …, "n": …, …}``. Modes: the shipped default (no option), ``--model PATH``
(a model from ``age train``), ``--cv K`` (nested K-fold cross-validated training on the file).

``scan ACCOUNTS --out RESULTS`` scores a file (locally or on Spark); with ``--db URL
[--platform SLUG]`` it then applies the results to that platform's age assessments (a dry run
unless ``--apply``). ``apply RESULTS --db URL`` applies a results file made elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from qinglang.age.infer.records import AgeRecord, RecordError, read_records
from qinglang.commands.common import SparkConfOption, err, fail, out, require_pyspark, spark_conf_of

if TYPE_CHECKING:
    from qinglang.api.service import Service
    from qinglang.store.models import Platform

app = typer.Typer(
    help="Age inference: train and evaluate age models (p under 18 / under 14).",
    no_args_is_help=True,
)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def load_labelled(path: Path, need_age: bool = True) -> tuple[list[AgeRecord], list[str]]:
    """Records of a JSONL file and the per-record errors (``line N: …``); fails if unreadable."""
    try:
        stream = path.open("rb")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    records: list[AgeRecord] = []
    errors: list[str] = []
    with stream:
        for n, item in read_records(stream):
            if isinstance(item, RecordError):
                errors.append(f"line {n}: {item}")
            elif need_age and item.age is None:
                errors.append(f"line {n}: age: missing (a verified age is needed here)")
            else:
                records.append(item)
    return records, errors


def _report_errors(errors: list[str]) -> None:
    for e in errors[:50]:
        err.print(f"error: {e}", highlight=False, soft_wrap=True)
    if len(errors) > 50:
        err.print(f"… and {len(errors) - 50:,} more bad records", highlight=False)


def _pack(pack: str) -> Any:
    from qinglang.policy import PolicyError, load_policy

    try:
        return load_policy(pack)
    except (PolicyError, OSError) as exc:
        fail(str(exc))


def _bar(progress: Progress) -> Callable[[str, int, int], None]:
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done)

    return update


@app.command("train")
def train_command(
    data: Annotated[Path, typer.Argument(help="JSONL with verified ages")],
    out_path: Annotated[Path, typer.Option("--out", help="model file to write (.npz)")],
    seed: int = 0,
    pack: Annotated[str, typer.Option(help="policy pack id (age of majority)")] = "cn",
) -> None:
    """Train the platform's own model from verified ages (nested CV picks C; Platt calibration)."""
    from qinglang.age.infer.model import train

    policy = _pack(pack)
    minor = int(policy.require("age.minor_below").value)
    records, errors = load_labelled(data)
    _report_errors(errors)
    y = [r.age is not None and r.age < minor for r in records]
    if sum(y) < 2 or len(y) - sum(y) < 2:
        fail(f"{data}: training needs at least 2 records under {minor} and 2 at or over it")
    with _progress() as progress:
        model = train(records, minor, seed=seed, data_name=data.name, progress=_bar(progress))
    try:
        model.save(out_path)
    except OSError as exc:
        fail(f"cannot write {out_path}: {exc.strerror}")
    meta = model.meta
    out.print(
        f"trained on {meta['rows']:,} records ({meta['positives']:,} under {minor}); "
        f"C={meta['c']}; inner-CV AUC {meta['inner_cv']['auc']:.4f}; written to {out_path}",
        highlight=False,
    )
    u14 = meta.get("under14") or {}
    if u14.get("fitted"):
        out.print(
            f"under {u14['child_below']}: own classifier ({u14['positives']:,} records), "
            f"C={u14['c']}; inner-CV AUC {u14['inner_cv']['auc']:.4f}",
            highlight=False,
        )
    elif u14:
        out.print(f"under {u14.get('child_below')}: rule, not fitted ({u14.get('rule')})")
    if errors:
        err.print(f"{len(errors):,} bad records skipped", highlight=False)


@app.command("eval")
def eval_command(
    data: Annotated[Path, typer.Argument(help="JSONL with verified ages")],
    model_path: Annotated[
        Path | None, typer.Option("--model", help="a model from `qinglang age train`")
    ] = None,
    cv: Annotated[
        int | None, typer.Option("--cv", min=2, max=20, help="K-fold CV of the trainable model")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="reliability plot PNG (default: next to the model, or ./<data>.png)"),
    ] = None,
    seed: int = 0,
    pack: Annotated[str, typer.Option(help="policy pack id (thresholds, bands)")] = "cn",
) -> None:
    """AUC, Brier, precision/recall at the pack threshold, precision at 90 % recall; JSON last."""
    from qinglang.age.infer.model import (
        DefaultModel,
        TrainedModel,
        cross_validate_ages,
        evaluate,
        reliability_png,
        score,
    )
    from qinglang.risk.model import ModelError

    if model_path is not None and cv is not None:
        fail("--model and --cv exclude each other")
    policy = _pack(pack)
    minor = int(policy.require("age.minor_below").value)
    rule = policy.rule("age.infer.suspect_under18", None)
    threshold = float(rule.value) if rule is not None and rule.value is not None else 0.5
    records, errors = load_labelled(data)
    _report_errors(errors)
    if not records:
        fail(f"{data}: no usable records")
    child = int(policy.require("age.child_below").value)
    mode = "default"
    child_fitted: str
    if cv is not None:
        y_list = [r.age is not None and r.age < minor for r in records]
        if min(sum(y_list), len(y_list) - sum(y_list)) < cv:
            fail(f"--cv {cv}: needs at least {cv} records on each side of {minor}")
        with _progress() as progress:
            res = cross_validate_ages(
                records, cv, seed, minor, progress=_bar(progress), child_below=child
            )
        y, probs, y14, p14 = res.y18, res.p18, res.y14, res.p14
        child_fitted = f"{sum(res.child_fitted)}/{len(res.child_fitted)} folds"
        mode = f"cv{cv}"
    else:
        model: DefaultModel | TrainedModel = DefaultModel()
        if model_path is not None:
            try:
                model = TrainedModel.load(model_path)
            except ModelError as exc:
                fail(str(exc))
            mode = "model"
        ests = [score(r, model, policy) for r in records]
        y = np.asarray([int(r.age is not None and r.age < minor) for r in records], np.int64)
        probs = np.asarray([e.p_under18 for e in ests])
        y14 = np.asarray([int(r.age is not None and r.age < child) for r in records], np.int64)
        p14 = np.asarray([e.p_under14 for e in ests])
        fitted = isinstance(model, TrainedModel) and bool(
            (model.meta.get("under14") or {}).get("fitted")
        )
        child_fitted = "classifier" if fitted else "rule"
    m = evaluate(y, probs, threshold)
    child_stats: dict[str, Any] = {"positives14": int(y14.sum()), "under14": child_fitted}
    if 0 < int(y14.sum()) < len(y14):
        m14 = evaluate(y14, p14, threshold)
        child_stats |= {"auc14": round(m14.auc, 4), "brier14": round(m14.brier, 4)}
    if plot is None:
        plot = (
            model_path.with_suffix(".reliability.png")
            if model_path is not None
            else Path(f"{data.stem}.{mode}.reliability.png")
        )
    try:
        reliability_png(y, probs, plot)
    except OSError as exc:
        fail(f"cannot write {plot}: {exc.strerror}")
    out.print(
        f"{m.n:,} records ({m.positives:,} under {minor}), mode {mode}\n"
        f"  AUC {m.auc:.4f}   Brier {m.brier:.4f}\n"
        f"  at threshold {threshold:.2f}: precision {m.precision:.4f}  recall {m.recall:.4f}\n"
        f"  precision at 90% recall {m.precision_at_90_recall:.4f}\n"
        f"  under {child} ({child_stats['positives14']:,} records, {child_fitted}): "
        + (
            f"AUC {child_stats['auc14']:.4f}   Brier {child_stats['brier14']:.4f}\n"
            if "auc14" in child_stats
            else "not measurable (one class only)\n"
        )
        + f"  reliability plot: {plot}"
        + (f"\n  {len(errors):,} bad records skipped" if errors else ""),
        highlight=False,
    )
    print(
        json.dumps(
            {
                **m.to_dict(),
                **child_stats,
                "mode": mode,
                "errors": len(errors),
                "plot": str(plot),
            }
        )
    )


# ---------------------------------------------------------------- batch scan
# `qinglang age scan` is added below by the batch-scan helper (qinglang.jobs.agescan).


DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="apply the results to this qinglang database (SQLite file or postgresql://…)"
    ),
]
PlatformOpt = Annotated[
    str | None, typer.Option("--platform", help="platform slug (default: the only platform)")
]
ApplyOpt = Annotated[
    bool, typer.Option("--apply", help="write the assessments (default: a dry run with --db)")
]
ChunkOpt = Annotated[int, typer.Option("--chunk", help="result rows per transaction")]


@app.command("scan")
def scan_command(
    accounts: Annotated[
        str, typer.Argument(help="accounts: JSONL or Parquet (with --spark, any path Spark reads)")
    ],
    out_path: Annotated[
        Path, typer.Option("--out", help="results: .jsonl or .parquet (summary JSON beside it)")
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="auto (by extension), jsonl or parquet")
    ] = "auto",
    spark: Annotated[
        str | None,
        typer.Option(help="run on Spark: master URL, e.g. local[2], spark://host:7077, yarn"),
    ] = None,
    spark_conf: SparkConfOption = None,
    model_path: Annotated[
        Path | None, typer.Option("--model", help="a model from `qinglang age train`")
    ] = None,
    pack: Annotated[str, typer.Option(help="policy pack id (thresholds, bands)")] = "cn",
    max_line_bytes: Annotated[int, typer.Option(help="longest JSONL record")] = 16 << 20,
    db: DbOpt = None,
    platform: PlatformOpt = None,
    apply: ApplyOpt = False,
    chunk: ChunkOpt = 500,
) -> None:
    """Score every account of a file; results, a summary table, exit 2 if any record was bad.

    With --db the results are then applied to the platform's age assessments (dry run unless
    --apply)."""
    from qinglang.jobs.agescan import ScanInputError, scan_accounts, summary_path, summary_table

    conf = spark_conf_of(spark_conf)
    if conf and spark is None:
        fail("--spark-conf applies with --spark only")
    target = _apply_target(db, platform, apply, chunk)
    policy = _pack(pack)
    model: Any = None
    if model_path is not None:
        from qinglang.age.infer.model import TrainedModel
        from qinglang.risk.model import ModelError

        try:
            model = TrainedModel.load(model_path)
        except (ModelError, OSError) as exc:
            fail(str(exc))
    if spark is not None:
        require_pyspark()
    progress = _progress()
    task = progress.add_task("scoring", total=None)

    def advance(done: int, total: int | None) -> None:
        progress.update(task, completed=done, total=total)

    try:
        with progress:
            summary = scan_accounts(
                accounts,
                out_path,
                model=model,
                policy=policy,
                spark=spark,
                progress=advance,
                fmt=fmt,
                max_line_bytes=max_line_bytes,
                spark_conf=conf,
            )
    except ScanInputError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out_path}: {exc.strerror}")
    _report_errors([f"{summary.where(i)}: {e}" for i, e in summary.errors])
    out.print(summary_table(summary))
    out.print(f"results: {out_path}; summary: {summary_path(out_path)}", highlight=False)
    bad = bool(summary.errors)
    if target is not None:
        name = str(getattr(model, "name", "trained")) if model is not None else "default"
        bad = _apply(out_path, *target, apply=apply, chunk=chunk, model_name=name) or bad
    if bad:
        raise typer.Exit(2)


# ---------------------------------------------------------------- applying results


def _apply_target(
    db: str | None, platform: str | None, apply: bool, chunk: int = 500
) -> tuple[Service, Platform] | None:
    """The service and platform results are applied to (None without --db); checked first."""
    if db is None:
        if apply or platform is not None:
            fail("--apply and --platform need --db (the database to apply the results to)")
        return None
    if chunk < 1:
        fail("--chunk: give a whole number of at least 1")
    from qinglang.commands.common import open_service
    from qinglang.commands.events import _platform

    service = open_service(db)
    return service, _platform(service, platform)


def _apply(
    results: Path,
    service: Service,
    platform: Platform,
    *,
    apply: bool,
    chunk: int,
    model_name: str,
) -> bool:
    """Apply a results file to the platform and print the summary; True if rows were invalid."""
    from qinglang.commands.consents import policy_of
    from qinglang.jobs.agescan import ScanInputError, apply_results, apply_table
    from qinglang.store.assessments import suspect_threshold

    if chunk < 1:
        fail("--chunk: give a whole number of at least 1")
    threshold = suspect_threshold(policy_of(service, platform))
    progress = _progress()
    task = progress.add_task(f"applying to {platform.slug}", total=None)
    try:
        with progress:
            summary = apply_results(
                results,
                lambda: service.tx(write=apply),
                platform.id,
                platform.slug,
                threshold=threshold,
                model=model_name,
                chunk=chunk,
                dry_run=not apply,
                progress=lambda done, _total: progress.update(task, completed=done),
            )
    except ScanInputError as exc:
        fail(str(exc))
    _report_errors([f"results row {i}: {e}" for i, e in summary.invalid])
    out.print(apply_table(summary))
    if summary.unknown_sample:
        more = summary.unknown - len(summary.unknown_sample)
        out.print(
            "unknown to the platform: "
            + ", ".join(summary.unknown_sample)
            + (f" … and {more:,} more" if more else ""),
            highlight=False,
            soft_wrap=True,
        )
    if apply:
        out.print(
            f"{summary.applied:,} assessments written in {summary.chunks:,} transactions "
            f"(threshold {threshold:.2f}, actor batch-scan)",
            highlight=False,
        )
    else:
        out.print("dry run: nothing written; add --apply to write", highlight=False)
    return bool(summary.invalid)


@app.command("apply")
def apply_command(
    results: Annotated[
        Path, typer.Argument(help="results of `qinglang age scan` (.jsonl/.parquet)")
    ],
    db: Annotated[str, typer.Option("--db", help="database URL (SQLite file or postgresql://…)")],
    platform: PlatformOpt = None,
    apply: ApplyOpt = False,
    chunk: ChunkOpt = 500,
    model_name: Annotated[
        str, typer.Option("--model-name", help="model name stored with the assessments")
    ] = "default",
) -> None:
    """Apply scan results to a platform's age assessments (dry run unless --apply)."""
    name = model_name.strip()
    if not 1 <= len(name) <= 64:
        fail("--model-name: give a name of 1 to 64 characters")
    target = _apply_target(db, platform, apply, chunk)
    assert target is not None
    if _apply(results, *target, apply=apply, chunk=chunk, model_name=name):
        raise typer.Exit(2)
