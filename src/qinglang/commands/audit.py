"""`qinglang audit`: the yearly compliance audit of minors' personal information (条例 art. 37)
from qinglang's own records — run it, verify a signed bundle offline, import a platform's
historical logs, list the requirement catalogue; rectification measures, impact assessments and
attested documents (see docs/audit.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from qinglang.commands.common import (
    DEFAULT_DB,
    DbOption,
    SparkConfOption,
    err,
    fail,
    open_service,
    out,
    require_pyspark,
    spark_conf_of,
)

if TYPE_CHECKING:
    from qinglang.api.service import Service
    from qinglang.audit.model import AuditResult
    from qinglang.audit.run import PerMinorReader

app = typer.Typer(
    help="Compliance audit: reports, signed bundles, rectification, impact assessments.",
    no_args_is_help=True,
)

PlatformOpt = Annotated[
    str | None, typer.Option("--platform", help="platform slug (default: the only platform)")
]
KEY_ENV = "QINGLANG_AUDIT_KEY"
SUPERVISOR_README = """\
qinglang audit bundle — how to verify it offline / 如何离线核验本审计包

1. Signature over the manifest / 清单签名 (OpenSSL >= 3.0):
     openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin \\
       -in MANIFEST.json -sigfile MANIFEST.sig
   Compare the key's fingerprint with the one the platform filed / 核对公钥指纹:
     openssl pkey -pubin -in public_key.pem -outform DER | tail -c 32 | sha256sum
2. Every file's hash / 每个文件的哈希:
     jq -r '.files[] | "\\(.sha256)  \\(.path)"' MANIFEST.json | sha256sum -c -
3. No file added / 没有多出的文件:
     find . -type f ! -name MANIFEST.json ! -name MANIFEST.sig ! -name public_key.pem \\
       | sed 's|^\\./||' | sort | comm -23 - <(jq -r '.files[].path' MANIFEST.json | sort)
