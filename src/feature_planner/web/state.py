"""What the routes share: built once by ``create_app`` and kept on ``app.state.planner``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from ..agent_store import AgentStore
from ..auth import (
    STREAM_TOKEN_PARAMETER,
    Authenticator,
    Identity,
    ShareTokens,
    StreamTokens,
    check_same_origin,
)
from ..config import Settings
from ..errors import AuthenticationError, JobForbiddenError, ShareReadOnlyError
from ..github import GitHubIssues
from ..history import HistoryStore
from ..issue_links import IssueLinks
from ..jobs.service import JobService

__all__ = ["AppState"]

_BEARER = "bearer "


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    auth: Authenticator
    stream_tokens: StreamTokens
    share_tokens: ShareTokens
    service: JobService
    agents: AgentStore
    history: HistoryStore
    trusted_origins: frozenset[str]
    github: GitHubIssues
    issue_links: IssueLinks

    async def authenticate(
        self,
        conn: HTTPConnection,
        *,
        state_changing: bool,
        job_id: str | None = None,
        read_only: bool = False,
    ) -> Identity:
        """The caller; a cookie-authenticated state change must come from our own origin.

        On a job's own routes (``job_id``), a stream token in the query authenticates for
        that job alone, unless an ``Authorization`` header says who the caller is. A share
        token (query or bearer) is good only where ``read_only`` says the route just reads
        that job; anywhere else it is refused (403).
        """
        share_token = _share_token(conn)
        if share_token is not None:
            if not read_only or job_id is None:
                raise ShareReadOnlyError
            return await self._shared(share_token, job_id)
        if job_id is not None and "authorization" not in conn.headers:
            token = conn.query_params.get(STREAM_TOKEN_PARAMETER)
            if token is not None:
                return self.stream_tokens.verify(token, job_id)
        identity = await self.auth.authenticate(conn)
        if state_changing:
            check_same_origin(conn, identity, self.trusted_origins)
        return identity

    async def _shared(self, token: str, job_id: str) -> Identity:
        grant = self.share_tokens.verify(token)
        if grant.job_id != job_id:
            raise JobForbiddenError("This share link is for another job")
        entry = await self.service.reader.history_entry(job_id)
        revoked_at = entry.shares_revoked_at_ms if entry is not None else None
        if entry is None or (revoked_at is not None and grant.issued_at_ms <= revoked_at):
            raise AuthenticationError("This share link was revoked by its owner")
        return Identity(grant.owner, "share-token", job_id)


def _share_token(conn: HTTPConnection) -> str | None:
    """A share token, if the request presents one (they are told apart by their header)."""
    header = conn.headers.get("authorization")
    if header is not None and header[: len(_BEARER)].lower() == _BEARER:
        token = header[len(_BEARER) :].strip()
        if ShareTokens.looks_like_one(token):
            return token
    if b"token=" in conn.scope.get("query_string", b""):
        query_token = conn.query_params.get(STREAM_TOKEN_PARAMETER)
        if query_token is not None and ShareTokens.looks_like_one(query_token):
            return query_token
    return None
