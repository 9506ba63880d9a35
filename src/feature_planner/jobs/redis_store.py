"""The Redis job store: any process serves any job.

Records are hashes with the contract's TTLs, each job's events a Redis Stream (event N is
entry ``N-0``), claims and leases Lua scripts (``redis_schema``). Four tasks per process,
never one per job or per connection:

- the *writer* sends every queued append of every local run in one pipeline;
- the *reader* runs one blocking ``XREAD`` over all the jobs this process has subscribers
  on and feeds their in-process ``EventLog``s, which fan out to the connections;
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
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from ..errors import StoreUnavailableError
from ..models import ErrorCode, JobState, SuggestionRequest
from ..redis_client import UNREACHABLE, connect_redis, guarded
from ..sse import dump_json, encode_event
from . import redis_schema as schema
from .relay import EventLog
from .store import JobEvent, JobRecord, JobStore, JobTTLs

__all__ = ["RedisJobStore"]

logger = logging.getLogger("feature_planner.redis")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


@dataclass(slots=True)
class _Mirror:
    """This process's copy of a job's events, for its local subscribers."""

    log: EventLog = field(default_factory=EventLog)
    cursor: int = 0  # the last event id read from Redis
    subscribers: int = 0


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

        self._queue: list[tuple[str, JobEvent]] = []  # (job id, event) to XADD, in order
        self._queued = asyncio.Event()
        # One flush at a time: a later batch must never reach Redis before an earlier one
        # still in flight on another pooled connection, or the earlier one's XADDs (lower
        # ids) would be refused and taken for duplicates: deltas lost.
        self._flushing = asyncio.Lock()
        self._final: dict[str, JobEvent] = {}  # job id -> its final event, until ``finish``
        self._owned: dict[str, str] = {}  # job id -> runner id, runs of this process
        self._watchers: dict[str, set[str]] = {}  # job id -> local watcher ids
        self._mirrors: dict[str, _Mirror] = {}
        self._reader_client: aioredis.Redis | None = None
        self._reader_id: int | None = None
        self._has_streams = asyncio.Event()
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
        )

    async def claim(self, job_id: str, runner_id: str) -> bool:
        keys = [schema.job_key(job_id), schema.lease_key(job_id)]
        args: list[str | int] = [runner_id, _ms(self._runner_lease_s), _ms(self._running_ttl_s)]
        claimed = bool(await guarded(self._claim(keys=keys, args=args)))
        if claimed:
            self._owned[job_id] = runner_id
        return claimed

    async def cancel_pending(self, job_id: str, final_event: JobEvent) -> bool:
        keys = [schema.job_key(job_id), schema.events_key(job_id)]
        args: list[str | int] = [final_event.data, _ms(self._ttls.finished), self._maxlen]
        return bool(await guarded(self._cancel_pending(keys=keys, args=args)))

    def append(self, job_id: str, event: JobEvent) -> None:
        if event.is_final:
            self._final[job_id] = event  # written by ``finish``, with the state
            return
        self._queue.append((job_id, event))
        self._queued.set()

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
        await self._flush_queue(raise_errors=True)
        runner = self._owned.get(job_id)
        final = self._final.get(job_id)
        if runner is None or final is None:
            self._owned.pop(job_id, None)
            self._final.pop(job_id, None)
            return
        keys = [
            schema.job_key(job_id),
            schema.events_key(job_id),
            schema.lease_key(job_id),
            schema.watchers_key(job_id),
        ]
        args: list[str | int] = [
            state.value,
            last_event_id,
            _ms(self._ttls.after(state)),
            runner,
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
        mirror = self._mirrors.get(job_id)
        if mirror is None:
            mirror = _Mirror()
            entries = await guarded(self.client.xrange(schema.events_key(job_id), "-", "+"))
            if not entries and not await guarded(self.client.exists(schema.job_key(job_id))):
                return None
            if job_id in self._mirrors:  # another subscriber raced us here: share its mirror
                mirror = self._mirrors[job_id]
            else:
                self._mirrors[job_id] = mirror
                self._apply(job_id, mirror, entries)
                if not mirror.log.finished:
                    await self._wake_reader()
        mirror.subscribers += 1
        return mirror.log

    def release_log(self, job_id: str, log: EventLog) -> None:
        mirror = self._mirrors.get(job_id)
        if mirror is None or mirror.log is not log:
            return  # that mirror was ended and dropped already
        mirror.subscribers -= 1
        if mirror.subscribers <= 0:
            del self._mirrors[job_id]

    def _apply(self, job_id: str, mirror: _Mirror, entries: Any) -> None:
        frames = []
        for entry_id, fields in entries:
            event_id = int(entry_id.split(b"-", 1)[0])
            if event_id <= mirror.cursor:
                continue
            name = fields[b"e"].decode()
            frames.append(encode_event(event_id, name, fields[b"d"].decode()))
            mirror.cursor = event_id
            if name in ("complete", "error"):
                mirror.log.extend(frames)
                mirror.log.finish()
                return
        mirror.log.extend(frames)

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
        if job_id in self._owned and self.on_cancel is not None:
            self.on_cancel(job_id, message)
            return
        await guarded(self.client.publish(schema.CANCEL_CHANNEL, f"{job_id} {message}"))

    async def ping(self) -> None:
        await guarded(self.client.ping())

    # -- background tasks ----------------------------------------------------------------

    async def start(self) -> None:
        self._reader_client = connect_redis(self._url, self._timeout_s, blocking=True)
        loop = asyncio.get_running_loop()
        for name, job in (
            ("redis-writer", self._write_forever),
            ("redis-reader", self._read_forever),
            ("redis-keeper", self._keep_forever),
            ("redis-listener", self._listen_forever),
        ):
            self._tasks.append(loop.create_task(job(), name=name))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        with contextlib.suppress(RedisError, OSError):
            await self._flush_queue(raise_errors=False)
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

    async def _write_forever(self) -> None:
        while True:
            await self._queued.wait()
            try:
                await self._flush_queue(raise_errors=True)
            except StoreUnavailableError:
                await self._outage("writer")
                await asyncio.sleep(0.1)

    async def _flush_queue(self, *, raise_errors: bool) -> None:
        """Send every queued event in one pipeline, in order, after any flush in flight.

        A batch whose answer was lost (a timeout) is sent again: entries that made it the
        first time are then refused as duplicates, which ``_check_refused`` tells apart from
        a job that another process has ended.
        """
        async with self._flushing:
            await self._flush_batch(raise_errors=raise_errors)

    async def _flush_batch(self, *, raise_errors: bool) -> None:
        if not self._queue:
            self._queued.clear()
            return
        batch, self._queue = self._queue, []
        self._queued.clear()
        pipe = self.client.pipeline(transaction=False)
        for job_id, event in batch:
            pipe.xadd(
                schema.events_key(job_id),
                {"e": event.name, "d": event.data},
                id=f"{event.id}-0",
                maxlen=self._maxlen,
                approximate=True,
            )
        jobs = list(dict.fromkeys(job_id for job_id, _ in batch))
        for job_id in jobs:  # every batch: a key rebuilt after a Redis restart expires too
            pipe.pexpire(schema.events_key(job_id), _ms(self._running_ttl_s))
        try:
            results = await guarded(pipe.execute(raise_on_error=False))
        except StoreUnavailableError:
            self._queue[:0] = batch  # keep the order; try again
            if raise_errors:
                raise
            return
        self._recovered()
        refused = {
            job_id
            for result, (job_id, _) in zip(results, batch, strict=False)
            if isinstance(result, ResponseError)
        }
        if refused:
            await self._check_refused(refused)

    async def _check_refused(self, job_ids: set[str]) -> None:
        """An XADD refused: our own earlier write, or the job was ended elsewhere."""
        for job_id in job_ids:
            runner = self._owned.get(job_id)
            if runner is None:
                continue
            state, holder = await guarded(
                self.client.hmget(schema.job_key(job_id), ["state", "runner"])
            )
            if state == b"in_progress" and holder == runner.encode():
                continue  # a duplicate of what we wrote before a lost answer
            logger.warning("job %s was ended by another process; stopping the local run", job_id)
            self._owned.pop(job_id, None)
            if self.on_cancel is not None:
                self.on_cancel(job_id, "The job was taken over after its lease expired")

    async def _read_forever(self) -> None:
        assert self._reader_client is not None
        reader = self._reader_client
        while True:
            streams: dict[Any, Any] = {
                schema.events_key(job_id): f"{mirror.cursor}-0"
                for job_id, mirror in self._mirrors.items()
                if not mirror.log.finished
            }
            try:
                if self._reader_id is None:
                    self._reader_id = int(await reader.client_id())
                if not streams:
                    self._has_streams.clear()
                    await self._has_streams.wait()
                    continue
                response: Any = await reader.xread(streams, block=5000, count=1000)
            except asyncio.CancelledError:
                raise
            except (*UNREACHABLE, RedisError):
                self._reader_id = None
                await self._outage("reader")
                await asyncio.sleep(0.2)
                continue
            self._recovered()
            for key, entries in response or []:
                job_id = key.decode().split("{", 1)[1].split("}", 1)[0]
                mirror = self._mirrors.get(job_id)
                if mirror is not None:
                    self._apply(job_id, mirror, entries)

    async def _wake_reader(self) -> None:
        """Make the reader cover a new job: wake it if idle, interrupt its XREAD if not."""
        if not self._has_streams.is_set():
            self._has_streams.set()
        elif self._reader_id is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.client.client_unblock(self._reader_id)

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
                    self._renew(keys=[schema.lease_key(job_id)], args=[runner, self._lease_ms])
                    for job_id, runner in owned
                ),
                return_exceptions=True,
            )
            for (job_id, _), result in zip(owned, results, strict=True):
                if isinstance(result, BaseException):
                    raise StoreUnavailableError from result
                if not result and self._owned.pop(job_id, None) is not None:
                    logger.warning("job %s: lease lost; stopping the local run", job_id)
                    if self.on_cancel is not None:
                        self.on_cancel(job_id, "The job's lease was lost")
        if self._watchers:
            await guarded(self._zadd_watchers(self._watchers))
        self._recovered()

    async def _end_lost_jobs(self) -> None:
        """A job this process streams but does not run, whose runner's lease expired."""
        candidates = [
            job_id
            for job_id, mirror in self._mirrors.items()
            if not mirror.log.finished and job_id not in self._owned
        ]
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
                self._end_mirror(job_id, "The job store no longer has this job")
            elif state == b"in_progress" and not leased:
                data = dump_json(
                    {
                        "message": "The worker running this job stopped; please try again",
                        "code": ErrorCode.WORKER_LOST.value,
                        "timestamp": _now_ms(),
                    }
                )
                keys = [schema.job_key(job_id), schema.events_key(job_id), schema.lease_key(job_id)]
                args: list[str | int] = [data, _ms(self._ttls.finished), self._maxlen]
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
                    if job_id in self._owned and self.on_cancel is not None:
                        self.on_cancel(job_id, text)
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
        for job_id in list(self._mirrors):
            self._end_mirror(job_id, "The job store is unreachable; try again shortly")
        for job_id in list(self._owned):
            self._owned.pop(job_id, None)
            if self.on_cancel is not None:
                self.on_cancel(job_id, "The job store is unreachable")
        self._queue.clear()

    def _recovered(self) -> None:
        if self._down_since is not None:
            logger.warning("Redis reachable again")
            self._down_since = None

    def _end_mirror(self, job_id: str, message: str) -> None:
        """End the local streams of a job with STORE_UNAVAILABLE (not a job event: it
        carries the id of the last event received, like ``connected``)."""
        mirror = self._mirrors.pop(job_id, None)
        if mirror is None or mirror.log.finished:
            return
        data = {
            "message": message,
            "code": ErrorCode.STORE_UNAVAILABLE.value,
            "timestamp": _now_ms(),
        }
        mirror.log.append(encode_event(mirror.cursor, "error", dump_json(data)))
        mirror.log.finish()
