"""What ``feature-planner serve`` checks before it prints anything: that it can listen on its
port and that its Redis answers. Each problem is one ``ConfigurationError`` line that names
the fix (the flag, or the variable), so a first run never ends in a traceback.
"""

from __future__ import annotations

import errno
import socket
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .config import ConfigurationError

__all__ = ["check_port", "check_redis", "reason", "without_password"]


def check_port(host: str, port: int) -> None:
    """Bind HOST:PORT as uvicorn is about to, then let go: a port in use is a one-line
    message naming the fix, not a traceback after the banner. Raises ``ConfigurationError``."""
    if port == 0:
        return
    fix_port = "pass --port (or set FEATURE_PLANNER_PORT)"
    fix_host = "pass --host (or set FEATURE_PLANNER_HOST)"
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigurationError(f"host {host} is unknown ({reason(exc)}): {fix_host}") from None
    failures: list[OSError] = []
    addresses = list(dict.fromkeys(addresses))
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as sock:
            # As asyncio does for uvicorn: a port left in TIME_WAIT is free, and an IPv6
            # address does not also take the IPv4 one.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                failures.append(exc)
    codes = {failure.errno for failure in failures}
    if errno.EADDRINUSE in codes:
        raise ConfigurationError(f"port {port} is in use: {fix_port}")
    if errno.EACCES in codes:
        raise ConfigurationError(f"port {port} needs administrator rights: {fix_port} above 1023")
    if codes == {errno.EADDRNOTAVAIL} and len(failures) == len(addresses):
        raise ConfigurationError(f"{host} is not an address of this machine: {fix_host}")
    if codes - {errno.EADDRNOTAVAIL}:
        raise ConfigurationError(
            f"cannot listen on {host}:{port} ({reason(failures[0])}): {fix_host} or --port"
        )


def check_redis(url: str, timeout_s: float, option: str) -> None:
    """One PING, with the short Redis timeout and no retry: a Redis that does not answer at
    start is a setting to fix, not an outage to wait out while serving. ``option`` is what the
    user set the URL with (``--redis-url`` or the variable). Raises ``ConfigurationError``."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        client.ping()
    except redis.AuthenticationError as exc:  # a ConnectionError too: first
        problem = f"refuses the credentials ({exc}): fix {option}"
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        problem = f"does not answer ({reason(exc)}): start it, or fix {option}"
    except redis.RedisError as exc:  # NOAUTH, or something else listening there
        problem = f"answers, but not to PING ({exc}): fix {option}"
    else:
        return
    finally:
        client.close()
    raise ConfigurationError(f"Redis at {without_password(url)} {problem}")


def without_password(url: str) -> str:
    """The URL to show: any password in it (user info or ``?password=``) replaced."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = urlencode(
        [
            (name, "***" if name.lower() == "password" else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def reason(exc: BaseException) -> str:
    """A short reason a connection failed: the operating system's words where there are
    some ("connection refused"), found down the chain of causes."""
    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            break
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[:1].lower() + cause.strerror[1:]
        if isinstance(cause, TimeoutError) or "timeout" in type(cause).__name__.lower():
            return "no answer in time"
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__
