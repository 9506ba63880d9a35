"""The API's paths, for the route table (``routes.py``) and for the answers that link to a
route (Phase 1's ``streamUrl``)."""

from __future__ import annotations

from typing import Final

from .params import JOB_ID

__all__ = ["AGENT_PATH", "API", "CONFIG_PATH", "JOBS_PATH", "JOB_PATH", "job_url"]

API: Final = "/api/feature-planner"
JOBS_PATH: Final = API + "/suggest-feature"
JOB_PATH: Final = JOBS_PATH + "/{" + JOB_ID.name + "}"
CONFIG_PATH: Final = API + "/config"
AGENT_PATH: Final = API + "/agent"

_JOB_PREFIX: Final = JOBS_PATH + "/"


def job_url(job_id: str) -> str:
    """``JOB_PATH`` of one job: where it streams, and is cancelled."""
    return _JOB_PREFIX + job_id
