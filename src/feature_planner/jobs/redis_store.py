"""The Redis job store: any process serves any job.

Records are hashes with the contract's TTLs, each job's events a Redis Stream (event N is
entry ``N-0``), claims and leases Lua scripts (``redis_schema``). Four tasks per process,
never one per job or per connection:

- the *writer* (``redis_writer``) sends every queued append of every local run in one
  pipeline;
- the *reader* (``redis_reader``) runs one blocking ``XREAD`` over all the jobs this process
  has subscribers on and feeds their in-process ``EventLog``s, which fan out to the
  connections;
- the *keeper* renews the leases of local runs and local streams, and ends jobs whose
  runner died (``WORKER_LOST``);
- the *listener* receives cancellations published by other processes.

When Redis cannot be reached, calls fail at once with ``StoreUnavailableError`` (a bounded
retry policy replaces redis-py's default); open streams wait ``outage_grace_s`` for it to
come back, then end with an ``error`` ``STORE_UNAVAILABLE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .. import events
from ..agent.base import FollowUp
from ..errors import StoreUnavailableError
from ..events import JobEvent
from ..models import ErrorCode, JobState, SuggestionRequest
from ..redis_client import UNREACHABLE, connect_redis, guarded
from . import redis_schema as schema
from .redis_reader import StreamReader
from .redis_writer import EventWriter
from .relay import EventLog
from .store import CancelHandler, JobRecord, JobStore, JobTTLs

__all__ = ["RedisJobStore"]

logger = logging.getLogger("feature_planner.redis")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


@dataclass(frozen=True, slots=True)
class _Claim:
    """A run of this process: the runner that claimed the job, and how to stop it."""

    runner: str
    on_cancel: CancelHandler


class RedisJobStore(JobStore):
    def __init__(
        self,
        client: aioredis.Redis,
        ttls: JobTTLs,
        *,
        url: str,
        timeout_s: float = 0.5,
        runner_lease_s: float = 10,
        watcher_lease_s: float = 30,
        running_ttl_s: float = 3720,
        outage_grace_s: float = 5,
        maxlen: int = 10_000,
    ) -> None:
        self.client = client
        self._url = url
        self._timeout_s = timeout_s
        self._ttls = ttls
        self._runner_lease_s = runner_lease_s
        self._lease_ms = _ms(runner_lease_s)
        self._watcher_lease_s = watcher_lease_s
        self._running_ttl_s = running_ttl_s
        self._outage_grace_s = outage_grace_s
        self._maxlen = maxlen
        self._claim = client.register_script(schema.CLAIM)
        self._cancel_pending = client.register_script(schema.CANCEL_PENDING)
        self._finish = client.register_script(schema.FINISH)
        self._mark_lost = client.register_script(schema.MARK_LOST)
        self._renew = client.register_script(schema.RENEW)

        self._writer = EventWriter(
            client,
            maxlen=maxlen,
            ttl_ms=_ms(running_ttl_s),
            on_refused=self._check_refused,
            on_unreachable=self._outage,
            on_reachable=self._recovered,
        )
        self._final: dict[str, JobEvent] = {}  # job id -> its final event, until ``finish``
        self._owned: dict[str, _Claim] = {}  # job id -> its claim, runs of this process
        self._watchers: dict[str, set[str]] = {}  # job id -> local watcher ids
        self._reader = StreamReader(
            client, on_unreachable=self._outage, on_reachable=self._recovered
        )
        self._reader_client: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._down_since: float | None = None

    # -- records -------------------------------------------------------------------------

    async def create(self, job: JobRecord) -> None:
        key = schema.job_key(job.id)
        fields: dict[Any, Any] = {
            "user": job.user_id,
            "request": json.dumps(job.request.model_dump(mode="json")),
            "state": job.state.value,
            "created": job.created_at_ms,
            "expires": job.expires_at_ms,
        }
        if job.parent_job_id is not None:
            fields["parent"] = job.parent_job_id
        if job.follow_up is not None:
            fields["follow_up"] = json.dumps(job.follow_up.to_wire())
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, mapping=fields)
        pipe.pexpire(key, _ms(self._ttls.pending))
        await guarded(pipe.execute())

    async def get(self, job_id: str) -> JobRecord | None:
        raw: dict[Any, Any] = await guarded(self.client.hgetall(schema.job_key(job_id)))
        if not raw or b"state" not in raw:
            return None
        fields = {key.decode(): value.decode() for key, value in raw.items()}
        return JobRecord(
            id=job_id,
            user_id=fields["user"],
            request=SuggestionRequest.model_validate_json(fields["request"]),
            state=JobState(fields["state"]),
            created_at_ms=int(fields["created"]),
            expires_at_ms=int(fields["expires"]),
            last_event_id=int(fields.get("last", 0)),
            parent_job_id=fields.get("parent"),
            follow_up=FollowUp.from_wire(json.loads(fields["follow_up"]))
            if "follow_up" in fields
            else None,
        )

    async def claim(self, job_id: str, runner_id: str, *, on_cancel: CancelHandler) -> bool:
        keys = [schema.job_key(job_id), schema.lease_key(job_id)]
        args: list[str | int] = [runner_id, _ms(self._runner_lease_s), _ms(self._running_ttl_s)]
        claimed = bool(await guarded(self._claim(keys=keys, args=args)))
        if claimed:
            self._owned[job_id] = _Claim(runner_id, on_cancel)
        return claimed

    async def cancel_pending(self, job_id: str, final_event: JobEvent) -> bool:
        keys = [schema.job_key(job_id), schema.events_key(job_id)]
        args: list[str | int | bytes] = [final_event.data, _ms(self._ttls.finished), self._maxlen]
        return bool(await guarded(self._cancel_pending(keys=keys, args=args)))

    def append(self, job_id: str, event: JobEvent) -> None:
        if event.is_final:
            self._final[job_id] = event  # written by ``finish``, with the state
            return
        self._writer.append(job_id, event)

    async def finish(self, job_id: str, state: JobState, last_event_id: int) -> None:
        """Write the job's end, riding out a Redis outage of up to ``outage_grace_s``."""
        deadline = time.monotonic() + self._outage_grace_s
        while True:
            try:
                await self._finish_once(job_id, state, last_event_id)
                return
            except StoreUnavailableError:
                if time.monotonic() >= deadline:
                    self._owned.pop(job_id, None)
                    self._final.pop(job_id, None)
                    raise
                await asyncio.sleep(0.1)

    async def _finish_once(self, job_id: str, state: JobState, last_event_id: int) -> None:
        await self._writer.flush(raise_errors=True)
        claim = self._owned.get(job_id)
        final = self._final.get(job_id)
        if claim is None or final is None:
            self._owned.pop(job_id, None)
            self._final.pop(job_id, None)
            return
        keys = [
            schema.job_key(job_id),
            schema.events_key(job_id),
            schema.lease_key(job_id),
            schema.watchers_key(job_id),
        ]
        args: list[str | int | bytes] = [
            state.value,
            last_event_id,
            _ms(self._ttls.after(state)),
            claim.runner,
            final.name,
            final.data,
            self._maxlen,
        ]
        finished = await guarded(self._finish(keys=keys, args=args))
        self._owned.pop(job_id, None)
        self._final.pop(job_id, None)
        if not finished:
            logger.warning("job %s was taken from this runner (lease lost)", job_id)

    # -- subscribing ---------------------------------------------------------------------

    async def subscribe_log(self, job_id: str) -> EventLog | None:
        return await self._reader.subscribe(job_id)

    def release_log(self, job_id: str, log: EventLog) -> None:
        self._reader.release(job_id, log)

    # -- watchers and cancellation -------------------------------------------------------

    def add_watcher(self, job_id: str, watcher_id: str) -> None:
        self._watchers.setdefault(job_id, set()).add(watcher_id)
        self._background(self._zadd_watchers({job_id: [watcher_id]}))

    def remove_watcher(self, job_id: str, watcher_id: str) -> None:
        watchers = self._watchers.get(job_id)
        if watchers is not None:
            watchers.discard(watcher_id)
            if not watchers:
                del self._watchers[job_id]
        self._background(self.client.zrem(schema.watchers_key(job_id), watcher_id))

    async def watcher_counts(self, job_ids: Iterable[str]) -> dict[str, int]:
        ids = list(job_ids)
        if not ids:
            return {}
        pipe = self.client.pipeline(transaction=False)
        now = _now_ms()
        for job_id in ids:
            pipe.zcount(schema.watchers_key(job_id), now, "+inf")
        counts = await guarded(pipe.execute())
        return {job_id: int(count) for job_id, count in zip(ids, counts, strict=True)}

    async def request_cancel(self, job_id: str, message: str) -> None:
        claim = self._owned.get(job_id)
        if claim is not None:
            claim.on_cancel(message)
            return
        await guarded(self.client.publish(schema.CANCEL_CHANNEL, f"{job_id} {message}"))

    async def ping(self) -> None:
        await guarded(self.client.ping())

    # -- background tasks ----------------------------------------------------------------

    async def start(self) -> None:
        reader = self._reader_client = connect_redis(self._url, self._timeout_s, blocking=True)
        loop = asyncio.get_running_loop()
        for name, job in (
            ("redis-writer", self._writer.write_forever()),
            ("redis-reader", self._reader.read_forever(reader)),
            ("redis-keeper", self._keep_forever()),
            ("redis-listener", self._listen_forever()),
        ):
            self._tasks.append(loop.create_task(job, name=name))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        with contextlib.suppress(RedisError, OSError):
            await self._writer.flush(raise_errors=False)
        if self._reader_client is not None:
            await self._reader_client.aclose()
        await self.client.aclose()

    def _background(self, call: Awaitable[Any]) -> None:
        """Fire a best-effort write; the keeper repairs what a failure leaves behind."""

        async def run() -> None:
            with contextlib.suppress(RedisError, OSError):
                await call

        asyncio.get_running_loop().create_task(run())

    async def _zadd_watchers(self, watchers: Mapping[str, Iterable[str]]) -> None:
        expiry = _now_ms() + _ms(self._watcher_lease_s)
        pipe = self.client.pipeline(transaction=False)
        for job_id, ids in watchers.items():
            key = schema.watchers_key(job_id)
            pipe.zadd(key, dict.fromkeys(ids, expiry))
            pipe.pexpire(key, _ms(self._running_ttl_s))
        await pipe.execute()

    async def _check_refused(self, job_ids: set[str]) -> None:
        """An XADD refused: our own earlier write, or the job was ended elsewhere."""
        for job_id in job_ids:
            claim = self._owned.get(job_id)
            if claim is None:
                continue
            state, holder = await guarded(
                self.client.hmget(schema.job_key(job_id), ["state", "runner"])
            )
            if state == b"in_progress" and holder == claim.runner.encode():
                continue  # a duplicate of what we wrote before a lost answer
            logger.warning("job %s was ended by another process; stopping the local run", job_id)
            self._owned.pop(job_id, None)
            claim.on_cancel("The job was taken over after its lease expired")

    async def _keep_forever(self) -> None:
        tick = min(1.0, self._runner_lease_s / 4, self._watcher_lease_s / 4)
        while True:
            await asyncio.sleep(tick)
            try:
                await self._renew_leases()
                await self._end_lost_jobs()
            except StoreUnavailableError:
                await self._outage("keeper")
            except (RedisError, OSError) as exc:
                logger.warning("keeper: %s", exc)

    async def _renew_leases(self) -> None:
        owned = list(self._owned.items())
        if owned:
            # Scripts run one call each, concurrently: redis-py leaks a connection when a
            # pipeline's script loading fails against a frozen server.
            results = await asyncio.gather(
                *(
                    self._renew(
                        keys=[schema.lease_key(job_id)], args=[claim.runner, self._lease_ms]
                    )
                    for job_id, claim in owned
                ),
                return_exceptions=True,
            )
            for (job_id, _), result in zip(owned, results, strict=True):
                if isinstance(result, BaseException):
                    raise StoreUnavailableError from result
                if not result and (lost := self._owned.pop(job_id, None)) is not None:
                    logger.warning("job %s: lease lost; stopping the local run", job_id)
                    lost.on_cancel("The job's lease was lost")
        if self._watchers:
            await guarded(self._zadd_watchers(self._watchers))
        self._recovered()

    async def _end_lost_jobs(self) -> None:
        """A job this process streams but does not run, whose runner's lease expired."""
        candidates = [job_id for job_id in self._reader.following() if job_id not in self._owned]
        if not candidates:
            return
        pipe = self.client.pipeline(transaction=False)
        for job_id in candidates:
            pipe.hget(schema.job_key(job_id), "state")
            pipe.exists(schema.lease_key(job_id))
        results = await guarded(pipe.execute())
        for index, job_id in enumerate(candidates):
            state, leased = results[2 * index], results[2 * index + 1]
            if state is None:
                self._reader.end(job_id, "The job store no longer has this job")
            elif state == b"in_progress" and not leased:
                data = events.to_json(
                    events.error(
                        ErrorCode.WORKER_LOST,
                        "The worker running this job stopped; please try again",
                    )
                )
                keys = [schema.job_key(job_id), schema.events_key(job_id), schema.lease_key(job_id)]
                args: list[str | int | bytes] = [data, _ms(self._ttls.finished), self._maxlen]
                if await guarded(self._mark_lost(keys=keys, args=args)):
                    logger.warning("job %s: runner lost; ended with WORKER_LOST", job_id)

    async def _listen_forever(self) -> None:
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(schema.CANCEL_CHANNEL)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    job_id, _, text = message["data"].decode().partition(" ")
                    claim = self._owned.get(job_id)
                    if claim is not None:
                        claim.on_cancel(text)
            except asyncio.CancelledError:
                raise
            except (*UNREACHABLE, RedisError):
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    # -- outages -------------------------------------------------------------------------

    async def _outage(self, where: str) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            logger.warning("Redis unreachable (%s); waiting up to %gs", where, self._outage_grace_s)
            return
        if now - self._down_since < self._outage_grace_s:
            return
        self._reader.end_all("The job store is unreachable; try again shortly")
        owned, self._owned = self._owned, {}
        for claim in owned.values():
            claim.on_cancel("The job store is unreachable")
        self._writer.clear()

    def _recovered(self) -> None:
        if self._down_since is not None:
            logger.warning("Redis reachable again")
            self._down_since = None
