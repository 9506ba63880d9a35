"""N0: a naive port of the original design — "what a user would write instead".

FastAPI with a pydantic body, sse-starlette's ``EventSourceResponse``, and the model run
inside the stream request. In memory, the request's generator yields each chunk as it
comes; with Redis (``FEATURE_PLANNER_REDIS_URL``) the job is a JSON string under a TTL,
the request's model task does one ``XADD`` per delta, and each connection reads with its
own blocking ``XREAD``. The model is the service's: the same scripted chunks, stamped, on
the same ``SharedClock``. It reads the service's ``FEATURE_PLANNER_*`` variables.

    uvicorn bench.naive:create_app --factory
"""

# No ``from __future__ import annotations``: FastAPI resolves the handlers' annotations at
# runtime, and the dependency ``user`` is local to ``create_app``.
import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from feature_planner.agent.providers import scripted_text

from .clock import SharedClock

__all__ = ["create_app"]

API = "/api/feature-planner/suggest-feature"


class SuggestionBody(BaseModel):
    pageOrComponent: str = Field(min_length=1, max_length=200)
    featureType: Literal[
        "enhancement", "new-capability", "optimization", "ui-improvement", "integration"
    ]
    priorityLevel: Literal["low", "medium", "high", "critical"]
    additionalContext: str | None = Field(None, max_length=1000)


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _complete(job: dict[str, Any], chunks: int) -> str:
    suggestions = [
        {
            "title": f"Suggestion {n} for {job['pageOrComponent']}",
            "rationale": "A scripted suggestion",
            "description": f"Scripted suggestion number {n}.",
            "implementationConsiderations": [f"Consideration {n}.1", f"Consideration {n}.2"],
        }
        for n in (1, 2, 3)
    ]
    return _dumps({"suggestions": suggestions, "tokenUsage": {"outputTokens": chunks}})


def create_app() -> FastAPI:
    env = os.environ
    chunks = scripted_text(
        int(env.get("FEATURE_PLANNER_SCRIPTED_CHUNKS", "40")),
        int(env.get("FEATURE_PLANNER_SCRIPTED_CHUNK_SIZE", "16")),
    )
    clock = SharedClock(float(env.get("FEATURE_PLANNER_SCRIPTED_INTERVAL_MS", "25")) / 1000)
    users = env.get("FEATURE_PLANNER_USERS", "bench=bench-token").split(",")
    tokens = {pair.split("=", 1)[1]: pair.split("=", 1)[0] for pair in users}
    redis_url = env.get("FEATURE_PLANNER_REDIS_URL")
    redis = aioredis.from_url(redis_url) if redis_url else None
    jobs: dict[str, dict[str, Any]] = {}
    app = FastAPI()

    def user(authorization: Annotated[str, Header()] = "") -> str:
        name = tokens.get(authorization.removeprefix("Bearer "))
        if name is None:
            raise HTTPException(401, "Unauthorized")
        return name

    async def model() -> AsyncIterator[str]:
        for chunk in chunks:
            await clock.wait()
            yield f"{time.monotonic_ns()}:{chunk}"

    @app.post(API, status_code=201)
    async def create(body: SuggestionBody, user_id: Annotated[str, Depends(user)]) -> Any:
        job_id = str(uuid.uuid4())
        job = {"userId": user_id, "status": "pending", **body.model_dump()}
        if redis is not None:
            await redis.set(f"suggestion:{job_id}", _dumps(job), ex=600)
        else:
            jobs[job_id] = job
        url = f"{API}/{job_id}"
        return {"success": True, "data": {"jobId": job_id, "streamUrl": url}}

    @app.get(API + "/{job_id}")
    async def stream(job_id: str, user_id: Annotated[str, Depends(user)]) -> EventSourceResponse:
        if redis is not None:
            raw = await redis.get(f"suggestion:{job_id}")
            job = json.loads(raw) if raw else None
        else:
            job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "Job not found")
        if job["userId"] != user_id:
            raise HTTPException(403, "Forbidden")
        if redis is not None:
            events = _through_redis(redis, job_id, job, model(), len(chunks))
        else:
            events = _in_request(job_id, job, model(), len(chunks))
        return EventSourceResponse(events, sep="\n")

    return app


async def _in_request(
    job_id: str, job: dict[str, Any], model: AsyncIterator[str], chunks: int
) -> AsyncIterator[dict[str, Any]]:
    yield {"event": "connected", "data": _dumps({"jobId": job_id})}
    total, event_id = 0, 0
    async for text in model:
        total += len(text)
        event_id += 1
        data = _dumps({"text": text, "totalLength": total, "timestamp": time.time()})
        yield {"id": str(event_id), "event": "delta", "data": data}
    yield {"id": str(event_id + 1), "event": "complete", "data": _complete(job, chunks)}


async def _through_redis(
    redis: aioredis.Redis,
    job_id: str,
    job: dict[str, Any],
    model: AsyncIterator[str],
    chunks: int,
) -> AsyncIterator[dict[str, Any]]:
    key = f"suggestion:{job_id}:events"
    producer = asyncio.create_task(_produce(redis, key, job, model, chunks))
    try:
        yield {"event": "connected", "data": _dumps({"jobId": job_id})}
        last = "0-0"
        while True:
            answer = await redis.xread({key: last}, block=15_000)
            for _, entries in answer:
                for entry_id, fields in entries:
                    last = entry_id
                    name = fields[b"event"].decode()
                    yield {
                        "id": fields[b"id"].decode(),
                        "event": name,
                        "data": fields[b"data"].decode(),
                    }
                    if name == "complete":
                        return
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer


async def _produce(
    redis: aioredis.Redis, key: str, job: dict[str, Any], model: AsyncIterator[str], chunks: int
) -> None:
    total, event_id = 0, 0
    async for text in model:
        total += len(text)
        event_id += 1
        data = _dumps({"text": text, "totalLength": total, "timestamp": time.time()})
        await redis.xadd(key, {"id": event_id, "event": "delta", "data": data})
    await redis.xadd(key, {"id": event_id + 1, "event": "complete", "data": _complete(job, chunks)})
    await redis.expire(key, 60)
