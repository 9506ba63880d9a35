"""The ``feature-planner`` command: ``serve`` the service, or ``suggest`` from a terminal;
``runs`` lists the caller's runs and ``show`` shows one (its result, or the run live, or its
Markdown export); ``follow-up`` asks about a completed run (a new job, streamed as ``suggest``
streams) and ``issue`` files one of its suggestions as a GitHub issue. Suggestions are
numbered as ``show`` prints them, from 1.

``suggest``, ``runs``, ``show``, ``follow-up`` and ``issue`` talk to a running server
(``--server``) or, without one, start the service in-process on a free local port with a
one-off token of the user ``cli`` (whose runs the history database keeps); either way they go
through the same HTTP client, so the terminal sees exactly what any other client sees.

``serve`` checks what a first run gets wrong (a bad setting, a port in use, a Redis that
does not answer) before it prints anything, and says what fixes it in one line;
``login-link`` prints a new login link for the server that runs with the same settings.

Exit codes: 0 complete, 1 the job ended with an ``error`` event, 2 bad usage or
configuration (a port in use, a Redis that does not answer), 3 the server refused a request
(or could not be reached), 130 interrupted. Ctrl-C during ``suggest`` or ``follow-up`` cancels
its job; during ``show`` it only stops watching (the job is not this command's to cancel).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn

import pydantic
import typer
from rich.console import Console
from rich.text import Text

from .auth import LocalAuthenticator, hash_api_key, new_api_key
from .client import CreatedJob, FeaturePlannerClient
from .config import ConfigurationError, Settings, load_settings
from .errors import (
    AuthenticationError,
    ConnectionFailedError,
    FeaturePlannerError,
    InvalidJobIdError,
    JobForbiddenError,
    JobNotCompleteError,
    JobNotFoundError,
    RateLimitedError,
    SuggestionNotFoundError,
)
from .logs import configure_logging
from .models import (
    FeatureType,
    JobState,
    JobStatus,
    PriorityLevel,
    SuggestionRequest,
)
from .secret_key import signing_key
from .startup_checks import check_port, check_redis, reason
from .terminal import (
    JsonView,
    RichView,
    StreamView,
    print_json,
    print_runs,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from .web.state import AppState

__all__ = ["app", "main", "worker_app"]

EXIT_OK: Final = 0
EXIT_JOB_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_REFUSED: Final = 3
EXIT_INTERRUPTED: Final = 130

# A follow-up's message, as the server counts it (DESIGN.md, "Act on a run").
MAX_FOLLOW_UP_CHARS: Final = 1000

# ``show --json`` of a running job: after its final event, how long the history may take to
# say so (it is normally at once).
FINAL_STATUS_WAIT_S: Final = 10.0


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
ServerOption = Annotated[
    str | None,
    typer.Option(help="A running server's URL; without it the service runs in-process"),
]
TokenOption = Annotated[
    str | None, typer.Option(envvar="FEATURE_PLANNER_TOKEN", help="Bearer token for --server")
]
JobArgument = Annotated[
    str, typer.Argument(metavar="JOB", help="The job id (feature-planner runs)")
]
JsonLinesOption = Annotated[
    bool, typer.Option("--json", help="Print each event as one JSON line, nothing else")
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


def _checked(check: Callable[..., None], *args: Any) -> None:
    try:
        check(*args)
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)


def _create_app(settings: Settings) -> Starlette:
    # Imported here so that `suggest --server` never loads the server stack.
    from .web.app import create_app

    try:
        return create_app(settings)
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)


def _signing_key(settings: Settings) -> str:
    try:
        return signing_key(settings)
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
        _checked(check_redis, settings.redis_url, settings.redis_timeout_s, option)
    local: LocalAuthenticator | None = None
    web_app: Starlette | None = None
    if workers == 1:
        web_app = _create_app(settings)
        planner: AppState = web_app.state.planner
        local = planner.auth if isinstance(planner.auth, LocalAuthenticator) else None
    else:
        settings = _share_with_workers(settings, flags)
        # The key file is made here, before the workers start and read it.
        _signing_key(settings)
        local = _local_authenticator(settings) if settings.auth == "local" else None
    _checked(check_port, settings.host, settings.port)

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


def worker_app() -> Starlette:
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
    server: ServerOption = None,
    token: TokenOption = None,
    json_lines: JsonLinesOption = False,
    repository: RepositoryOption = None,
    provider: ProviderOption = None,
) -> None:
    """Ask for feature suggestions and watch them stream in."""
    request = _request(page, feature_type, priority, context, model)

    def create(client: FeaturePlannerClient) -> CreatedJob:
        return client.create_job(request)

    _new_job(create, json_lines, server, token, repository, provider)


@app.command("follow-up")
def follow_up(
    job: JobArgument,
    message: Annotated[
        str,
        typer.Argument(
            metavar="MESSAGE",
            help='What to ask about the run: "why #2?", "something for mobile", '
            '"split it into smaller steps"',
        ),
    ],
    suggestion: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            min=1,
            help="The suggestion MESSAGE is about, numbered as `show` prints them (1 is the first)",
        ),
    ] = None,
    server: ServerOption = None,
    token: TokenOption = None,
    json_lines: JsonLinesOption = False,
    repository: RepositoryOption = None,
    provider: ProviderOption = None,
) -> None:
    """Follow up on a completed run: a new job that starts from its input, its suggestions
    and the files it read, streamed as `suggest` streams. Ctrl-C cancels the new job."""
    _check_job_id(job)
    text = message.strip()
    if not text or len(text) > MAX_FOLLOW_UP_CHARS:
        _fail(f"MESSAGE must be 1 to {MAX_FOLLOW_UP_CHARS} characters", EXIT_USAGE)
    index = None if suggestion is None else suggestion - 1

    def create(client: FeaturePlannerClient) -> CreatedJob:
        created = client.follow_up(job, text, suggestion_index=index)
        about = "" if suggestion is None else f", suggestion {suggestion}"
        stderr().print(
            Text(f"Follow-up of job {created.parent_job_id or job}{about}: job {created.job_id}")
        )
        return created

    about = _About(job, suggestion)
    _new_job(create, json_lines, server, token, repository, provider, about=about)


@app.command()
def issue(
    job: JobArgument,
    number: Annotated[
        int,
        typer.Argument(
            metavar="N",
            min=1,
            help="The suggestion, numbered as `show` prints them (1 is the first)",
        ),
    ],
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """File suggestion N of a completed run as an issue in the server's GitHub repository
    and print its URL. Filing it again prints the issue filed the first time."""
    _check_job_id(job)

    def work(client: FeaturePlannerClient) -> int:
        link = client.file_issue(job, number - 1)
        said = "Filed as" if link.created else "Filed before, as"
        stderr().print(Text(f"{said} issue #{link.number}", style="green"))
        print(link.url, flush=True)
        return EXIT_OK

    _against_server(server, token, work, about=_About(job, number))


@app.command()
def runs(
    status: Annotated[JobState | None, typer.Option(help="Only the runs in this state")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many runs to list")] = 20,
    cursor: Annotated[
        str | None, typer.Option(help="Continue where a previous page ended (it prints how)")
    ] = None,
    server: ServerOption = None,
    token: TokenOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the page as JSON (jobs, nextCursor), nothing else")
    ] = False,
) -> None:
    """List your runs, newest first: job id, state, page or component, type, when, how many
    suggestions."""

    def work(client: FeaturePlannerClient) -> int:
        page = client.jobs(limit=limit, cursor=cursor, status=status)
        if json_output:
            print_json(page.to_wire())
            return EXIT_OK
        print_runs(stdout(), page)
        if page.next_cursor is not None:
            more = f"More: feature-planner runs --cursor {page.next_cursor}"
            stderr().print(Text(more, style="dim"))
        return EXIT_OK

    _against_server(server, token, work)


@app.command()
def show(
    job: JobArgument,
    server: ServerOption = None,
    token: TokenOption = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the job's status as JSON, nothing else (a running job: once it ends)",
        ),
    ] = False,
    markdown: Annotated[
        bool,
        typer.Option(
            "--markdown",
            help="Print the completed run as a Markdown document (its export), nothing else "
            "(a running job: once it ends)",
        ),
    ] = False,
) -> None:
    """Show a run: a finished one's suggestions (or its error), a running one live as
    `suggest` shows it. Ctrl-C stops watching; the job keeps running."""
    _check_job_id(job)
    if json_output and markdown:
        _fail("--json and --markdown: choose one", EXIT_USAGE)

    def work(client: FeaturePlannerClient) -> int:
        try:
            if markdown:
                return _show_markdown(client, job)
            return _show_json(client, job) if json_output else _show_live(client, job)
        except KeyboardInterrupt:
            stderr().print(Text(f"Stopped watching job {job}; it keeps running", style="yellow"))
            return EXIT_INTERRUPTED
        except (JobNotFoundError, JobForbiddenError, InvalidJobIdError) as exc:
            return _refused(f"{exc.code}: {exc.message} (job {job})")

    _against_server(server, token, work)


def _show_live(client: FeaturePlannerClient, job_id: str) -> int:
    view = RichView()
    with view, closing(client.follow(job_id)) as envelopes:
        for envelope in envelopes:
            view.show(envelope)
    return EXIT_OK if view.finish() else EXIT_JOB_FAILED


def _final_status(client: FeaturePlannerClient, job_id: str) -> JobStatus:
    """The job once it has ended: a pending one is started and a running one watched to its
    end (so that it is not orphaned), then read."""
    status = client.get(job_id)
    if not status.status.is_final:
        with closing(client.follow(job_id)) as envelopes:
            for _ in envelopes:
                pass
        status = client.get(job_id, wait=FINAL_STATUS_WAIT_S)
    return status


def _show_json(client: FeaturePlannerClient, job_id: str) -> int:
    status = _final_status(client, job_id)
    print_json(status.to_wire())
    return EXIT_OK if _outcome(status).finish() else EXIT_JOB_FAILED


def _show_markdown(client: FeaturePlannerClient, job_id: str) -> int:
    """The export as the server wrote it; a run that did not complete has none (its error
    is said instead, exit 1)."""
    status = _final_status(client, job_id)
    if status.status is not JobState.COMPLETED:
        _outcome(status).finish()
        return EXIT_JOB_FAILED
    document = client.export(job_id, "markdown")
    sys.stdout.write(document if document.endswith("\n") else document + "\n")
    sys.stdout.flush()
    return EXIT_OK


def _outcome(status: JobStatus) -> StreamView:
    """A view that ended as the job did: its ``finish`` says how it failed, if it did."""
    view = StreamView()
    view.final = status.result or status.error
    return view


def _check_job_id(job: str) -> None:
    try:
        uuid.UUID(job)
    except ValueError:
        _fail(f"JOB {job!r} is not a job id (a UUID, as feature-planner runs lists)", EXIT_USAGE)


def _check_server(server: str) -> None:
    if not server.startswith(("http://", "https://")):
        _fail(f"--server {server} is not a URL like http://127.0.0.1:8000", EXIT_USAGE)


@dataclass(frozen=True, slots=True)
class _About:
    """The job (and the suggestion, numbered from 1) a command acts on: named in its
    refusals."""

    job: str
    suggestion: int | None = None


def _against_server(
    server: str | None,
    token: str | None,
    work: Callable[[FeaturePlannerClient], int],
    *,
    about: _About | None = None,
) -> NoReturn:
    """Run ``work`` with a client of ``--server``, or of the service in-process; exit with
    its code. A refusal, or a server that cannot be reached, is said in one line (exit 3)."""
    if server is not None:
        _check_server(server)
        raise typer.Exit(_with_client(server, token, work, server_option=True, about=about))
    with _in_process_server(None, None) as (url, local_token):
        code = _with_client(url, local_token, work, server_option=False, about=about)
    raise typer.Exit(code)


def _with_client(
    url: str,
    token: str | None,
    work: Callable[[FeaturePlannerClient], int],
    *,
    server_option: bool,
    about: _About | None = None,
) -> int:
    with FeaturePlannerClient(url, token) as client:
        try:
            return work(client)
        except FeaturePlannerError as exc:
            return _request_failed(exc, url, server_option, about)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED


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


def _new_job(
    create: Callable[[FeaturePlannerClient], CreatedJob],
    json_lines: bool,
    server: str | None,
    token: str | None,
    repository: Path | None,
    provider: str | None,
    *,
    about: _About | None = None,
) -> NoReturn:
    """Create a job with ``create`` on ``--server`` or in-process, render its stream, and
    exit with the code ``_run_job`` says."""
    if server is not None:
        if repository is not None or provider is not None:
            _fail("--repository and --provider apply only without --server", EXIT_USAGE)
        _check_server(server)
        raise typer.Exit(
            _run_job(server, token, create, json_lines, server_option=True, about=about)
        )
    with _in_process_server(repository, provider) as (url, local_token):
        code = _run_job(url, local_token, create, json_lines, about=about)
    raise typer.Exit(code)


def _run_job(
    url: str,
    token: str | None,
    create: Callable[[FeaturePlannerClient], CreatedJob],
    json_lines: bool,
    *,
    server_option: bool = False,
    about: _About | None = None,
) -> int:
    """Create the job and render its stream; the exit code. Ctrl-C cancels the job.

    ``server_option``: the user named the server (``--server``), so a failure to reach it
    or to be let in names the option that fixes it."""
    view: StreamView = JsonView() if json_lines else RichView()
    with FeaturePlannerClient(url, token) as client:
        try:
            job = create(client)
        except FeaturePlannerError as exc:
            return _request_failed(exc, url, server_option, about)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        try:
            with view, closing(client.stream_envelopes(job)) as envelopes:
                for envelope in envelopes:
                    view.show(envelope)
        except KeyboardInterrupt:
            with suppress(FeaturePlannerError):  # finished or unreachable: nothing to cancel
                client.cancel(job.job_id)
            stderr().print(Text(f"Interrupted: job {job.job_id} cancelled", style="yellow"))
            return EXIT_INTERRUPTED
        except FeaturePlannerError as exc:
            return _refused(_described(exc, server_option))
    return EXIT_OK if view.finish() else EXIT_JOB_FAILED


def _request_failed(
    exc: FeaturePlannerError, url: str, server_option: bool, about: _About | None = None
) -> int:
    if server_option and isinstance(exc, ConnectionFailedError):
        return _refused(f"cannot reach {url} ({reason(exc)}): check --server")
    return _refused(_described(exc, server_option, about))


# Refusals about the job a command names: the line names it.
_JOB_REFUSALS: Final = (
    JobNotFoundError,
    JobForbiddenError,
    InvalidJobIdError,
    JobNotCompleteError,
)


def _described(exc: FeaturePlannerError, server_option: bool, about: _About | None = None) -> str:
    """One line: the code, the server's message, and what to do about it."""
    if isinstance(exc, SuggestionNotFoundError) and about and about.suggestion is not None:
        return (
            f"{exc.code}: job {about.job} has no suggestion {about.suggestion} "
            f"(feature-planner show {about.job} numbers them from 1)"
        )
    message = f"{exc.code}: {exc.message}"
    if server_option and isinstance(exc, AuthenticationError):
        message += ": check --token (or FEATURE_PLANNER_TOKEN)"
    elif isinstance(exc, RateLimitedError):
        message += f"; try again at {_clock(exc.retry_after)} (in {_duration(exc.retry_after)})"
    if about is not None and isinstance(exc, _JOB_REFUSALS):
        message += f" (job {about.job})"
    return message


def _duration(seconds: int) -> str:
    """``45 s``, ``12 min``, ``3 h 5 min``: how long until a retry may succeed."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = -(-seconds // 60)  # rounded up: never sooner than the server said
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _clock(seconds: int) -> str:
    """The local time ``seconds`` from now, as a wall clock shows it."""
    return time.strftime("%H:%M", time.localtime(time.time() + seconds))


def _refused(message: str) -> int:
    stderr().print(Text(message, style="bold red"))
    return EXIT_REFUSED


def main() -> None:
    app()


if __name__ == "__main__":
    main()
