"""`qinglang risk`: train a grooming classifier on a platform's own labelled conversations, and
evaluate it, the default cue detector, or the risk engine over labelled event streams.

``eval FILE.csv`` reads ``segment,label`` rows (a conversation flattened to one line, label 1 =
predatory) and prints precision, recall, F0.5 and the counts; its LAST line is one JSON object
``{"precision": …, "recall": …, "f05": …, "n": …, "mode": …}``. Modes:

- default: the untrained cue detector `qinglang.risk.cues.score_conversation`, flagging at the
  pack's ``risk.alert.review_threshold``;
- ``--model PATH``: a model written by ``qinglang risk train``, at its own threshold;
- ``--cv K``: K-fold cross-validated training and evaluation of the trainable model on the file
  (nested: each fold's C and threshold come from its training rows only);
- ``--events FILE.jsonl``: labelled event scenarios through `qinglang.risk.engine.RiskEngine`;
  also reports how many messages were read before the first alert (format below).

Events file: one JSON object a line, each with ``"scenario": "<id>"`` and one of

- an event, with the fields of `qinglang.risk.events` (``id``, ``kind``, ``at``, ``actor``, …);
- an account: ``{"scenario": …, "account": "u1", "age": 11}`` (``age`` null: unknown;
  optional ``"restricted": true``);
- a link: ``{"scenario": …, "link": ["u1", "u2"], "mutual": true, "approved": false,
  "guardian": false}`` (omitted booleans are false).

Any line may carry ``"label": 0`` or ``1`` (1 = grooming); every scenario needs it at least once
and all its labels must agree. Each scenario runs through a fresh engine over a directory made
of its account and link lines, its events in file order; it counts as flagged when any alert
(review or restrict) is raised, and "messages before the alert" is the number of message events
applied up to and including the one that raised the first alert.

Bad input (missing file, not CSV or JSONL, missing columns or fields, bad labels, invalid
UTF-8) stops with a one-line message naming the line and exit code 2.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from qinglang.commands.common import err, fail, out
from qinglang.risk.model import (
    Config,
    DataError,
    FoldResult,
    GroomingModel,
    Metrics,
    ModelError,
    cross_validate,
    read_labelled_csv,
    summarise,
    train,
)

if TYPE_CHECKING:
    from qinglang.policy import Policy
    from qinglang.risk.types import Risk

app = typer.Typer(
    help="Grooming risk: train and evaluate conversation classifiers.", no_args_is_help=True
)

MAX_EVENT_LINE_BYTES: Final = 256 << 10


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _reporter(progress: Progress) -> Callable[[str, int, int], None]:
    """A model.Progress callback driving one rich task per stage."""
    tasks: dict[str, Any] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    return report


def _read(path: Path) -> tuple[list[str], np.ndarray[Any, np.dtype[np.int64]]]:
    try:
        return read_labelled_csv(path)
    except DataError as exc:
        fail(f"{path}: {exc}" if str(exc).startswith("line") else str(exc))


def _metric_lines(m: Metrics) -> None:
    out.print(f"precision {m.precision:.4f}", highlight=False, soft_wrap=True)
    out.print(f"recall    {m.recall:.4f}", highlight=False, soft_wrap=True)
    out.print(f"F0.5      {m.f05:.4f}", highlight=False, soft_wrap=True)
    out.print(
        f"counts    tp {m.tp}  fp {m.fp}  fn {m.fn}  tn {m.tn}  (n {m.n})",
        highlight=False,
        soft_wrap=True,
    )


def _last_line(m: Metrics, mode: str, **extra: Any) -> None:
    print(
        json.dumps(
            {
                "precision": round(m.precision, 4),
                "recall": round(m.recall, 4),
                "f05": round(m.f05, 4),
                "n": m.n,
                "mode": mode,
                **extra,
            },
            ensure_ascii=False,
        ),
        flush=True,
    )


# ---------------------------------------------------------------- train


@app.command("train")
def train_command(
    file: Annotated[Path, typer.Argument(help="CSV with segment,label rows (label 1 = grooming)")],
    out_path: Annotated[Path, typer.Option("--out", help="where to write the model (.npz)")],
    seed: Annotated[int, typer.Option(help="seed of the inner cross-validation folds")] = 0,
    min_precision: Annotated[
        float, typer.Option(help="precision floor when choosing the threshold", min=0.0, max=1.0)
    ] = 0.95,
    inner_folds: Annotated[
        int, typer.Option(help="folds of the inner CV that picks C and the threshold", min=2)
    ] = 5,
    char_ngrams: Annotated[
        bool, typer.Option(help="add character 2-5-grams (slower; words alone are the default)")
    ] = False,
) -> None:
    """Train a conversation classifier on labelled rows and write it to one .npz file."""
    texts, labels = _read(file)
    config = Config(
        min_precision=min_precision,
        inner_folds=inner_folds,
        char_ngrams=(2, 5) if char_ngrams else None,
    )
    if out_path.is_dir():
        fail(f"--out {out_path}: is a directory; give a file name such as model.npz")
    progress = _progress()
    try:
        with progress:
            model = train(texts, labels, config, seed, file.name, _reporter(progress))
    except DataError as exc:
        fail(f"{file}: {exc}")
    try:
        model.save(out_path)
    except OSError as exc:
        fail(f"cannot write {out_path}: {exc.strerror or exc}")
    inner = model.meta["inner_cv"]
    m = inner["metrics_at_threshold"]
    out.print(
        f"trained on {model.meta['rows']} rows ({model.meta['positives']} positive) of "
        f"{file.name}; C {model.meta['c']:g}, threshold {model.threshold:.4f}",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"inner {inner['folds']}-fold CV on these rows at that threshold: precision "
        f"{m['precision']:.4f}, recall {m['recall']:.4f}, F0.5 {m['f05']:.4f} "
        "(a training estimate: evaluate on other data, or use eval --cv)",
        highlight=False,
        soft_wrap=True,
    )
    out.print(f"model written to {out_path}", highlight=False, soft_wrap=True)
    print(
        json.dumps(
            {
                "model": os.fspath(out_path),
                "threshold": round(model.threshold, 6),
                "c": model.meta["c"],
                "inner_cv": m,
            }
        )
    )


# ---------------------------------------------------------------- eval


@app.command("eval")
def eval_command(
    file: Annotated[
        Path | None, typer.Argument(help="CSV with segment,label rows (label 1 = grooming)")
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", help="a model from `qinglang risk train`")
    ] = None,
    cv: Annotated[
        int | None,
        typer.Option(
            "--cv", "--folds", help="K-fold cross-validated training and evaluation", min=2
        ),
    ] = None,
    repeats: Annotated[int, typer.Option(help="repeat --cv with other fold seeds", min=1)] = 1,
    seed: Annotated[int, typer.Option(help="seed of the --cv folds")] = 0,
    events: Annotated[
        Path | None,
        typer.Option("--events", help="labelled event scenarios (JSONL) through the risk engine"),
    ] = None,
    pack: Annotated[str, typer.Option(help="policy pack of the cue detector and engine")] = "cn",
    threshold: Annotated[
        float | None,
        typer.Option(help="flag at score ≥ this instead of the model's or the pack's threshold"),
    ] = None,
) -> None:
    """Precision, recall and F0.5 on labelled conversations; the last line is JSON."""
    if events is not None:
        if file is not None or model is not None or cv is not None or threshold is not None:
            fail(
                "--events evaluates the risk engine alone (at the pack's thresholds): give no "
                "FILE, --model, --cv or --threshold"
            )
        _eval_events(events, pack)
        return
    if file is None:
        fail("give a CSV FILE of segment,label rows (or --events FILE.jsonl)")
    if model is not None and cv is not None:
        fail("--model evaluates a trained model; --cv trains its own: give one of them")
    if cv is not None and threshold is not None:
        fail("--threshold does not apply to --cv (each fold picks its own on its training rows)")
    if model is not None:
        try:
            trained = GroomingModel.load(model)
        except ModelError as exc:
            fail(str(exc))
    texts, labels = _read(file)
    if cv is not None:
        _eval_cv(file, texts, labels, cv, repeats, seed)
    elif model is not None:
        _eval_model(trained, model, texts, labels, threshold)
    else:
        _eval_cues(texts, labels, pack, threshold)


def _eval_model(
    trained: GroomingModel,
    path: Path,
    texts: list[str],
    labels: np.ndarray[Any, np.dtype[np.int64]],
    threshold: float | None,
) -> None:
    thr = trained.threshold if threshold is None else threshold
    with _progress() as progress:
        task = progress.add_task("scoring", total=len(texts))
        parts = []
        step = 256
        for i in range(0, len(texts), step):
            parts.append(trained.scores(texts[i : i + step]))
            progress.update(task, completed=min(i + step, len(texts)))
    scores = np.concatenate(parts)
    m = Metrics.of(labels, scores >= thr)
    meta = trained.meta
    out.print(
        f"model {path} (trained {meta.get('trained_at', '?')} on {meta.get('data') or '?'}, "
        f"{meta.get('rows', '?')} rows); threshold {thr:.4f}",
        highlight=False,
        soft_wrap=True,
    )
    _metric_lines(m)
    _last_line(m, "model", threshold=round(thr, 6))


def _eval_cues(
    texts: list[str],
    labels: np.ndarray[Any, np.dtype[np.int64]],
    pack: str,
    threshold: float | None,
) -> None:
    from qinglang.policy import PolicyError, load_pack
    from qinglang.risk.cues import score_conversation
    from qinglang.risk.params import RiskParams

    try:
        policy = load_pack(pack)
        thr = RiskParams.from_policy(policy).review if threshold is None else threshold
    except (PolicyError, OSError) as exc:
        fail(f"--pack {pack}: {exc}")
    scores = np.zeros(len(texts))
    with _progress() as progress:
        task = progress.add_task("cue detector", total=len(texts))
        for i, t in enumerate(texts):
            risk: Risk = score_conversation(t, policy)
            scores[i] = risk.score
            progress.advance(task)
    m = Metrics.of(labels, scores >= thr)
    out.print(
        f"default cue detector (untrained; pack {pack}), flag at score ≥ {thr:g}"
        + (" (risk.alert.review_threshold)" if threshold is None else ""),
        highlight=False,
        soft_wrap=True,
    )
    _metric_lines(m)
    _last_line(m, "cues", threshold=thr)


def _eval_cv(
    file: Path,
    texts: list[str],
    labels: np.ndarray[Any, np.dtype[np.int64]],
    k: int,
    repeats: int,
    seed: int,
) -> None:
    pos = int(labels.sum())
    if min(pos, len(labels) - pos) < k:
        fail(f"{file}: --cv {k} needs at least {k} positive and {k} negative rows")
    config = Config()
    progress = _progress()
    try:
        with progress:
            results = cross_validate(texts, labels, k, repeats, seed, config, _reporter(progress))
    except DataError as exc:
        fail(f"{file}: {exc}")
    out.print(
        f"{k}-fold cross-validation × {repeats} (seed {seed}) on {file.name}: {len(labels)} rows, "
        f"{pos} positive; nested — each fold's C and threshold come from an inner "
        f"{config.inner_folds}-fold CV on its training rows",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        "rep fold     C  threshold  precision  recall    F0.5    tp   fp   fn    tn",
        highlight=False,
        soft_wrap=True,
    )
    for r in results:
        t = r.test
        out.print(
            f"{r.repeat:>3} {r.fold:>4} {r.c:>5g} {r.threshold:>10.4f} {t.precision:>10.4f} "
            f"{t.recall:>7.4f} {t.f05:>7.4f} {t.tp:>5} {t.fp:>4} {t.fn:>4} {t.tn:>5}",
            highlight=False,
            soft_wrap=True,
        )
    mean_sd = _mean_sd(results)
    for name, key in (("precision", "precision"), ("recall", "recall"), ("F0.5", "f05")):
        mu, sd = mean_sd[key]
        out.print(
            f"{name:<9} {mu:.4f} ± {sd:.4f} (mean ± sd over folds)", highlight=False, soft_wrap=True
        )
    pooled = _pooled(results)
    out.print(
        f"pooled    tp {pooled.tp}  fp {pooled.fp}  fn {pooled.fn}  tn {pooled.tn}  "
        f"(every row tested {repeats}×; precision {pooled.precision:.4f}, recall "
        f"{pooled.recall:.4f}, F0.5 {pooled.f05:.4f})",
        highlight=False,
        soft_wrap=True,
    )
    print(
        json.dumps(
            {
                "precision": round(mean_sd["precision"][0], 4),
                "recall": round(mean_sd["recall"][0], 4),
                "f05": round(mean_sd["f05"][0], 4),
                "n": len(labels),
                "mode": "cv",
                "folds": k,
                "repeats": repeats,
                "sd": {key: round(v[1], 4) for key, v in mean_sd.items()},
                "pooled": pooled.to_dict(),
            }
        ),
        flush=True,
    )


def _mean_sd(results: list[FoldResult]) -> dict[str, tuple[float, float]]:
    return {
        "precision": summarise([r.test.precision for r in results]),
        "recall": summarise([r.test.recall for r in results]),
        "f05": summarise([r.test.f05 for r in results]),
    }


def _pooled(results: list[FoldResult]) -> Metrics:
    return Metrics(
        sum(r.test.tp for r in results),
        sum(r.test.fp for r in results),
        sum(r.test.fn for r in results),
        sum(r.test.tn for r in results),
    )


# ---------------------------------------------------------------- events


@dataclass
class Scenario:
    """One labelled scenario of an events file: accounts, links and events in file order."""

    id: str
    first_line: int
    label: int | None = None
    accounts: list[tuple[str, int | None, bool]] = field(default_factory=list)
    links: list[tuple[str, str, bool, bool, bool]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    """qinglang.risk.events.Event objects."""


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """What the engine did with one scenario."""

    id: str
    label: int
    flagged: bool
    messages: int
    """Message events in the scenario."""
    messages_before_alert: int | None
    """Message events applied up to and including the one that raised the first alert."""
    level: str | None


def _event_lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        stream = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    with stream:
        for n, raw in enumerate(stream, start=1):
            body = raw.rstrip(b"\r\n")
            if len(body) > MAX_EVENT_LINE_BYTES:
                fail(f"{path}: line {n}: over the {MAX_EVENT_LINE_BYTES:,}-byte limit")
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                fail(f"{path}: line {n}: invalid UTF-8 at byte {exc.start}")
            if text.strip():
                yield n, text


def _flag(obj: dict[str, Any], name: str, where: str) -> bool:
    v = obj.get(name, False)
    if not isinstance(v, bool):
        raise DataError(f"{where}: {name} must be true or false")
    return v


def parse_scenarios(lines: Iterable[tuple[int, str]]) -> list[Scenario]:
    """Group numbered JSONL lines into labelled scenarios; DataError names the first bad line."""
    from qinglang.risk.events import EventError, parse_event

    scenarios: dict[str, Scenario] = {}
    for n, text in lines:
        where = f"line {n}"
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected a JSON object")
        sid = obj.pop("scenario", None)
        if not isinstance(sid, str) or not sid:
            raise DataError(f'{where}: "scenario" missing or not a non-empty string')
        sc = scenarios.setdefault(sid, Scenario(sid, n))
        if "label" in obj:
            label = obj.pop("label")
            if label not in (0, 1) or isinstance(label, bool):
                raise DataError(f"{where}: label must be 0 or 1, got {label!r}"[:120])
            if sc.label is not None and sc.label != label:
                raise DataError(f"{where}: label {label} contradicts scenario {sid!r}'s label")
            sc.label = int(label)
        if "account" in obj:
            acc, age = obj.get("account"), obj.get("age")
            if not isinstance(acc, str) or not acc:
                raise DataError(f"{where}: account must be a non-empty string")
            if age is not None and (not isinstance(age, int) or isinstance(age, bool) or age < 0):
                raise DataError(f"{where}: age must be a whole number or null")
            extra = set(obj) - {"account", "age", "restricted"}
            if extra:
                raise DataError(f"{where}: unknown field {sorted(extra)[0]!r} in an account line")
            sc.accounts.append((acc, age, _flag(obj, "restricted", where)))
        elif "link" in obj:
            pair = obj.get("link")
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(isinstance(a, str) and a for a in pair)
            ):
                raise DataError(f"{where}: link must be a list of two account ids")
            extra = set(obj) - {"link", "mutual", "approved", "guardian"}
            if extra:
                raise DataError(f"{where}: unknown field {sorted(extra)[0]!r} in a link line")
            sc.links.append(
                (
                    pair[0],
                    pair[1],
                    _flag(obj, "mutual", where),
                    _flag(obj, "approved", where),
                    _flag(obj, "guardian", where),
                )
            )
        elif obj:
            try:
                sc.events.append(parse_event(obj))
            except EventError as exc:
                raise DataError(f"{where}: {exc}") from None
    if not scenarios:
        raise DataError("no scenarios: the file has no lines")
    for sc in scenarios.values():
        if sc.label is None:
            raise DataError(f"line {sc.first_line}: scenario {sc.id!r} has no label")
    return list(scenarios.values())


def run_scenario(sc: Scenario, policy: Policy) -> ScenarioResult:
    """Run one scenario through a fresh risk engine and note when it first alerted."""
    from qinglang.risk.directory import MemoryDirectory
    from qinglang.risk.engine import RiskEngine
    from qinglang.risk.params import RiskParams
    from qinglang.risk.types import AccountFacts, Link

    directory = MemoryDirectory()
    minor_below = RiskParams.from_policy(policy).minor_below
    for acc, age, restricted in sc.accounts:
        directory.set_facts(
            acc, AccountFacts(age, age is not None and age < minor_below, restricted)
        )
    for a, b, mutual, approved, guardian in sc.links:
        directory.relate(a, b, Link(mutual, approved, guardian))
    engine = RiskEngine(policy, directory)
    messages = 0
    before: int | None = None
    level: str | None = None
    for e in sc.events:
        if e.kind == "message":
            messages += 1
        alerts = engine.process(e)
        if alerts and before is None:
            before = messages
            level = alerts[0].level
    assert sc.label is not None
    return ScenarioResult(sc.id, sc.label, before is not None, messages, before, level)


def _eval_events(path: Path, pack: str) -> None:
    from qinglang.policy import PolicyError, load_pack

    try:
        scenarios = parse_scenarios(_event_lines(path))
    except DataError as exc:
        fail(f"{path}: {exc}")
    try:
        policy = load_pack(pack)
    except (PolicyError, OSError) as exc:
        fail(f"--pack {pack}: {exc}")
    results: list[ScenarioResult] = []
    with _progress() as progress:
        task = progress.add_task("scenarios", total=len(scenarios))
        for sc in scenarios:
            try:
                results.append(run_scenario(sc, policy))
            except PolicyError as exc:
                fail(f"--pack {pack}: {exc}")
            progress.advance(task)
    labels = np.array([r.label for r in results], dtype=np.int64)
    flagged = np.array([r.flagged for r in results], dtype=np.bool_)
    m = Metrics.of(labels, flagged)
    found = [r for r in results if r.label == 1 and r.messages_before_alert is not None]
    before = [float(r.messages_before_alert or 0) for r in found]
    share = [(r.messages_before_alert or 0) / max(r.messages, 1) for r in found]
    out.print(
        f"risk engine (pack {pack}) over {len(results)} scenarios of {path.name} "
        f"({int(labels.sum())} labelled grooming); flagged = any alert",
        highlight=False,
        soft_wrap=True,
    )
    _metric_lines(m)
    stats: dict[str, Any] = {}
    if found:
        mean, sd = summarise(before)
        stats = {
            "flagged_grooming": len(found),
            "median": float(np.median(before)),
            "mean": round(mean, 2),
            "sd": round(sd, 2),
            "min": int(min(before)),
            "max": int(max(before)),
            "mean_share": round(float(np.mean(share)), 4),
        }
        out.print(
            f"messages read before the alert, over the {len(found)} grooming scenarios "
            f"flagged: median {stats['median']:g}, mean {mean:.2f} ± {sd:.2f}, range "
            f"{stats['min']}–{stats['max']}; on average {stats['mean_share']:.0%} of the "
            "scenario's messages",
            highlight=False,
            soft_wrap=True,
        )
    else:
        out.print(
            "messages read before the alert: no grooming scenario was flagged", soft_wrap=True
        )
    _last_line(m, "events", messages_before_alert=stats)
