"""Optional telemetry, end to end: real services in subprocesses (Sentry's client and the
OpenTelemetry SDK are process-wide, so each test's service has a process of its own), sending
to local HTTP servers that stand in for Sentry's ingest and an OTLP/HTTP collector."""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from feature_planner.config import load_settings
from feature_planner.serving import free_port
from feature_planner.web.app import create_app
from tests.conftest import ALICE, API, VALID_BODY
from tests.log_scan import find_secrets
from tests.sse_decoder import ServerSentEvent, SSEDecoder

COOKIE = "fp_session=cookie-secret-value"
DEADLINE_S = 20  # generous: a loaded 2-core box starts a service in a few seconds


# -- stand-ins for Sentry's ingest and an OTLP collector ---------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes  # decompressed


class Ingest:
    """An HTTP server on a free port that keeps every POST it gets and answers 200."""

    def __init__(self, answer: bytes = b"{}", content_type: str = "application/json") -> None:
        self.received: list[Received] = []
        self._cond = threading.Condition()
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                encoding = self.headers.get("content-encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "br":
                    brotli = pytest.importorskip("brotli")
                    body = brotli.decompress(body)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with ingest._cond:
                    ingest.received.append(Received(self.path, headers, body))
                    ingest._cond.notify_all()
                self.send_response(200)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, found: Callable[[list[Received]], Any], what: str) -> Any:
        """``found(received)`` once it is truthy; fails after ``DEADLINE_S``."""
        deadline = time.monotonic() + DEADLINE_S
        with self._cond:
            while not (result := found(list(self.received))):
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no {what} within {DEADLINE_S} s: got {self.received}"
                self._cond.wait(remaining)
            return result

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def ingest() -> Iterator[Callable[..., Ingest]]:
    started: list[Ingest] = []

    def start(**options: Any) -> Ingest:
        started.append(Ingest(**options))
        return started[-1]

    yield start
    for server in started:
        server.close()


def collector(start: Callable[..., Ingest]) -> Ingest:
    answer = ExportTraceServiceResponse().SerializeToString()
    return start(answer=answer, content_type="application/x-protobuf")


def envelope_items(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """A Sentry envelope: a header line, then items, each a header line and a payload (of
    the header's ``length`` when it has one, else up to the next newline)."""
    _, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] + 1 :]
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, payload))
    return items


def sentry_events(received: list[Received]) -> list[dict[str, Any]]:
    return [
        json.loads(payload)
        for request in received
        if request.path == "/api/1/envelope/"
        for header, payload in envelope_items(request.body)
        if header.get("type") == "event"
    ]


def spans(received: list[Received]) -> list[dict[str, Any]]:
    """Every span the collector got, as a dict: name, status, attributes, resource."""
    found = []
    for request in received:
        assert request.path == "/v1/traces", request.path
        export = ExportTraceServiceRequest.FromString(request.body)
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(
                        {
                            "name": span.name,
                            "status": span.status.code,
                            "trace_id": span.trace_id,
                            "span_id": span.span_id,
                            "parent": span.parent_span_id,
                            "attributes": _attributes(span.attributes),
                            "resource": resource,
                        }
                    )
    return found


def _attributes(pairs: Any) -> dict[str, Any]:
    return {
        kv.key: getattr(kv.value, kv.value.WhichOneof("value") or "string_value") for kv in pairs
    }


# -- the service under test, in a process of its own -------------------------------------


def service_env(tmp_path: Path, repo: Path, **variables: str) -> dict[str, str]:
    """This process's environment without any setting of the service's or of telemetry's,
    plus the settings of a small scripted service and ``variables``."""
    prefixes = ("FEATURE_PLANNER_", "SENTRY_", "OTEL_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        {
            "FEATURE_PLANNER_USERS": f"alice={ALICE}",
            "FEATURE_PLANNER_REPOSITORY": str(repo),
            "FEATURE_PLANNER_DATABASE_URL": f"sqlite:///{tmp_path}/agents.db",
            "FEATURE_PLANNER_PROVIDER": "scripted",
            "FEATURE_PLANNER_SCRIPTED_CHUNKS": "5",
            "FEATURE_PLANNER_SCRIPTED_INTERVAL_MS": "5",
            "FEATURE_PLANNER_THROTTLE_MS": "0",
            "FEATURE_PLANNER_LOG_LEVEL": "info",
            "FEATURE_PLANNER_LOG_FORMAT": "json",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export spans within 0.1 s, not 5 s
            **variables,
        }
    )
    return env


