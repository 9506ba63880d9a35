"""The service's settings: read once, from ``FEATURE_PLANNER_*`` variables, ``.env`` or flags.

A wrong setting fails here, at start-up, with a message that names it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = [
    "API_KEY_HASH",
    "MIN_SECRET_KEY_CHARS",
    "SUPPORTED_ALGORITHMS",
    "ConfigurationError",
    "JwtAlgorithm",
    "Settings",
    "load_settings",
]


class ConfigurationError(Exception):
    """A setting is missing or wrong; raised at start-up, naming the setting. (Not in the
    error tree of ``errors``: no client ever receives it.)"""


MIN_SECRET_KEY_CHARS = 32

# The formats of two settings, which the authenticators check again where they are built.
API_KEY_HASH = re.compile(r"sha256:[0-9a-f]{64}")
JwtAlgorithm = Literal["RS256", "ES256"]
SUPPORTED_ALGORITHMS: tuple[JwtAlgorithm, ...] = ("RS256", "ES256")

ProviderName = Literal["offline", "scripted", "anthropic", "claude-agent-sdk", "openai"]
DEFAULT_MODELS = {
    "anthropic": "claude-sonnet-4-6",
    "claude-agent-sdk": "claude-sonnet-4-6",
    "openai": "gpt-4.1-mini",
}
AuthMode = Literal["local", "oidc", "api-key"]


def _data_home() -> Path:
    """Where user data goes: $XDG_DATA_HOME or ~/.local/share (not the planned repository)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def _parse_mapping(value: Any) -> Any:
    """Accept ``alice=token-a,bob=token-b`` as well as a JSON object."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return {}
    if text.startswith("{"):
        return json.loads(text)
    pairs = {}
    for item in text.split(","):
        name, sep, token = item.strip().partition("=")
        if not sep or not name.strip() or not token.strip():
            raise ValueError("expected name=value pairs separated by commas, or a JSON object")
        pairs[name.strip()] = token.strip()
    return pairs


def _parse_list(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every setting, its environment variable (``FEATURE_PLANNER_<NAME>``) and its default."""

    model_config = SettingsConfigDict(
        env_prefix="FEATURE_PLANNER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    public_url: str | None = Field(
        None, description="Base URL printed in the login link; defaults to http://HOST:PORT"
    )
    repository: Path = Field(Path("."), description="The repository the agent reads")
    repository_url: str | None = Field(
        None,
        description="Where the repository's files are on the web, e.g. "
        "https://github.com/acme/shop/blob/main: evidence links to <url>/<path>#L<start>-L<end>",
        pattern=r"^https?://\S+$",
    )
    provider: ProviderName = "offline"

    auth: AuthMode = Field(
        "local", description="local (login link), oidc (Clerk or any OIDC provider) or api-key"
    )
    users: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict, description="user=token pairs; empty: one user 'local'"
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Signs sessions, login links and stream tokens; unset: the key kept in "
        "$XDG_DATA_HOME/feature-planner/secret-key (made there the first time)",
    )
    session_ttl_s: float = Field(7 * 24 * 3600, gt=0)
    trusted_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Other origins whose pages may use the cookie"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins whose scripts may call the API; none: no CORS"
    )
    stream_token_ttl_s: float = Field(
        900, gt=0, le=24 * 3600, description="Lifetime of the job-scoped stream token"
    )
    share_ttl_s: float = Field(
        7 * 24 * 3600, gt=0, description="Lifetime of a watch-only share link"
    )

    oidc_issuer: str | None = Field(None, description="The tokens' iss, e.g. Clerk's Frontend API")
    oidc_jwks_url: str | None = Field(
        None, description="Default: OIDC_ISSUER/.well-known/jwks.json (Clerk's)"
    )
    oidc_public_key: str | None = Field(
        None, description="A PEM public key, or a file holding one, instead of a JWKS"
    )
    oidc_audience: str | None = Field(None, description="When set, tokens must carry this aud")
    oidc_authorized_parties: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="When set, tokens must carry one of these azp"
    )
    oidc_algorithms: Annotated[list[JwtAlgorithm], NoDecode] = Field(
        default_factory=lambda: list(SUPPORTED_ALGORITHMS)
    )
    oidc_leeway_s: float = Field(5, ge=0, le=300, description="Clock skew allowed on exp/nbf/iat")
    oidc_jwks_cooldown_s: float = Field(
        30, gt=0, description="At most one JWKS refetch per this for an unknown kid"
    )
    oidc_jwks_max_age_s: float = Field(600, gt=0, description="Cached keys are refreshed after")
    api_keys: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description="sha256:<hex>=user pairs (feature-planner api-key)"
    )

    throttle_ms: float = Field(100, ge=0, description="Delta coalescing interval; 0 is off")
    heartbeat_s: float = Field(15, gt=0)
    time_limit_s: float = Field(120, gt=0)
    orphan_grace_s: float = Field(30, ge=0, description="0 never cancels unwatched jobs")
    pending_ttl_s: float = Field(600, gt=0)
    completed_ttl_s: float = Field(60, gt=0)
    finished_ttl_s: float = Field(3600, gt=0)

    create_limit: int = Field(10, ge=1, description="Jobs a user may create per window")
    create_window_s: int = Field(60, ge=1)
    max_streams_per_user: int = Field(5, ge=1)

    model: str | None = Field(None, description="The AI provider's model; a default per provider")
    allowed_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Models customModel may name; default: just `model`"
    )
    anthropic_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("FEATURE_PLANNER_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
    )
    anthropic_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("FEATURE_PLANNER_ANTHROPIC_BASE_URL", "ANTHROPIC_BASE_URL"),
    )
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("FEATURE_PLANNER_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("FEATURE_PLANNER_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )
    max_output_tokens: int = Field(4096, ge=256, le=64_000)
    structured_retries: int = Field(2, ge=0, le=10, description="Re-asks for an invalid result")
    provider_retries: int = Field(3, ge=0, le=10, description="Retries of 429/5xx before text")
    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{_data_home() / 'feature-planner' / 'agents.db'}",
        description="Custom agents: a SQLite file (default) or PostgreSQL",
    )
    history_days: float = Field(
        30, gt=0, description="Jobs are kept in the database's history this many days"
    )
    max_run_tokens: int = Field(
        200_000, ge=1, description="A run that uses more tokens (input + output) is stopped"
    )
    daily_user_tokens: int | None = Field(
        None, ge=1, description="A user's tokens per 24 h; past it, creates answer 429"
    )

    github_token: SecretStr | None = Field(
        None, description="Files suggestions as GitHub issues (with GITHUB_REPOSITORY)"
    )
    github_repository: str | None = Field(
        None,
        description="owner/name of the repository issues are filed in",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$",
    )
    github_api_url: str = Field(
        "https://api.github.com",
        description="GitHub Enterprise: https://HOST/api/v3",
        pattern=r"^https?://\S+$",
    )

    offline_chunk_chars: int = Field(24, ge=1)
    offline_interval_ms: float = Field(40, ge=0)

    scripted_chunks: int = Field(40, ge=0)
    scripted_chunk_size: int = Field(16, ge=1)
    scripted_interval_ms: float = Field(25, ge=0)
    scripted_suggestion_interval_ms: float = Field(0, ge=0)
    scripted_fail_at: int | None = Field(None, ge=0, description="Fail before this chunk")
    scripted_models: Annotated[list[str], NoDecode] = Field(default_factory=list)

    redis_url: str | None = Field(
        None, description="redis://, rediss:// or unix:// — jobs, events and limits in Redis"
    )
    runner_lease_s: float = Field(10, gt=0, description="A dead runner's job fails this late")
    stream_lease_s: float = Field(30, gt=0, description="A dead process's streams free this late")
    store_outage_grace_s: float = Field(
        5, ge=0, description="Open streams wait this long for Redis before ending"
    )
    redis_timeout_s: float = Field(0.5, gt=0, description="Connect and command timeout")
    redis_stream_maxlen: int = Field(10_000, ge=100, description="Events kept per job")

    drain_s: float = Field(30, ge=0, description="On SIGTERM, running jobs get this long to finish")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="JSON lines, or text; auto: text on a terminal, JSON otherwise"
    )

    _parse_users = field_validator("users", "api_keys", mode="before")(_parse_mapping)
    _parse_origins = field_validator(
        "trusted_origins",
        "cors_origins",
        "scripted_models",
        "allowed_models",
        "oidc_authorized_parties",
        "oidc_algorithms",
        mode="before",
    )(_parse_list)

    @field_validator("repository")
    @classmethod
    def _repository_is_a_directory(cls, value: Path) -> Path:
        path = value.expanduser().resolve()
        if not path.is_dir():
            raise ValueError(f"{value} is not a directory")
        return path

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("trusted_origins", "cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
                raise ValueError(
                    f"{origin!r} is not an origin like https://example.com (each origin is "
                    "listed explicitly; '*' is not accepted)"
                )
        return [origin.lower() for origin in value]

    @field_validator("secret_key")
    @classmethod
    def _secret_key_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY_CHARS:
            raise ValueError(
                f"must be at least {MIN_SECRET_KEY_CHARS} characters; make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("api_keys")
    @classmethod
    def _api_keys_are_hashes(cls, value: dict[str, str]) -> dict[str, str]:
        for key_hash in value:
            if API_KEY_HASH.fullmatch(key_hash) is None:
                raise ValueError(
                    "each key is listed by its hash, sha256:<64 hex digits>=user "
                    "(feature-planner api-key USER prints one)"
                )
        return value

    @model_validator(mode="after")
    def _auth_mode_is_configured(self) -> Settings:
        if self.auth == "oidc":
            if not self.oidc_issuer:
                raise ValueError("auth oidc needs FEATURE_PLANNER_OIDC_ISSUER")
            if self.oidc_jwks_url and self.oidc_public_key:
                raise ValueError(
                    "set FEATURE_PLANNER_OIDC_JWKS_URL or FEATURE_PLANNER_OIDC_PUBLIC_KEY, not both"
                )
        if self.auth == "api-key" and not self.api_keys:
            raise ValueError("auth api-key needs FEATURE_PLANNER_API_KEYS (sha256:<hex>=user)")
        return self

    @property
    def jwks_url(self) -> str:
        """Where the OIDC provider publishes its keys (Clerk: under the issuer)."""
        if self.oidc_jwks_url:
            return self.oidc_jwks_url
        return f"{(self.oidc_issuer or '').rstrip('/')}/.well-known/jwks.json"

    @model_validator(mode="after")
    def _ai_provider_has_a_key(self) -> Settings:
        if self.provider in ("anthropic", "claude-agent-sdk") and self.anthropic_api_key is None:
            raise ValueError(
                f"provider {self.provider} needs FEATURE_PLANNER_ANTHROPIC_API_KEY "
                "(or ANTHROPIC_API_KEY)"
            )
        if self.provider == "openai" and self.openai_api_key is None and not self.openai_base_url:
            raise ValueError(
                "provider openai needs FEATURE_PLANNER_OPENAI_API_KEY (or OPENAI_API_KEY), "
                "or FEATURE_PLANNER_OPENAI_BASE_URL for a local server such as Ollama"
            )
        return self

    @property
    def ai_model(self) -> str:
        """The model an AI provider uses when the request names none."""
        return self.model or DEFAULT_MODELS.get(self.provider, "")

    @property
    def models(self) -> list[str]:
        """The models ``customModel`` may name (AI providers only)."""
        return self.allowed_models or [self.ai_model]

    @property
    def secret_key_file(self) -> Path:
        """Where the signing key is kept when ``secret_key`` is not set."""
        return _data_home() / "feature-planner" / "secret-key"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def load_settings(*, flag_names: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings, turning a validation failure into a message naming each setting.

    ``flag_names`` maps the overrides that came from the command line to the flag the user
    typed (``{"port": "--port"}``): a bad value is named as it was given, a flag or a
    variable.
    """
    flag_names = flag_names or {}
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"][:1])
            label = flag_names.get(name) or (f"FEATURE_PLANNER_{name.upper()}" if name else "")
            prefix = f"{label}: " if label else ""
            problems.append(f"{prefix}{error['msg'].removeprefix('Value error, ')}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
