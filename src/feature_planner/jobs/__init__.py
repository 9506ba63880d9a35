"""Jobs: the store interface and its memory backend, the relay, the runner, the service."""

from .memory import MemoryJobStore
from .relay import EventLog, Heartbeat, Subscriber
from .service import JobService, NothingMoreError, ServiceLimits
from .store import JobRecord, JobStore, JobTTLs

__all__ = [
    "EventLog",
    "Heartbeat",
    "JobRecord",
    "JobService",
    "JobStore",
    "JobTTLs",
    "MemoryJobStore",
    "NothingMoreError",
    "ServiceLimits",
    "Subscriber",
]
