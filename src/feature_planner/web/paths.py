"""The API's paths, for the route table (``routes.py``) and for the answers that link to a
route (Phase 1's ``streamUrl``)."""

from __future__ import annotations

from typing import Final

from .params import JOB_ID

__all__ = [
    "AGENT_PATH",
    "API",
    "CONFIG_PATH",
    "EXPORT_PATH",
    "FOLLOW_UP_PATH",
    "HISTORY_JOB_PATH",
    "HISTORY_PATH",
    "ISSUE_PATH",
    "JOBS_PATH",
    "JOB_PATH",
    "SHARE_PATH",
    "job_url",
    "share_url",
]

API: Final = "/api/feature-planner"
JOBS_PATH: Final = API + "/suggest-feature"
JOB_PATH: Final = JOBS_PATH + "/{" + JOB_ID.name + "}"
CONFIG_PATH: Final = API + "/config"
AGENT_PATH: Final = API + "/agent"
HISTORY_PATH: Final = API + "/jobs"  # the caller's runs, kept for FEATURE_PLANNER_HISTORY_DAYS
HISTORY_JOB_PATH: Final = HISTORY_PATH + "/{" + JOB_ID.name + "}"
SHARE_PATH: Final = JOB_PATH + "/share"
FOLLOW_UP_PATH: Final = JOB_PATH + "/follow-up"
EXPORT_PATH: Final = JOB_PATH + "/export"
ISSUE_PATH: Final = JOB_PATH + "/suggestions/{index}/issue"

_JOB_PREFIX: Final = JOBS_PATH + "/"


def job_url(job_id: str) -> str:
    """``JOB_PATH`` of one job: where it streams, and is cancelled."""
    return _JOB_PREFIX + job_id


def share_url(job_id: str, token: str) -> str:
    """The page, opened read-only on one job."""
    return f"/?job={job_id}&share={token}"
