"""Event intake in bulk: follow, unfollow, message, impression, gift, profile view, block, report.

Contract (docs/events.md): ``POST /v1/events`` with ``{"events": [...]}`` (1 to 10,000). Each
event is judged on its own: a bad one is rejected with its index, the field and the reason, a
repeat of a stored event id is a duplicate (stored once), and all the others are stored — in
one transaction, so either every accepted event of the request is stored or (on a server
error) none is, and a retry of the same request is safe. The answer lists only the indexes that
were *not* stored; every other index was.

A background risk consumer (in this app's lifespan, one lease holder per platform across
workers) feeds the stored events to the risk engine; ``GET /v1/events/status`` shows its lag.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from qinglang.api.deps import ApiKeyDep, ServiceDep
from qinglang.api.problems import error_responses, field_problem
from qinglang.risk.consumer import BackgroundConsumer, Consumer, enabled_from_env
from qinglang.risk.events import EVENT_KINDS, IMPRESSION_SURFACES, MAX_TEXT_CHARS
from qinglang.store import events as store_events
from qinglang.store.models import Platform

MAX_BATCH: Final = store_events.MAX_BATCH
MAX_BODY_BYTES: Final = 64 << 20
"""A request body larger than this (64 MiB) is refused whole (413): split the batch."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the risk consumer in the background (unless QINGLANG_CONSUMER=off)."""
    runner: BackgroundConsumer | None = None
    service = getattr(app.state, "service", None)
    if service is not None and enabled_from_env():
        runner = BackgroundConsumer(
            Consumer(service.sessions, service.write_sessions, service.policy_for)
        )
        runner.start()
        app.state.consumer = runner
    try:
        yield
    finally:
        if runner is not None:
            runner.stop()


router = APIRouter(prefix="/v1", tags=["events"], lifespan=lifespan, responses=error_responses(401))

_EVENT_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["id", "kind", "at", "actor"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 200},
        "kind": {"type": "string", "enum": list(EVENT_KINDS)},
        "at": {
            "oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
            "description": "ISO 8601 with a UTC offset, or epoch seconds",
        },
        "actor": {"type": "string", "minLength": 1, "maxLength": 200},
        "target": {"type": "string", "minLength": 1, "maxLength": 200},
        "text": {"type": "string", "maxLength": MAX_TEXT_CHARS},
        "item": {"type": "string", "minLength": 1, "maxLength": 200},
        "owner": {"type": "string", "minLength": 1, "maxLength": 200},
        "surface": {"type": "string", "enum": list(IMPRESSION_SURFACES)},
        "amount_fen": {"type": "integer", "minimum": 1},
        "delivered": {
            "type": "boolean",
            "description": "for a message: false when the platform blocked it (an attempt)",
        },
    },
}
_BODY_SCHEMA: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["events"],
                    "additionalProperties": False,
                    "properties": {
                        "events": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_BATCH,
                            "items": {
                                "anyOf": [
                                    _EVENT_SCHEMA,
                                    {"description": "anything else: rejected on its own"},
                                ],
                                "description": "events judged one by one: a bad one is "
                                "listed in `rejected` by index, the others are stored",
                            },
                        }
                    },
                }
            }
        },
    }
}


async def _read_body(request: Request) -> bytes:
    """The request body, refused (413 naming `body`) past MAX_BODY_BYTES."""
    declared = request.headers.get("content-length")
    too_big = field_problem(
        413,
        "body",
        f"request body over {MAX_BODY_BYTES:,} bytes; send at most {MAX_BATCH:,} events in "
        "smaller batches / 请求体过大，请分批发送",
        "Payload too large",
    )
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def parse_envelope(raw: bytes) -> list[Any]:
    """The `events` list of a request body; a problem naming `body` or `events` otherwise.

    Invalid UTF-8 inside a JSON string does not spoil the batch: the bytes are kept as
    surrogate escapes, and the event that carries them is rejected on its own.
    """
    try:
        text = raw.decode("utf-8", errors="surrogateescape")
        doc = json.loads(text)
    except ValueError as exc:
        raise field_problem(
            400,
            "body",
            f"request body is not valid JSON ({exc}) / 请求体不是有效的JSON",
            "Invalid JSON",
        ) from None
    if not isinstance(doc, dict):
        raise field_problem(422, "body", 'expected a JSON object {"events": [...]}')
    unknown = sorted(set(doc) - {"events"})
    if unknown:
        raise field_problem(422, unknown[0], "unknown field")
    events = doc.get("events")
    if not isinstance(events, list):
        raise field_problem(422, "events", "is required: a list of 1 to 10,000 events")
    if not events:
        raise field_problem(422, "events", "is empty: send 1 to 10,000 events")
    if len(events) > MAX_BATCH:
        raise field_problem(
            413,
            "events",
            f"{len(events):,} events; at most {MAX_BATCH:,} per request, nothing was stored "
            f"/ 每次最多{MAX_BATCH}条事件，本批未存储",
            "Batch too large",
        )
    return events


def result_body(result: store_events.IntakeResult) -> dict[str, Any]:
    """The JSON answer of an intake: counts, duplicate indexes and rejected indexes."""
    return {
        "received": result.received,
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": [
            {"index": r.index, "field": f"events.{r.index}.{r.field}", "message": r.message}
            for r in result.rejected
        ],
    }


@router.post("/events", openapi_extra=_BODY_SCHEMA, responses=error_responses(400, 413, 422))
async def ingest_events(request: Request, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """Store a batch of platform events; per-index results for those not stored."""
    raw = await _read_body(request)
    # Parse and validate outside the write transaction: the write lock is held for the inserts.
    checked = await run_in_threadpool(_check, raw)

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        return result_body(store_events.store_batch(s, platform.id, checked))

    return await service.run_write(key, work)


def _check(raw: bytes) -> store_events.Checked:
    try:
        return store_events.check_batch(parse_envelope(raw))
    except RecursionError:
        raise field_problem(400, "body", "JSON nested too deeply", "Invalid JSON") from None


@router.get("/events/status")
async def events_status(key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """How many events are stored and processed by the risk consumer, and who holds its lease."""

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        return store_events.consumer_status(s, platform.id)

    return await service.run(key, work)
