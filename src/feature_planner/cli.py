"""The ``feature-planner`` command: ``serve`` the service, or ``suggest`` from a terminal.

``suggest`` talks to a running server (``--server``) or, without one, starts the service
in-process on a free local port with a one-off token; either way it goes through the same
HTTP client, so the terminal sees exactly what any other client sees.

``serve`` checks what a first run gets wrong (a bad setting, a port in use, a Redis that
does not answer) before it prints anything, and says what fixes it in one line;
``login-link`` prints a new login link for the server that runs with the same settings.

Exit codes: 0 complete, 1 the job ended with an ``error`` event, 2 bad usage or
configuration (a port in use, a Redis that does not answer), 3 the server refused a request
(or could not be reached), 130 interrupted.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import socket
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pydantic
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.text import Text

from .auth import LocalAuthenticator, hash_api_key, new_api_key
from .client import ConnectionFailedError, EventEnvelope, FeaturePlannerClient
from .config import Settings, load_settings
from .errors import AuthenticationError, ConfigurationError, FeaturePlannerError
from .logs import configure_logging
from .models import (
    CompleteEvent,
    DeltaEvent,
    ErrorEvent,
    FeatureType,
    PriorityLevel,
    SuggestionRequest,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .web.state import AppState

__all__ = ["app", "main", "worker_app"]

EXIT_OK: Final = 0
EXIT_JOB_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_REFUSED: Final = 3
EXIT_INTERRUPTED: Final = 130

EXPECTED_LENGTH: Final = 2000  # code points of text that count as "nearly done" (95 %)
LIVE_TAIL_LINES: Final = 12  # lines of the streaming text kept on screen

app = typer.Typer(
    name="feature-planner",
    help="AI feature suggestions grounded in a code repository, streamed live.",
    add_completion=False,
    no_args_is_help=True,
    # Locals would include tokens; a traceback is for bugs only, never for expected failures.
    pretty_exceptions_show_locals=False,
)

RepositoryOption = Annotated[
    Path | None,
    typer.Option(help="The repository the agent reads [env: FEATURE_PLANNER_REPOSITORY]"),
]
ProviderOption = Annotated[
    str | None,
    typer.Option(
        metavar="offline|scripted", help="The AI provider [env: FEATURE_PLANNER_PROVIDER]"
    ),
]


def _fail(message: str, code: int) -> NoReturn:
    Console(stderr=True, soft_wrap=True).print(Text(message, style="bold red"))
    raise typer.Exit(code)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _settings(flags: dict[str, Any] | None = None, **fixed: Any) -> Settings:
    """The settings from env and ``.env``, overridden by the options the user gave
    (``flags``, ``None`` when not given; a bad one is named as the flag typed) and by values
    the command itself chose (``fixed``)."""
    given = {name: value for name, value in (flags or {}).items() if value is not None}
    try:
        return load_settings(flag_names={name: _flag(name) for name in given}, **given, **fixed)
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)


def _create_app(settings: Settings) -> FastAPI:
    # Imported here so that `suggest --server` never loads the server stack.
    from .web.app import create_app

    try:
        return create_app(settings)
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)


def _signing_key(settings: Settings) -> str:
    try:
        return settings.signing_key()
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)


def _local_authenticator(settings: Settings) -> LocalAuthenticator:
    """The ``local`` users with this installation's signing key: the links it makes work
    on every server that runs with the same settings."""
    users = {user: token.get_secret_value() for user, token in settings.users.items()}
    return LocalAuthenticator(users, secret_key=_signing_key(settings))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="[env: FEATURE_PLANNER_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="[env: FEATURE_PLANNER_PORT]")] = None,
    repository: RepositoryOption = None,
    provider: ProviderOption = None,
    log_level: Annotated[
        str | None,
        typer.Option(metavar="debug|info|warning|error", help="[env: FEATURE_PLANNER_LOG_LEVEL]"),
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Share jobs through Redis [env: FEATURE_PLANNER_REDIS_URL]")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes on one port (needs --redis-url)")
    ] = 1,
) -> None:
    """Run the service (API, streams and web page) with uvicorn."""
    import uvicorn

    flags = {
        "host": host,
        "port": port,
        "repository": repository,
        "provider": provider,
        "log_level": log_level,
        "redis_url": redis_url,
    }
    settings = _settings(flags)
    configure_logging(settings.log_level, settings.log_format)
    # Whatever a first run can get wrong is found before the banner and the login link are
    # printed: the one line on stderr is then the only thing on screen, and it says the fix.
    if workers > 1 and settings.redis_url is None:
        _fail("--workers needs Redis: set --redis-url or FEATURE_PLANNER_REDIS_URL", EXIT_USAGE)
    if settings.redis_url is not None:
        option = "--redis-url" if redis_url is not None else "FEATURE_PLANNER_REDIS_URL"
        _check_redis(settings.redis_url, settings.redis_timeout_s, option)
    local: LocalAuthenticator | None = None
    web_app: FastAPI | None = None
    if workers == 1:
        web_app = _create_app(settings)
        planner: AppState = web_app.state.planner
        local = planner.auth if isinstance(planner.auth, LocalAuthenticator) else None
    else:
        settings = _share_with_workers(settings, flags)
        # The key file is made here, before the workers start and read it.
        _signing_key(settings)
        local = _local_authenticator(settings) if settings.auth == "local" else None
    _check_port(settings.host, settings.port)

    print(
        f"Feature Planner on {settings.base_url} · provider {settings.provider} · "
        f"repository {settings.repository}" + (f" · {workers} workers" if workers > 1 else ""),
        flush=True,
    )
    if local is not None:
        _print_login_links(local, settings)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": None,  # uvicorn's loggers propagate to ours (configure_logging)
        # On SIGTERM, open streams get the drain period to end with their jobs (in memory;
        # with Redis they are handed to other replicas at once), then they are cut.
        "timeout_graceful_shutdown": max(1, round(settings.drain_s)),
    }
    if web_app is not None:
        uvicorn.run(web_app, **options)
    else:
        uvicorn.run("feature_planner.cli:worker_app", factory=True, workers=workers, **options)


def worker_app() -> FastAPI:
    """The app of one ``--workers`` process: it starts afresh, so it sets up logging too."""
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    return _create_app(settings)


def _share_with_workers(settings: Settings, flags: dict[str, Any]) -> Settings:
    """Each worker reads its settings from the environment: pass the flags on, and give
    every worker the same users so that sessions work on all of them (the signing key they
    share too: the configured one, or the one kept in the data directory)."""
    for name, value in flags.items():
        if value is not None:
            os.environ[f"FEATURE_PLANNER_{name.upper()}"] = str(value)
    if not settings.users:
        os.environ["FEATURE_PLANNER_USERS"] = f"local={secrets.token_urlsafe(32)}"
    return _settings()


def _check_port(host: str, port: int) -> None:
    """Bind HOST:PORT as uvicorn is about to, then let go: a port in use is a one-line
    message naming the fix, not a traceback after the banner."""
    if port == 0:
        return
    fix_port = "pass --port (or set FEATURE_PLANNER_PORT)"
    fix_host = "pass --host (or set FEATURE_PLANNER_HOST)"
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        _fail(f"host {host} is unknown ({_why(exc)}): {fix_host}", EXIT_USAGE)
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
        _fail(f"port {port} is in use: {fix_port}", EXIT_USAGE)
    if errno.EACCES in codes:
        _fail(f"port {port} needs administrator rights: {fix_port} above 1023", EXIT_USAGE)
    if codes == {errno.EADDRNOTAVAIL} and len(failures) == len(addresses):
        _fail(f"{host} is not an address of this machine: {fix_host}", EXIT_USAGE)
    if codes - {errno.EADDRNOTAVAIL}:
        _fail(
            f"cannot listen on {host}:{port} ({_why(failures[0])}): {fix_host} or --port",
            EXIT_USAGE,
        )


def _check_redis(url: str, timeout_s: float, option: str) -> None:
    """One PING, with the short Redis timeout and no retry: a Redis that does not answer at
    start is a setting to fix, not an outage to wait out while serving."""
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
        problem = f"does not answer ({_why(exc)}): start it, or fix {option}"
    except redis.RedisError as exc:  # NOAUTH, or something else listening there
        problem = f"answers, but not to PING ({exc}): fix {option}"
    else:
        return
    finally:
        client.close()
    _fail(f"Redis at {_without_password(url)} {problem}", EXIT_USAGE)


def _without_password(url: str) -> str:
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


def _why(exc: BaseException) -> str:
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


def _print_login_links(auth: LocalAuthenticator, settings: Settings) -> None:
    for user, link in auth.login_links(settings.base_url).items():
        print(f"Open {link} to log in as {user}", flush=True)


@app.command("login-link")
def login_link(
    user: Annotated[
        str | None,
        typer.Argument(metavar="[USER]", help="The user to log in as; default: every user"),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="The server's, for the link [env: FEATURE_PLANNER_HOST]")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="The server's, for the link [env: FEATURE_PLANNER_PORT]")
    ] = None,
) -> None:
    """Print a new one-time login link (local auth), for the server that runs with the same
    settings: the same users, and the same signing key (FEATURE_PLANNER_SECRET_KEY, or the
    one kept in the data directory)."""
    settings = _settings({"host": host, "port": port})
    if settings.auth != "local":
        _fail(
            f"login links exist only in local auth mode; FEATURE_PLANNER_AUTH is {settings.auth}",
            EXIT_USAGE,
        )
    auth = _local_authenticator(settings)
    if user is None:
        _print_login_links(auth, settings)
        return
    if user not in auth.users:
        _fail(f"no user {user!r}: the users are {', '.join(sorted(auth.users))}", EXIT_USAGE)
    print(f"Open {auth.login_link(settings.base_url, user)} to log in as {user}", flush=True)


@app.command("api-key")
def api_key(
    user: Annotated[str, typer.Argument(metavar="USER", help="The user id the key stands for")],
) -> None:
    """Make a new API key for USER: give the key to the user, put the hash in the settings."""
    if not user.strip() or any(char in user for char in ",=\n"):
        _fail("USER must be non-empty and contain no ',', '=' or newline", EXIT_USAGE)
    key = new_api_key()
    print(f"API key for {user} (shown once; the server keeps only its hash):\n  {key}")
    print("Add to the server's settings (comma-separate several):")
    print(f"  FEATURE_PLANNER_AUTH=api-key\n  FEATURE_PLANNER_API_KEYS={hash_api_key(key)}={user}")


@app.command()
def suggest(
    page: Annotated[
        str, typer.Argument(metavar="PAGE", help="The page or component to plan features for")
    ],
    feature_type: Annotated[
        FeatureType, typer.Option("--type", help="The kind of feature wanted")
    ] = FeatureType.ENHANCEMENT,
    priority: Annotated[PriorityLevel, typer.Option(help="How urgent it is")] = (
        PriorityLevel.MEDIUM
    ),
    context: Annotated[str | None, typer.Option(help="Anything the agent should know")] = None,
    model: Annotated[str | None, typer.Option(help="A model the server allows")] = None,
    server: Annotated[
        str | None,
        typer.Option(help="A running server's URL; without it the service runs in-process"),
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="FEATURE_PLANNER_TOKEN", help="Bearer token for --server")
    ] = None,
    json_lines: Annotated[
        bool, typer.Option("--json", help="Print each event as one JSON line, nothing else")
    ] = False,
    repository: RepositoryOption = None,
    provider: ProviderOption = None,
) -> None:
    """Ask for feature suggestions and watch them stream in."""
    request = _request(page, feature_type, priority, context, model)
    if server is not None:
        if repository is not None or provider is not None:
            _fail("--repository and --provider apply only without --server", EXIT_USAGE)
        if not server.startswith(("http://", "https://")):
            _fail(f"--server {server} is not a URL like http://127.0.0.1:8000", EXIT_USAGE)
        raise typer.Exit(_run_suggest(server, token, request, json_lines, server_option=True))
    with _in_process_server(repository, provider) as (url, local_token):
        code = _run_suggest(url, local_token, request, json_lines)
    raise typer.Exit(code)


_OPTION_NAMES: Final = {
    "page_or_component": "PAGE",
    "additional_context": "--context",
    "custom_model": "--model",
}


def _request(
    page: str,
    feature_type: FeatureType,
    priority: PriorityLevel,
    context: str | None,
    model: str | None,
) -> SuggestionRequest:
    optional = {"additional_context": context, "custom_model": model}
    try:
        return SuggestionRequest(
            page_or_component=page,
            feature_type=feature_type,
            priority_level=priority,
            **optional,
        )
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{_OPTION_NAMES.get(str(error['loc'][0]), error['loc'][0])}: {error['msg']}"
            for error in exc.errors()
        )
        _fail(f"Invalid request: {problems}", EXIT_USAGE)


@contextmanager
def _in_process_server(repository: Path | None, provider: str | None) -> Iterator[tuple[str, str]]:
    """The service on the embedded defaults, on a free port, with a one-off token."""
    from .serving import BackgroundServer, free_port

    token = secrets.token_urlsafe(24)
    settings = _settings(
        {"repository": repository, "provider": provider},
        host="127.0.0.1",
        port=free_port(),
        users=f"cli={token}",
        log_level="warning",
    )
    with BackgroundServer(_create_app(settings), settings.host, settings.port) as server:
        yield server.url, token


def _run_suggest(
    url: str,
    token: str | None,
    request: SuggestionRequest,
    json_lines: bool,
    *,
    server_option: bool = False,
) -> int:
    """Create the job and render its stream; the exit code. Ctrl-C cancels the job.

    ``server_option``: the user named the server (``--server``), so a failure to reach it
    or to be let in names the option that fixes it."""
    view: _View = _JsonView() if json_lines else _RichView()
    with FeaturePlannerClient(url, token) as client:
        try:
            job = client.create_job(request)
        except FeaturePlannerError as exc:
            if server_option and isinstance(exc, ConnectionFailedError):
                return _refused(f"cannot reach {url} ({_why(exc)}): check --server")
            return _refused(_described(exc, server_option))
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        try:
            with view, closing(client.stream_envelopes(job)) as envelopes:
                for envelope in envelopes:
                    view.show(envelope)
        except KeyboardInterrupt:
            with suppress(FeaturePlannerError):  # finished or unreachable: nothing to cancel
                client.cancel(job.job_id)
            _stderr().print(Text(f"Interrupted: job {job.job_id} cancelled", style="yellow"))
            return EXIT_INTERRUPTED
        except FeaturePlannerError as exc:
            return _refused(_described(exc, server_option))
    return view.outcome()


def _described(exc: FeaturePlannerError, server_option: bool) -> str:
    message = f"{exc.code}: {exc.message}"
    if server_option and isinstance(exc, AuthenticationError):
        message += ": check --token (or FEATURE_PLANNER_TOKEN)"
    return message


def _refused(message: str) -> int:
    _stderr().print(Text(message, style="bold red"))
    return EXIT_REFUSED


def _stderr() -> Console:
    return Console(stderr=True, soft_wrap=True)


class _View:
    """Renders a stream; remembers how it ended."""

    def __init__(self) -> None:
        self.final: CompleteEvent | ErrorEvent | None = None

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None

    def show(self, envelope: EventEnvelope) -> None:
        if isinstance(envelope.event, CompleteEvent | ErrorEvent):
            self.final = envelope.event

    def outcome(self) -> int:
        if isinstance(self.final, CompleteEvent):
            return EXIT_OK
        if isinstance(self.final, ErrorEvent):
            message = f"{self.final.code}: {self.final.message}"
        else:
            message = "the stream ended without a result"
        _stderr().print(Text(f"Error {message}", style="bold red"))
        return EXIT_JOB_FAILED


class _JsonView(_View):
    """``--json``: one compact JSON object per event on stdout, nothing else."""

    def show(self, envelope: EventEnvelope) -> None:
        super().show(envelope)
        sys.stdout.write(json.dumps(envelope.to_wire(), separators=(",", ":")) + "\n")
        sys.stdout.flush()


class _RichView(_View):
    """The live text and a progress bar, then the suggestions.

    On a terminal the text streams in a Rich ``Live`` area on stderr (with the bar); when
    stderr is not a terminal the deltas are printed as they come to stdout instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self._out = Console(soft_wrap=True)
        self._err = _stderr()
        self._text = Text()
        self._progress = Progress(
            TextColumn("[bold]Planning"),
            BarColumn(),
            TaskProgressColumn(),
            console=self._err,
        )
        self._task = self._progress.add_task("planning", total=100)
        self._live: Live | None = None
        if self._err.is_terminal:
            self._live = Live(
                self._render(), console=self._err, transient=True, refresh_per_second=12
            )

    def _render(self) -> Group:
        lines = self._text.plain.splitlines()[-LIVE_TAIL_LINES:]
        return Group(Text("\n".join(lines), style="dim"), self._progress)

    def __enter__(self) -> None:
        if self._live is not None:
            self._live.start()

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.stop()

    def show(self, envelope: EventEnvelope) -> None:
        super().show(envelope)
        event = envelope.event
        if isinstance(event, DeltaEvent):
            progress = min(95.0, event.total_length / EXPECTED_LENGTH * 100)
            self._progress.update(self._task, completed=progress)
            if self._live is None:
                sys.stdout.write(event.text)
                sys.stdout.flush()
            else:
                self._text.append(event.text)
                self._live.update(self._render())
        elif isinstance(event, CompleteEvent):
            self._progress.update(self._task, completed=100)
            if self._live is None:
                sys.stdout.write("\n\n")
            else:
                self._live.update(self._render())

    def outcome(self) -> int:
        if isinstance(self.final, CompleteEvent):
            _print_result(self._out, self.final)
        return super().outcome()


def _print_result(console: Console, event: CompleteEvent) -> None:
    for number, suggestion in enumerate(event.suggestions, start=1):
        console.print(Text(f"{number}. {suggestion.title}", style="bold cyan"))
        console.print(Text(f"   Why: {suggestion.rationale}"))
        console.print(Text(f"   {suggestion.description}"))
        for item in suggestion.implementation_considerations:
            console.print(Text(f"   • {item}"))
        console.print()
    usage = event.token_usage
    seconds = event.execution_time_ms / 1000
    console.print(
        Text(
            f"{event.provider} · {event.model} · {usage.input_tokens} input / "
            f"{usage.output_tokens} output tokens · {seconds:.1f} s",
            style="dim",
        )
    )
    notice = getattr(event, "notice", None)
    if notice:
        console.print(Text(f"Note: {notice}", style="yellow"))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
