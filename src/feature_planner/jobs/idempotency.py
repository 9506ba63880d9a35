"""Idempotent create: one job per (user, ``Idempotency-Key``) for 24 hours.

The first request with a key *reserves* it, naming the job it is about to create, and
*settles* it once the job exists (or *releases* it if the create failed). A request that
finds the key reserved by an earlier one with the same body waits until it is settled and
answers with that job; with another body it is refused. The reservation is atomic (one dict
operation in memory, ``SET NX`` in Redis), so many concurrent requests make one job, on
however many processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from ..errors import IdempotencyKeyReusedError, StoreUnavailableError
from ..models import WireModel
from ..redis_client import guarded

__all__ = [
    "KEY_TTL_S",
    "IdempotencyKeys",
    "MemoryIdempotencyKeys",
    "RedisIdempotencyKeys",
    "Reservation",
    "fingerprint",
]

KEY_TTL_S = 24 * 3600
# How long a duplicate waits for the first request's create to settle; a create takes
# milliseconds, so this only runs out if the first request's process died mid-create.
_SETTLE_WAIT_S = 5.0
_POLL_S = 0.005


@dataclass(frozen=True, slots=True)
class Reservation:
    """The job a key stands for; ``replayed``: an earlier request made it."""

    job_id: str
    expires_at_ms: int
    replayed: bool


def fingerprint(request: WireModel) -> str:
    """The body as the server understood it (trimmed, cleaned): what "the same body" means."""
    canonical = json.dumps(request.to_wire(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _slot(user_id: str, key: str) -> str:
    """Where a user's key is kept: users' keys never meet, and any characters are safe."""
    return hashlib.sha256(f"{user_id}\0{key}".encode()).hexdigest()


class IdempotencyKeys(ABC):
    async def reserve(
        self, user_id: str, key: str, body: str, job_id: str, expires_at_ms: int
    ) -> Reservation:
        """Reserve ``key`` for a new job ``job_id`` (``replayed=False``: create it, then
        ``settle`` or ``release``), or the earlier job it stands for (``replayed=True``).

        ``IdempotencyKeyReusedError`` if the key was used with another ``body``
        (a ``fingerprint``)."""
        slot = _slot(user_id, key)
        deadline = time.monotonic() + _SETTLE_WAIT_S
        while True:
            earlier = await self._reserve(slot, _Entry(body, job_id, expires_at_ms))
            if earlier is None:
                return Reservation(job_id, expires_at_ms, replayed=False)
            if earlier.body != body:
                raise IdempotencyKeyReusedError
            if earlier.settled:
                return Reservation(earlier.job_id, earlier.expires_at_ms, replayed=True)
            if time.monotonic() >= deadline:
                raise StoreUnavailableError(
                    "An earlier request with this Idempotency-Key is still being created; "
                    "try again shortly"
                )
            await asyncio.sleep(_POLL_S)

    async def settle(self, user_id: str, key: str) -> None:
        """The reserved key's job exists: later requests with the key answer with it."""
        await self._settle(_slot(user_id, key))

    async def release(self, user_id: str, key: str) -> None:
        """The create failed: forget the reservation, so that a retry may create the job."""
        await self._release(_slot(user_id, key))

    @abstractmethod
    async def _reserve(self, slot: str, entry: _Entry) -> _Entry | None:
        """Store ``entry`` if the slot is free (None), else answer the entry it holds."""

    @abstractmethod
    async def _settle(self, slot: str) -> None: ...

    @abstractmethod
    async def _release(self, slot: str) -> None: ...


@dataclass(slots=True)
class _Entry:
    body: str
    job_id: str
    expires_at_ms: int
    settled: bool = False

    def encode(self) -> bytes:
        return f"{self.body} {self.job_id} {self.expires_at_ms} {int(self.settled)}".encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> _Entry:
        text = raw.decode() if isinstance(raw, bytes) else raw
        body, job_id, expires_at_ms, settled = text.split(" ")
        return cls(body, job_id, int(expires_at_ms), settled == "1")


class MemoryIdempotencyKeys(IdempotencyKeys):
    """This process's keys, each forgotten ``KEY_TTL_S`` after its first use."""

    _SWEEP_EVERY = 1024  # reservations between sweeps of expired keys

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[float, _Entry]] = {}
        self._until_sweep = self._SWEEP_EVERY

    async def _reserve(self, slot: str, entry: _Entry) -> _Entry | None:
        now = self._clock()
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._until_sweep = self._SWEEP_EVERY
            self._entries = {s: kept for s, kept in self._entries.items() if kept[0] > now}
        kept = self._entries.get(slot)
        if kept is not None and kept[0] > now:
            return kept[1]
        self._entries[slot] = (now + KEY_TTL_S, entry)
        return None

    async def _settle(self, slot: str) -> None:
        kept = self._entries.get(slot)
        if kept is not None:
            kept[1].settled = True

    async def _release(self, slot: str) -> None:
        self._entries.pop(slot, None)


class RedisIdempotencyKeys(IdempotencyKeys):
    """Keys in Redis, shared by every process: ``SET NX`` reserves, ``SET XX`` settles."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    @staticmethod
    def _key(slot: str) -> str:
        return f"fp:idem:{slot}"

    async def _reserve(self, slot: str, entry: _Entry) -> _Entry | None:
        key = self._key(slot)
        if await guarded(self._client.set(key, entry.encode(), nx=True, ex=KEY_TTL_S)):
            return None
        raw = await guarded(self._client.get(key))
        if raw is None:  # released (or expired) in between: try again
            return await self._reserve(slot, entry)
        return _Entry.decode(raw)

    async def _settle(self, slot: str) -> None:
        key = self._key(slot)
        raw = await guarded(self._client.get(key))
        if raw is not None:
            entry = _Entry.decode(raw)
            entry.settled = True
            await guarded(self._client.set(key, entry.encode(), xx=True, keepttl=True))

    async def _release(self, slot: str) -> None:
        await guarded(self._client.delete(self._key(slot)))
