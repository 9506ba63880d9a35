"""The ``feature-planner`` command: ``serve`` the service, or ``suggest`` from a terminal.

``suggest`` talks to a running server (``--server``) or, without one, starts the service
in-process on a free local port with a one-off token; either way it goes through the same
HTTP client, so the terminal sees exactly what any other client sees.

Exit codes: 0 complete, 1 the job ended with an ``error`` event, 2 bad usage or
configuration, 3 the server refused a request (or could not be reached), 130 interrupted.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn

import pydantic
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.text import Text

from .auth import LocalAuthenticator, hash_api_key, new_api_key
from .client import EventEnvelope, FeaturePlannerClient
from .config import Settings, load_settings
from .errors import ConfigurationError, FeaturePlannerError
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


def _settings(**overrides: Any) -> Settings:
    """The settings, with only the options actually given overriding env and ``.env``."""
    try:
        return load_settings(**overrides)
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)


def _create_app(settings: Settings) -> FastAPI:
    # Imported here so that `suggest --server` never loads the server stack.
    from .web.app import create_app

    try:
        return create_app(settings)
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_USAGE)


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

    overrides = {
        "host": host,
        "port": port,
        "repository": repository,
        "provider": provider,
        "log_level": log_level,
        "redis_url": redis_url,
    }
    settings = _settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    print(
        f"Feature Planner on {settings.base_url} · provider {settings.provider} · "
        f"repository {settings.repository}" + (f" · {workers} workers" if workers > 1 else ""),
        flush=True,
    )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": None,  # uvicorn's loggers propagate to ours (configure_logging)
        # On SIGTERM, open streams get the drain period to end with their jobs (in memory;
        # with Redis they are handed to other replicas at once), then they are cut.
        "timeout_graceful_shutdown": max(1, round(settings.drain_s)),
    }
    if workers == 1:
        web_app = _create_app(settings)
        planner: AppState = web_app.state.planner
        if isinstance(planner.auth, LocalAuthenticator):
            _print_login_links(planner.auth, settings)
        uvicorn.run(web_app, **options)
        return
    if settings.redis_url is None:
        _fail("--workers needs Redis: set --redis-url or FEATURE_PLANNER_REDIS_URL", EXIT_USAGE)
    settings = _share_with_workers(settings, overrides)
    if settings.auth == "local":
        users = {user: token.get_secret_value() for user, token in settings.users.items()}
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        _print_login_links(LocalAuthenticator(users, secret_key=secret), settings)
    uvicorn.run("feature_planner.cli:worker_app", factory=True, workers=workers, **options)


def worker_app() -> FastAPI:
    """The app of one ``--workers`` process: it starts afresh, so it sets up logging too."""
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    return _create_app(settings)


def _share_with_workers(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """Each worker reads its settings from the environment: pass the flags on, and give
    every worker the same users and signing key so that sessions work on all of them."""
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"FEATURE_PLANNER_{name.upper()}"] = str(value)
    if settings.secret_key is None:
        os.environ["FEATURE_PLANNER_SECRET_KEY"] = secrets.token_urlsafe(32)
    if not settings.users:
        os.environ["FEATURE_PLANNER_USERS"] = f"local={secrets.token_urlsafe(32)}"
    return _settings()


def _print_login_links(auth: LocalAuthenticator, settings: Settings) -> None:
    for user, link in auth.login_links(settings.base_url).items():
        print(f"Open {link} to log in as {user}", flush=True)


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
        raise typer.Exit(_run_suggest(server, token, request, json_lines))
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
        host="127.0.0.1",
        port=free_port(),
        users=f"cli={token}",
        repository=repository,
        provider=provider,
        log_level="warning",
    )
    with BackgroundServer(_create_app(settings), settings.host, settings.port) as server:
        yield server.url, token


def _run_suggest(url: str, token: str | None, request: SuggestionRequest, json_lines: bool) -> int:
    """Create the job and render its stream; the exit code. Ctrl-C cancels the job."""
    view: _View = _JsonView() if json_lines else _RichView()
    with FeaturePlannerClient(url, token) as client:
        try:
            job = client.create_job(request)
        except FeaturePlannerError as exc:
            return _refused(exc)
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
            return _refused(exc)
    return view.outcome()


def _refused(exc: FeaturePlannerError) -> int:
    _stderr().print(Text(f"{exc.code}: {exc.message}", style="bold red"))
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
