"""Providers, and the one place that picks one from the settings."""

from __future__ import annotations

from ...config import Settings
from ..base import Provider
from .scripted import ScriptedProvider, scripted_text

__all__ = ["ScriptedProvider", "build_provider", "scripted_text"]


def build_provider(settings: Settings) -> Provider:
    if settings.provider == "scripted":
        return ScriptedProvider(
            scripted_text(settings.scripted_chunks, settings.scripted_chunk_size),
            interval_s=settings.scripted_interval_ms / 1000,
            fail_at=settings.scripted_fail_at,
            models=settings.scripted_models,
        )
    from .offline import OfflineProvider

    return OfflineProvider(
        chunk_chars=settings.offline_chunk_chars,
        interval_s=settings.offline_interval_ms / 1000,
    )
