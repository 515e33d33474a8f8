"""`qinglang stream`: event intake from NATS JetStream (see qinglang.jobs.stream).

``work`` runs one worker of N for a platform: it owns the partitions ``partitions_for(I, N, P)``
and stores their events until SIGTERM or SIGINT, finishing the batch in hand. ``publish`` sends
a JSONL file of events to the platform's partition subjects; a bad line is reported on stderr
with its number and not published, and the exit code is then 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from qinglang.commands.common import DEFAULT_DB, DbOption, err, fail
from qinglang.jobs import stream as js_stream

app = typer.Typer(
    help="Event intake from NATS JetStream: partitioned workers and a publisher.",
    no_args_is_help=True,
)

NatsOpt = Annotated[str, typer.Option("--nats", help="NATS server URL")]
PlatformOpt = Annotated[str, typer.Option("--platform", help="platform slug")]
PartitionsOpt = Annotated[
    int, typer.Option(min=1, max=1024, help="partitions per platform (same for every worker)")
]
StreamOpt = Annotated[str, typer.Option(help="JetStream stream name")]
PrefixOpt = Annotated[str, typer.Option(help="subject prefix")]


def _say(text: str) -> None:
    err.print(text, markup=False, highlight=False, soft_wrap=True)


def _nats_failure(url: str, exc: BaseException) -> str:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return f"NATS at {url}: {detail}"


@app.command("work")
def work(
    platform: PlatformOpt,
    worker: Annotated[int, typer.Option("--worker", min=0, help="this worker's index, 0..N-1")],
    workers: Annotated[int, typer.Option("--workers", min=1, help="number of workers N")],
    nats_url: NatsOpt = js_stream.DEFAULT_NATS,
    db: DbOption = DEFAULT_DB,
    partitions: PartitionsOpt = js_stream.DEFAULT_PARTITIONS,
    stream: StreamOpt = js_stream.DEFAULT_STREAM,
    prefix: PrefixOpt = js_stream.DEFAULT_PREFIX,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="messages per fetch")] = (
        js_stream.DEFAULT_BATCH
    ),
    ack_wait: Annotated[
        float, typer.Option(min=0.5, help="seconds before an unacknowledged batch is redelivered")
    ] = js_stream.DEFAULT_ACK_WAIT,
    max_deliver: Annotated[
        int, typer.Option(help="deliveries per message before giving up (-1: unlimited)")
    ] = js_stream.DEFAULT_MAX_DELIVER,
    pause: Annotated[float, typer.Option(min=0.0, help="seconds to wait between batches")] = 0.0,
    log_file: Annotated[
        Path | None,
        typer.Option("--log", help="append a JSON line per committed batch (and a summary)"),
    ] = None,
    risk: Annotated[
        bool,
        typer.Option(
            "--risk",
            help="run the risk engine over this worker's partitions (turn the platform's "
            "lease consumer off: QINGLANG_CONSUMER=off, no `events consume`)",
        ),
    ] = False,
    crash_after: Annotated[
        int | None,
        typer.Option(hidden=True, help="fault injection: die after this many commits, unacked"),
    ] = None,
) -> None:
    """Store the events of this worker's partitions until SIGTERM/SIGINT."""
    try:
        owned = js_stream.partitions_for(worker, workers, partitions)
        js_stream.check_slug(platform)
        js_stream.check_prefix(prefix)
        js_stream.check_stream(stream)
    except ValueError as exc:
        fail(str(exc))
    sink: IO[str] | None = None
    if log_file is not None:
        try:
            sink = log_file.open("a", encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {log_file}: {exc.strerror}")
    commits = 0

    def record(line: dict[str, Any]) -> None:
        if sink is not None:
            sink.write(json.dumps(line, ensure_ascii=False) + "\n")
            sink.flush()

    def on_batch(b: js_stream.BatchRecord) -> None:
        nonlocal commits
        record(
            {
                "worker": worker,
                "pid": os.getpid(),
                "partition": b.partition,
                "stored": b.stored,
                "duplicates": b.duplicates,
                "invalid": b.invalid,
                **({"alerts": b.alerts} if risk else {}),
            }
        )
        commits += 1
        if crash_after is not None and commits >= crash_after:
            os._exit(75)  # a hard crash after the commit, before the acknowledgements

    runner = js_stream.StreamWorker(
        db,
        platform,
        owned,
        partition_count=partitions,
        nats_url=nats_url,
        stream=stream,
        prefix=prefix,
        batch=batch,
        ack_wait=ack_wait,
        max_deliver=max_deliver,
        pause=pause,
        on_batch=on_batch,
        risk=risk,
        on_replay=lambda n: record({"worker": worker, "pid": os.getpid(), "replayed": n}),
    )

    async def main() -> js_stream.WorkerStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await runner.run(stop)

    started = time.perf_counter()
    _say(f"worker {worker}/{workers} of {platform}: partitions {owned} on {nats_url}")
    try:
        stats = asyncio.run(main())
    except (ValueError, ConnectionError) as exc:
        fail(str(exc))
    except (OSError, TimeoutError) as exc:
        fail(_nats_failure(nats_url, exc))
    except Exception as exc:
        if type(exc).__module__.startswith("nats"):
            fail(_nats_failure(nats_url, exc))
        raise
    seconds = time.perf_counter() - started
    record({"worker": worker, "pid": os.getpid(), "summary": js_stream.stats_dict(stats)})
    if sink is not None:
        sink.close()
    _say(
        f"worker {worker}: {stats.stored:,} stored, {stats.duplicates:,} duplicates, "
        f"{stats.invalid:,} terminated, {stats.failed_batches:,} failed batches "
        f"in {seconds:,.1f} s"
    )


def _read_events(source: Path) -> tuple[list[dict[str, Any]], list[str]]:
    from qinglang.risk.events import EventError
    from qinglang.store.events import validate

    events: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        handle = source.open("rb")
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}")
    with handle:
        for n, raw in enumerate(handle, start=1):
            body = raw.strip()
            if not body:
                continue
            try:
                obj = json.loads(body.decode("utf-8"))
                validate(obj)
            except UnicodeDecodeError as exc:
                errors.append(f"line {n}: invalid UTF-8 at byte {exc.start}")
                continue
            except EventError as exc:
                errors.append(f"line {n}: {exc.field}: {exc.message}")
                continue
            except (ValueError, RecursionError) as exc:
                errors.append(f"line {n}: not valid JSON ({exc})")
                continue
            events.append(obj)
    return events, errors