class Service:
    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.url = f"http://127.0.0.1:{command[-1]}"
        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=log.parent,  # no stray .env
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.http = httpx.Client(base_url=self.url, timeout=DEADLINE_S)

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get("/healthz", timeout=1).status_code == 200:
                    return
            log = self.log.read_text(errors="replace")
            assert self.process.poll() is None, f"the service exited: {log}"
            assert time.monotonic() < deadline, f"the service did not start: {log}"
            time.sleep(0.05)

    def create_job(self) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {ALICE}", "cookie": COOKIE}
        response = self.http.post(API, json=VALID_BODY, headers=headers)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def stream_with_token(self, job: dict[str, Any]) -> list[ServerSentEvent]:
        """Phase 2 as a browser's EventSource does it: the stream token in the query."""
        events: list[ServerSentEvent] = []
        params = {"token": job["streamToken"]}
        headers = {"accept": "text/event-stream", "cookie": COOKIE}
        with self.http.stream("GET", job["streamUrl"], params=params, headers=headers) as reply:
            assert reply.status_code == 200, reply.read()
            decoder = SSEDecoder()
            for chunk in reply.iter_raw():
                events.extend(decoder.feed(chunk))
        return events

    def stop(self) -> str:
        """Stop it (SIGTERM, as an orchestrator would); what it printed."""
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        return self.log.read_text(errors="replace")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(command: list[str], env: dict[str, str]) -> Service:
        started.append(Service(command, env, tmp_path / f"service-{len(started)}.log"))
        started[-1].wait_until_ready()
        return started[-1]

    yield start
    for service in started:
        service.stop()


def secrets_in(text: str, job: dict[str, Any]) -> list[str]:
    """Credentials of this test's requests that ``text`` shows."""
    shown = [s for s in (ALICE, job["streamToken"], "cookie-secret-value") if s in text]
    shown += [s for s in ("token=", "Bearer ", "fp_session") if s in text]
    return shown + find_secrets(text)


# What `serve` runs, with two bugs: one in its AI provider, one in a request handler.
BROKEN_SERVICE = textwrap.dedent(
    """
    import sys

    import uvicorn

    from feature_planner.agent.base import Provider
    from feature_planner.logs import configure_logging
    from feature_planner.web.app import create_app


    class BrokenProvider(Provider):
        name = "broken"

        async def run(self, request, sink):
            sink.text("Looking at the page... ")
            raise RuntimeError(f"provider bug while planning {request.page_or_component}")


    configure_logging("info", "json")
    app = create_app(provider=BrokenProvider())


    async def crash(request):
        raise RuntimeError("handler bug")


    app.router.add_route("/crash", crash, methods=["GET"])

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None)
    """
)


# -- the tests ---------------------------------------------------------------------------


