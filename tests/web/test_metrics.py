"""/metrics: what a run, a refusal and an open stream do to the counters."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LiveServer, ServerFactory
from tests.sse_decoder import ServerSentEvent


def scrape(server: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = server.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_a_run_and_a_failure_move_the_counters(make_server: ServerFactory) -> None:
    server = make_server(create_limit=3)
    job_id = server.create_job()
    assert server.stream(job_id).last.event == "complete"
    before = scrape(server)
    assert before[("feature_planner_jobs_created_total", ())] == 1
    finished = ("feature_planner_jobs_finished_total", (("code", ""), ("outcome", "completed")))
    assert before[finished] == 1
    assert before[("feature_planner_deltas_total", ())] >= 1
    assert before[("feature_planner_job_duration_seconds_count", ())] == 1
    assert before[("feature_planner_first_delta_seconds_count", ())] == 1
    assert (
        before[("feature_planner_tokens_total", (("kind", "output"), ("provider", "scripted")))] > 0
    )

    cancelled = server.create_job()
    assert server.delete(cancelled).status_code == 202  # pending: never runs
    server.create_job()
    assert server.create().status_code == 429
    after = scrape(server)
    assert after[("feature_planner_jobs_created_total", ())] == 3
    assert after[("feature_planner_rate_limited_total", (("limit", "create"),))] == 1
    # Nothing names a job or a user: label values stay few.
    text = server.http.get("/metrics").text
    assert job_id not in text and cancelled not in text and "alice" not in text


def test_open_streams_are_counted_while_open(make_server: ServerFactory) -> None:
    server = make_server(scripted_chunks=40, scripted_interval_ms=20)
    job_id = server.create_job()
    seen: list[float] = []

    def on_first_delta(event: ServerSentEvent) -> bool:
        if event.event != "delta":
            return False
        seen.append(scrape(server)[("feature_planner_open_streams", ())])
        return True

    server.stream(job_id, stop_after=on_first_delta)
    assert seen == [1.0]


def test_events_relayed_and_subscribers_per_job(make_server: ServerFactory) -> None:
    server = make_server(scripted_interval_ms=20)
    job_id = server.create_job()
    with server.http.stream(
        "GET", f"/api/feature-planner/suggest-feature/{job_id}", headers=server.auth()
    ) as first:
        chunks = first.iter_raw()
        received = next(chunks)  # the first stream is open...
        second = server.stream(job_id)  # ...while a second one reads the whole job
        received += b"".join(chunks)
    assert second.names[-1] == "complete" and b"event: complete" in received
    events = len(second.job_events)
    samples = scrape(server)
    assert samples[("feature_planner_events_relayed_total", ())] == 2 * events
    assert samples[("feature_planner_job_subscribers_count", ())] == 2
    assert samples[("feature_planner_job_subscribers_bucket", (("le", "1.0"),))] == 1
    assert samples[("feature_planner_job_subscribers_bucket", (("le", "2.0"),))] == 2