@app.command("publish")
def publish(
    source: Annotated[Path, typer.Argument(help="JSONL file of events")],
    platform: PlatformOpt,
    nats_url: NatsOpt = js_stream.DEFAULT_NATS,
    partitions: PartitionsOpt = js_stream.DEFAULT_PARTITIONS,
    stream: StreamOpt = js_stream.DEFAULT_STREAM,
    prefix: PrefixOpt = js_stream.DEFAULT_PREFIX,
) -> None:
    """Publish the valid events of a JSONL file to their partition subjects (creating the
    stream if needed); bad lines on stderr."""
    try:
        js_stream.check_slug(platform)
        js_stream.check_prefix(prefix)
        js_stream.check_stream(stream)
    except ValueError as exc:
        fail(str(exc))
    events, errors = _read_events(source)

    async def main() -> js_stream.PublishReport:
        nc = await js_stream.connect(nats_url)
        try:
            js = nc.jetstream()
            await js_stream.ensure_stream(js, name=stream, prefix=prefix)
            return await js_stream.publish_events(
                js, platform, events, partitions, prefix=prefix, stream=stream
            )
        finally:
            await nc.close()

    try:
        report = asyncio.run(main())
    except (ValueError, ConnectionError) as exc:
        fail(str(exc))
    except (OSError, TimeoutError) as exc:
        fail(_nats_failure(nats_url, exc))
    except Exception as exc:
        if type(exc).__module__.startswith("nats"):
            fail(_nats_failure(nats_url, exc))
        raise
    for e in errors:
        err.print(f"error: {e}", highlight=False, soft_wrap=True, markup=False)
    _say(
        f"{report.published:,} events published to {stream}, {report.duplicates:,} already in "
        f"the stream, {len(errors):,} bad lines"
    )
    if errors:
        raise typer.Exit(2)
