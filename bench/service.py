"""The real service as the benchmark runs it.

``create_app`` builds the app exactly as ``feature_planner.web.app.create_app`` does from the
``FEATURE_PLANNER_*`` settings, with two benchmark touches: the ``scripted`` provider stamps
each chunk with ``time.monotonic_ns()`` at emission and waits on one ``SharedClock`` for
every run; and ``GET /__bench__`` (``bench.probe``) answers the process's task count.

    uvicorn bench.service:create_app --factory
"""

from __future__ import annotations

from starlette.types import ASGIApp

from feature_planner.agent.providers import ScriptedProvider, scripted_text
from feature_planner.config import load_settings
from feature_planner.web.app import create_app as create_service_app

from .clock import SharedClock
from .probe import with_probe

__all__ = ["create_app"]


def create_app() -> ASGIApp:
    settings = load_settings()
    provider = ScriptedProvider(
        scripted_text(settings.scripted_chunks, settings.scripted_chunk_size),
        models=settings.scripted_models,
        stamp=True,
        pace=SharedClock(settings.scripted_interval_ms / 1000).wait,
    )
    return with_probe(create_service_app(settings, provider=provider))