def test_an_unexpected_failure_reaches_sentry_without_credentials_and_fails_its_span(
    tmp_path: Path, repo: Path, ingest: Callable[..., Ingest], services: Callable[..., Service]
) -> None:
    sentry, otlp = ingest(), collector(ingest)
    script = tmp_path / "broken_service.py"
    script.write_text(BROKEN_SERVICE)
    env = service_env(
        tmp_path,
        repo,
        SENTRY_DSN=f"http://publickey@127.0.0.1:{sentry.port}/1",
        SENTRY_ENVIRONMENT="telemetry-test",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{otlp.port}",
    )
    service = services([sys.executable, str(script), str(free_port())], env)

    job = service.create_job()
    events = service.stream_with_token(job)
    assert events[-1].event == "error", events
    assert events[-1].json()["code"] == "EXECUTION_ERROR"

    crash = service.http.get(
        "/crash",
        params={"token": job["streamToken"], "key": "query-secret"},
        headers={"authorization": f"Bearer {ALICE}", "cookie": COOKIE},
    )
    assert crash.status_code == 500

    def by_value(got: list[Received]) -> dict[str, dict[str, Any]] | None:
        events = {e["exception"]["values"][-1]["value"]: e for e in sentry_events(got)}
        return events if len(events) == 2 else None

    events_by_value = sentry.wait_for(by_value, "two Sentry events")
    run_failed = events_by_value["provider bug while planning Collections page"]
    handler_failed = events_by_value["handler bug"]
    for event in (run_failed, handler_failed):
        assert event["exception"]["values"][-1]["type"] == "RuntimeError"
        assert event["environment"] == "telemetry-test"
        assert event["level"] == "error"
        # No frame shows its local variables.
        frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
        assert frames and not any("vars" in frame for frame in frames)
    assert run_failed["logentry"]["message"] == "job %s failed"
    # The request's event says which request, without its headers, cookies or query.
    request = handler_failed["request"]
    assert request["method"] == "GET"
    assert request["url"] == f"{service.url}/crash"
    assert not {"headers", "cookies", "query_string", "data", "env"} & set(request), request
    for received in sentry.received:
        text = received.body.decode("utf-8", "replace")
        assert not secrets_in(text, job), text
        assert "query-secret" not in text

    job_span = otlp.wait_for(
        lambda got: [s for s in spans(got) if s["name"] == "job run"], "job span"
    )[0]
    assert job_span["attributes"] == {
        "feature_planner.job.id": job["jobId"],
        "feature_planner.job.outcome": "failed",
        "feature_planner.job.code": "EXECUTION_ERROR",
    }
    assert job_span["status"] == 2  # STATUS_CODE_ERROR

    output = service.stop()
    assert "Traceback" in output  # the log line has it too, as before
    assert "RuntimeError: provider bug" in output


def test_requests_and_job_runs_are_traced_without_query_strings(
    tmp_path: Path, repo: Path, ingest: Callable[..., Ingest], services: Callable[..., Service]
) -> None:
    otlp = collector(ingest)
    env = service_env(
        tmp_path,
        repo,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{otlp.port}",
        OTEL_BSP_SCHEDULE_DELAY="600000",  # nothing leaves before the service stops
    )
    port = str(free_port())
    service = services([sys.executable, "-m", "feature_planner.cli", "serve", "--port", port], env)

    job = service.create_job()
    events = service.stream_with_token(job)
    assert events[-1].event == "complete", events
    login = service.http.get("/auth/login", params={"token": "login-token-value"})
    assert login.status_code == 401
    assert otlp.received == []
    # Stopped as an orchestrator stops it, the service sends its spans before it exits.
    output = service.stop()
    # The process's log lines, but for the login links `local` mode prints on purpose.
    leaked = [line for line in output.splitlines() if find_secrets(line) and "Open " not in line]
    assert not leaked, leaked
    collection = API
    item = API + "/{job_id}"

    def traced(got: list[Received]) -> dict[str, dict[str, Any]] | None:
        by_name = {span["name"]: span for span in spans(got)}
        wanted = (f"POST {collection}", f"GET {item}", "job run", "GET /auth/login")
        return by_name if all(name in by_name for name in wanted) else None

    by_name = otlp.wait_for(traced, "spans of the create, the stream, the run, the login")
    create, stream, run = by_name[f"POST {collection}"], by_name[f"GET {item}"], by_name["job run"]

    assert create["resource"]["service.name"] == "feature-planner"
    assert create["attributes"]["http.route"] == collection
    assert create["attributes"]["http.status_code"] == 201
    assert stream["attributes"]["http.route"] == item
    assert stream["attributes"]["http.status_code"] == 200
    assert stream["attributes"]["http.target"] == f"{API}/{job['jobId']}"
    assert not any("?" in str(value) for value in stream["attributes"].values()), stream
    # The run is part of the stream's trace: the stream's request started it.
    assert run["trace_id"] == stream["trace_id"] and run["parent"] == stream["span_id"]
    assert run["attributes"] == {
        "feature_planner.job.id": job["jobId"],
        "feature_planner.job.outcome": "completed",
    }
    assert run["status"] == 0  # STATUS_CODE_UNSET
    # One span per request, none per event sent.
    assert len([s for s in spans(otlp.received) if s["trace_id"] == stream["trace_id"]]) == 2
    assert by_name["GET /auth/login"]["attributes"]["http.status_code"] == 401
    for received in otlp.received:
        text = received.body.decode("latin-1")
        assert not secrets_in(text, job), text
        assert "login-token-value" not in text


