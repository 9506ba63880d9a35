"""Cross-site request forgery: a browser sends cookies with requests that other sites start.

Only cookie-authenticated state changes can be forged that way; a bearer token or a stream
token has to be put on the request by a script that already holds it.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from ..errors import CrossOriginError
from .base import Identity

__all__ = ["check_same_origin", "own_origin"]


def check_same_origin(
    conn: HTTPConnection, identity: Identity, trusted_origins: frozenset[str]
) -> None:
    """Refuse a cookie-authenticated state change unless the browser says where it comes
    from and that is this site or a trusted origin.

    ``Origin`` decides when present; without it, ``Sec-Fetch-Site: same-origin`` is the
    only proof. Every current browser sends one or the other on POST, PUT and DELETE, so
    a request with neither did not come from a page of ours.
    """
    if identity.via != "cookie":
        return
    origin = conn.headers.get("origin")
    if origin is not None:
        origin = origin.lower()
        if origin in trusted_origins or origin == own_origin(conn):
            return
        raise CrossOriginError(
            f"Requests from {origin[:100]} may not use this site's cookie; "
            "send a bearer token, or add the origin to FEATURE_PLANNER_TRUSTED_ORIGINS"
        )
    if conn.headers.get("sec-fetch-site") == "same-origin":
        return
    raise CrossOriginError(
        "A cookie-authenticated change must come from this site's own pages "
        "(the request has no Origin header)"
    )


def own_origin(conn: HTTPConnection) -> str:
    return f"{conn.url.scheme}://{conn.headers.get('host', '')}".lower()
