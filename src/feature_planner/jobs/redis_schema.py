"""Every Redis key, channel and script of the Redis backend, in one place.

All the keys of one job share the hash tag ``{<job id>}`` so that the scripts, which touch
several of them, work on Redis Cluster. Event N of a job is the stream entry ``N-0``: the
contract's growing ids are the stream's own ids.
"""

from __future__ import annotations

import hashlib

__all__ = [
    "ACQUIRE_STREAM",
    "CANCEL_CHANNEL",
    "CANCEL_PENDING",
    "CLAIM",
    "FINISH",
    "MARK_LOST",
    "RENEW",
    "events_key",
    "job_key",
    "lease_key",
    "user_streams_key",
    "watchers_key",
]

CANCEL_CHANNEL = "fp:cancel"  # messages "<job id> <message>": cancel it wherever it runs


def job_key(job_id: str) -> str:
    """Hash: user, request, state, created, expires, runner, last (the final event's id);
    a follow-up's parent (its job id) and follow_up (JSON: message, suggestion index, the
    parent's suggestions and files read)."""
    return f"fp:{{{job_id}}}:job"


def events_key(job_id: str) -> str:
    """Stream: entry ``N-0`` is event N, fields ``e`` (name) and ``d`` (JSON data)."""
    return f"fp:{{{job_id}}}:events"


def lease_key(job_id: str) -> str:
    """String: the runner's id, expiring unless the runner renews it."""
    return f"fp:{{{job_id}}}:lease"


def watchers_key(job_id: str) -> str:
    """Sorted set: one member per open stream on the job, scored by its lease's expiry (ms)."""
    return f"fp:{{{job_id}}}:watchers"


def user_streams_key(user_id: str) -> str:
    """Sorted set: the user's open streams, scored by lease expiry (ms)."""
    digest = hashlib.sha256(user_id.encode()).hexdigest()[:24]
    return f"fp:{{user:{digest}}}:streams"


# KEYS: job, lease. ARGV: runner, lease ms, job TTL ms while running. 1 if claimed.
CLAIM = """
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'in_progress', 'runner', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: job, events. ARGV: error data, TTL ms, maxlen. 1 if the pending job was cancelled.
CANCEL_PENDING = """
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '1-0', 'e', 'error', 'd', ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'last', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""

# KEYS: job, events, lease, watchers.
# ARGV: state, final event id, TTL ms, runner, final event name, its data, maxlen.
# Appends the final event and ends the job in one step, so that nobody sees the one
# without the other. 1 if finished; 0 if this runner no longer owns the job.
FINISH = """
if redis.call('HGET', KEYS[1], 'runner') ~= ARGV[4] then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'in_progress' then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], ARGV[2] .. '-0', 'e', ARGV[5], 'd', ARGV[6])
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'last', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[3])
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS: job, events, lease. ARGV: error data, TTL ms, maxlen.
# Ends a running job whose lease expired with a final error event; its id, or 0.
MARK_LOST = """
if redis.call('HGET', KEYS[1], 'state') ~= 'in_progress' then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local last = 0
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #top > 0 then last = tonumber(string.match(top[1][1], '^(%d+)')) end
last = last + 1
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], last .. '-0', 'e', 'error', 'd', ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'failed', 'last', last)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return last
"""

# KEYS: lease. ARGV: runner, lease ms. 1 if this runner still holds the lease.
RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: user streams. ARGV: now ms, expiry ms, member, limit, key TTL ms. 1 if acquired.
ACQUIRE_STREAM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""