4. Ledger proofs / 账本证明 (ledger/proofs/*.json): each proves the entries about one child
   against the hash chain whose head is ledger/head.json; with qinglang installed:
     qinglang ledger check ledger/proofs/<child>.json
   The same steps in one command / 一条命令完成以上核验:  qinglang audit verify .
Evidence / 证据: evidence/*.csv and *.json (identifiers only, no names or birth dates),
result.json (every finding and figure), report.html and report.pdf.
"""


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _instant(raw: str, name: str) -> datetime:
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{name}: not an ISO 8601 date-time: {raw!r}")
    if at.tzinfo is None:
        fail(f"{name}: give a UTC offset, e.g. 2026-12-31T16:00:00Z")
    return at.astimezone(UTC)


def _empty_target(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        fail(f"--out {target}: exists and is not an empty directory")
    if not target.resolve().parent.is_dir():
        fail(f"--out {target}: its parent directory does not exist")


def _key_path(key: Path | None) -> Path:
    path = key or (Path(os.environ[KEY_ENV]) if os.environ.get(KEY_ENV) else None)
    if path is None:
        fail(
            f"--key: give the signing key (or set {KEY_ENV}); "
            "create one with `qinglang audit keygen PATH`"
        )
    if not path.is_file():
        fail(f"--key {path}: no such file (create one with `qinglang audit keygen {path}`)")
    from qinglang.audit import bundle as audit_bundle

    try:
        audit_bundle.load_private_key(path)
    except (ValueError, TypeError, OSError) as exc:
        fail(f"--key {path}: not an Ed25519 private key (PEM): {str(exc).splitlines()[0]}")
    return path


def _summary(result: AuditResult) -> Table:
    from qinglang.audit.model import Status

    counts = result.counts()
    table = Table(
        title=f"{result.platform_slug} · {result.period} · as of {result.as_of.isoformat()}"
    )
    table.add_column("status / 状态")
    table.add_column("findings / 项", justify="right")
    for status, label in (
        (Status.FAIL, "fail 不符合"),
        (Status.NOT_EVIDENCED, "not evidenced 无证据"),
        (Status.PASS, "pass 符合"),
    ):
        table.add_row(label, str(counts[status]))
    return table


def _reader(
    service: Service,
    spark: str | None,
    conf: dict[str, str],
    slice_rows: int | None,
    progress: Progress,
) -> PerMinorReader:
    """How the run reads the per-minor evidence: on Spark, in slices here, or in one pass."""
    from qinglang.audit import run as audit_run

    if spark is None:
        return audit_run.in_one_pass if slice_rows is None else audit_run.sliced(slice_rows)
    from qinglang.jobs.auditspark import DEFAULT_SLICE_ROWS, AuditSparkError, spark_reader

    task = progress.add_task("Spark slices / Spark 分片", total=None)

    def advance(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    try:
        return spark_reader(
            spark, service.engine.url, slice_rows or DEFAULT_SLICE_ROWS, conf, advance
        )
    except AuditSparkError as exc:
        fail(f"--spark: {exc}")


@app.command("run")
def run(
    period: Annotated[str, typer.Option(help="2026, 2026-05, 2026-Q2, 2026-H1 or A..B (days)")],
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the bundle (new or empty)")],
    key: Annotated[
        Path | None, typer.Option(help=f"Ed25519 signing key (PEM); default ${KEY_ENV}")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="read records as of this instant (default: period end or today 00:00)"
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="read activity from this instant on (e.g. when measures took effect)"),
    ] = None,
    supervisor: Annotated[
        bool,
        typer.Option(help="supervisor's bundle: add ledger proofs, measures, impact assessment"),
    ] = False,
    replay_sample: Annotated[
        int, typer.Option("--replay", min=0, help="decisions to replay")
    ] = 500,
    actor: Annotated[str, typer.Option(help="who runs the audit, for the ledger")] = "cli",
    spark: Annotated[
        str | None,
        typer.Option(
            help="read the per-minor evidence on Spark: master URL, e.g. local[2], "
            "spark://host:7077"
        ),
    ] = None,
    spark_conf: SparkConfOption = None,
    slice_rows: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="rows per slice of the per-minor evidence (Spark: per task; without --spark: "
            "read slice by slice in this process, memory bounded by a slice)",
        ),
    ] = None,
    platform: PlatformOpt = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Run the audit for a period: report (HTML, PDF), evidence, signed manifest."""
    from qinglang.audit import bundle as audit_bundle
    from qinglang.audit import report as audit_report
    from qinglang.audit import run as audit_run
    from qinglang.commands.events import _platform
    from qinglang.jobs.auditspark import AuditSparkError

    try:
        first, last = audit_run.parse_period(period)
    except audit_run.PeriodError as exc:
        fail(f"--period: {exc}")
    conf = spark_conf_of(spark_conf)
    if conf and spark is None:
        fail("--spark-conf applies with --spark only")
    if spark is not None:
        require_pyspark()
    _empty_target(out_dir)
    key_path = _key_path(key)
    service = open_service(db)
    plat = _platform(service, platform)
    policy = service.policy_for(plat)
    at = (
        _instant(as_of, "--as-of")
        if as_of
        else audit_run.default_as_of(policy, last, datetime.now(UTC))
    )
    start = _instant(since, "--since") if since else None
    if start is not None and start >= at:
        fail("--since: must be before --as-of")
    job = audit_run.RunInput(period, first, last, at, replay_sample, start)
    work = Path(tempfile.mkdtemp(prefix=".audit-", dir=out_dir.resolve().parent))
    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err
        ) as progress:
            task = progress.add_task("reading records / 读取记录", total=4)
            reader = _reader(service, spark, conf, slice_rows, progress)
            with service.tx() as s:
                result = audit_run.audit(s, service, plat, job, reader=reader)
                progress.update(task, advance=1, description="writing report / 生成报告")
                audit_report.write_report(result, work)
                progress.update(task, advance=1, description="supervisor files / 监管材料")
                if supervisor:
                    _supervisor_files(s, plat, result, work)
            progress.update(task, advance=1, description="signing / 签名")
            manifest = audit_bundle.sign_bundle(work, key_path)
            progress.update(task, advance=1, description="done / 完成")
        if out_dir.exists():
            out_dir.rmdir()
        shutil.move(str(work), str(out_dir))
    except AuditSparkError as exc:
        shutil.rmtree(work, ignore_errors=True)
        fail(f"--spark: {exc}")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    digest = hashlib.sha256(manifest.to_json()).hexdigest()
    with service.tx(write=True) as s:
        row = audit_run.record_run(
            s, plat, result, actor, digest, manifest.key_fingerprint, audit_run.location_of(out_dir)
        )
        run_id = row.id
    out.print(_summary(result))
    _say(
        f"run {run_id}: {out_dir} (manifest sha256 {digest}, key {manifest.key_fingerprint[:16]}…)"
    )


def _supervisor_files(s: Any, plat: Any, result: AuditResult, work: Path) -> None:
    from qinglang.audit import run as audit_run
    from qinglang.audit.catalogue import load_catalogue
    from qinglang.consent.canonical import canonical_json
    from qinglang.store import impact as store_impact
    from qinglang.store import rectification
    from qinglang.store.audit import latest_assessment

    ledger_dir = work / "ledger" / "proofs"
    ledger_dir.mkdir(parents=True)
    head = result.ledger_head
    (work / "ledger" / "head.json").write_bytes(
        canonical_json({"seq": head[0], "hash": head[1]} if head else {}).encode()
    )
    subjects = audit_run.proof_subjects(result)
    proofs = audit_run.ledger_proofs(s, plat, subjects, head, result.as_of)
    for i, subject in enumerate(sorted(proofs)):
        (ledger_dir / f"{i + 1:03d}.json").write_bytes(canonical_json(proofs[subject]).encode())
    today = result.as_of.astimezone(UTC).date()
    plan = rectification.export_measures(s, plat, load_catalogue(), result.as_of, today)
    (work / "measures.json").write_bytes(canonical_json(plan).encode())
    (work / "measures.csv").write_text(rectification.measures_csv(plan), encoding="utf-8")
    assessment = latest_assessment(s, plat.id, result.as_of)
    if assessment is not None:
        doc = {**store_impact.assessment_summary(assessment), "body": assessment.body}
        (work / "impact_assessment.json").write_bytes(canonical_json(doc).encode())
    (work / "README.txt").write_text(SUPERVISOR_README, encoding="utf-8")


@app.command("verify")
def verify(
    directory: Annotated[Path, typer.Argument(help="the bundle directory")],
    key: Annotated[
        Path | None, typer.Option(help="trusted public key (PEM) to check the signature against")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Verify a bundle offline: signature, every file's hash, no file added. Exit 1 if not."""
    from qinglang.audit import bundle as audit_bundle

    if not directory.is_dir():
        fail(f"{directory}: not a directory")
    if key is not None and not key.is_file():
        fail(f"--key {key}: no such file")
    try:
        report = audit_bundle.verify_bundle(directory, key)
    except audit_bundle.BundleError as exc:
        fail(f"{directory}: {exc}")
    except ValueError as exc:
        fail(f"--key {key}: {exc}")
    if as_json:
        doc = {
            "ok": report.ok,
            "files_checked": report.files_checked,
            "key_source": report.key_source,
            "key_fingerprint": report.key_fingerprint,
            "problems": [{"path": p.path, "message": p.message} for p in report.problems],
        }
        _say(json.dumps(doc, ensure_ascii=False, sort_keys=True))
    else:
        for problem in report.problems:
            _say(f"✗ {problem}")
        if report.ok:
            _say(
                f"✓ bundle verified / 审计包核验通过: {report.files_checked} files, key "
                f"{report.key_fingerprint} ({report.key_source})"
            )
    if not report.ok:
        raise typer.Exit(1)


@app.command("keygen")
def keygen(
    path: Annotated[Path, typer.Argument(help="where to write the private key (PEM)")],
) -> None:
    """Create an Ed25519 signing key (private key 0600, public key beside it as .pub)."""
    from qinglang.audit import bundle as audit_bundle

    if path.exists():
        fail(f"{path}: exists (keys are never overwritten)")
    try:
        fp = audit_bundle.generate_key(path)
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}")
    _say(f"key {path}, public key {path.with_suffix('.pub')}, fingerprint {fp}")


@app.command("import")
def import_logs(
    file: Annotated[Path, typer.Argument(help="JSON lines: processing records and events")],
    platform: PlatformOpt = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Import a platform's historical logs (all or nothing; a bad line is named)."""
    from qinglang.commands.events import _platform
    from qinglang.store import audit as store_audit

    if not file.is_file():
        fail(f"{file}: no such file")
    service = open_service(db)
    plat = _platform(service, platform)
    try:
        with file.open(encoding="utf-8") as fh, service.tx(write=True) as s:
            result = store_audit.import_history(s, plat.id, store_audit.jsonl(fh))
    except store_audit.ImportError_ as exc:
        fail(f"{file}: {exc}")
    except UnicodeError:
        fail(f"{file}: not UTF-8 text")
    _say(
        f"imported {result.processing} processing records and {result.events} events "
        f"({result.duplicates} duplicates) from {result.lines} lines"
    )


@app.command("requirements")
def requirements(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the requirement catalogue: id, area, check kind, citations."""
    from qinglang.audit.catalogue import load_catalogue

    reqs = load_catalogue()
    if as_json:
        _say(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "area": r.area,
                        "kind": r.kind,
                        "check": r.check,
                        "text_zh": r.text_zh,
                        "text_en": r.text_en,
                        "sources": [
                            {
                                "instrument": c.instrument,
                                "article": c.article,
                                "verified": c.verified,
                            }
                            for c in r.sources
                        ],
                    }
                    for r in reqs
                ],
                ensure_ascii=False,
            )
        )
        return
    table = Table(title=f"{len(reqs)} requirements / 项要求")
    for col in ("id", "area", "kind", "source"):
        table.add_column(col)
    for r in reqs:
        table.add_row(
            r.id,
            r.area,
            r.kind if r.check is None else f"{r.kind}: {r.check}",
            "; ".join(
                f"{c.instrument} {c.article}" + ("" if c.verified else " [unverified]")
                for c in r.sources
            ),
        )
    out.print(table)


def _mount_plans() -> None:
    """Mount the rectification, impact-assessment and attestation commands."""
    from qinglang.commands import audit_plan

    app.add_typer(audit_plan.measure_app, name="measure")
    app.add_typer(audit_plan.pia_app, name="pia")
    app.add_typer(audit_plan.attest_app, name="attest")


_mount_plans()