# What a process that sets no telemetry variable loads and runs, and what one that does adds.
NOTHING_SET = textwrap.dedent(
    """
    import json
    import os
    import sys

    from feature_planner.config import load_settings
    from feature_planner.web.app import create_app

    def loaded():
        return {m for m in sys.modules if m.split(".")[0] in ("sentry_sdk", "opentelemetry")}

    def layers(app):
        stack, names = app.build_middleware_stack(), []
        while stack is not None and len(names) < 30:
            names.append(f"{type(stack).__module__}.{type(stack).__qualname__}")
            stack = getattr(stack, "app", None)
        return names

    settings = load_settings(users="alice=x", repository=sys.argv[1], database_url=sys.argv[2])
    before = loaded()
    report = {}
    for case, variables in [
        ("nothing", {}),
        ("disabled", {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}),
        ("no exporter", {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}),
        ("empty", {"SENTRY_DSN": "", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}),
    ]:
        os.environ.update(variables)
        app = create_app(settings)
        report[case] = {
            "loaded": sorted(loaded() - before),
            "patched": "build_middleware_stack" in vars(app),
            "lifespan": app.router.lifespan_context.__module__,
            "trace_run": app.state.planner.service.trace_run is not None,
            "layers": layers(app),
        }
        for name in variables:
            del os.environ[name]
    report["sentry_sdk"] = "sentry_sdk" in sys.modules
    os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "http://127.0.0.1:9/v1/traces"
    traced = create_app(settings)
    report["traced"] = layers(traced)
    report["traced trace_run"] = traced.state.planner.service.trace_run is not None
    report["traced lifespan"] = traced.router.lifespan_context.__module__
    print(json.dumps(report))
    """
)


def test_with_no_variable_set_nothing_is_imported_added_or_hooked(tmp_path: Path) -> None:
    script = tmp_path / "nothing_set.py"
    script.write_text(NOTHING_SET)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "OTEL_"))}
    database = f"sqlite:///{tmp_path}/agents.db"
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), database],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])

    plain = report["nothing"]["layers"]
    for case in ("nothing", "disabled", "no exporter", "empty"):
        # FastAPI and redis-py import parts of OpenTelemetry themselves, when the app module
        # is imported; creating the app adds none.
        assert report[case]["loaded"] == [], case
        assert not report[case]["patched"], case
        assert report[case]["lifespan"] == report["nothing"]["lifespan"], case
        assert not report[case]["trace_run"], case
        assert report[case]["layers"] == plain, case
    assert not report["sentry_sdk"]
    assert report["nothing"]["lifespan"] != "feature_planner.telemetry"
    assert report["traced lifespan"] == "feature_planner.telemetry"  # it flushes at shutdown
    assert report["traced trace_run"]  # a span per job run
    assert not any(
        name.startswith(("feature_planner.telemetry", "opentelemetry")) for name in plain
    )
    # With tracing on there are exactly the tracing layers in front of the same stack.
    traced = report["traced"]
    assert traced[3:] == plain
    assert traced[:3] == [
        "feature_planner.telemetry._TracedRequests",
        "opentelemetry.instrumentation.asgi.OpenTelemetryMiddleware",
        "feature_planner.telemetry._InsideTheSpan",
    ]


def test_a_missing_package_is_one_warning_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SENTRY_DSN", "http://publickey@127.0.0.1:9/1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    # As if not installed: importing a module that sys.modules holds as None fails.
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    settings = load_settings(
        users="alice=x", repository=str(tmp_path), database_url=f"sqlite:///{tmp_path}/a.db"
    )
    with caplog.at_level(logging.WARNING, logger="feature_planner.telemetry"):
        app = create_app(settings)

    warnings = [r.getMessage() for r in caplog.records if r.name == "feature_planner.telemetry"]
    assert len(warnings) == 2, warnings
    sentry, otel = warnings
    assert sentry.startswith("SENTRY_DSN is set, but sentry-sdk is not installed")
    assert "pip install 'feature-planner[sentry]'" in sentry
    assert otel.startswith("OTEL_EXPORTER_OTLP_ENDPOINT is set, but opentelemetry")
    assert "pip install 'feature-planner[otel]'" in otel
    assert "build_middleware_stack" not in vars(app)
    assert app.state.planner.service.trace_run is None
