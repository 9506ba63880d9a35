"""Providers, and the one place that picks one from the settings."""

from __future__ import annotations

from ...config import Settings
from ..base import Provider
from .options import AIOptions
from .scripted import ScriptedProvider, scripted_text

__all__ = ["ScriptedProvider", "build_provider", "scripted_text"]


def build_provider(settings: Settings) -> Provider:
    """The provider the settings name. AI providers' SDKs are imported only when chosen."""
    if settings.provider in ("anthropic", "claude-agent-sdk", "openai"):
        return _build_ai_provider(settings)
    if settings.provider == "scripted":
        return ScriptedProvider(
            scripted_text(settings.scripted_chunks, settings.scripted_chunk_size),
            interval_s=settings.scripted_interval_ms / 1000,
            suggestion_interval_s=settings.scripted_suggestion_interval_ms / 1000,
            fail_at=settings.scripted_fail_at,
            models=settings.scripted_models,
        )
    from .offline import OfflineProvider

    return OfflineProvider(
        chunk_chars=settings.offline_chunk_chars,
        interval_s=settings.offline_interval_ms / 1000,
    )


def _build_ai_provider(settings: Settings) -> Provider:
    secret = (
        settings.openai_api_key if settings.provider == "openai" else settings.anthropic_api_key
    )
    base_url = (
        settings.openai_base_url if settings.provider == "openai" else settings.anthropic_base_url
    )
    options = AIOptions(
        api_key=secret.get_secret_value() if secret else None,
        base_url=base_url,
        model=settings.ai_model,
        allowed_models=tuple(settings.models),
        max_output_tokens=settings.max_output_tokens,
        structured_retries=settings.structured_retries,
        provider_retries=settings.provider_retries,
        max_run_tokens=settings.max_run_tokens,
    )
    if settings.provider == "anthropic":
        from .anthropic import AnthropicProvider

        return AnthropicProvider(options)
    if settings.provider == "openai":
        from .openai import OpenAIProvider

        return OpenAIProvider(options)
    from .claude_sdk import ClaudeAgentSdkProvider

    return ClaudeAgentSdkProvider(options)
