"""Who is calling: one authenticator per mode (``local``, ``oidc``, ``api-key``), job-scoped
stream tokens, watch-only share tokens, and the same-origin rule for cookie-authenticated
changes."""

from .api_keys import ApiKeyAuthenticator, hash_api_key, new_api_key
from .base import Authenticator, Identity
from .csrf import check_same_origin
from .local import SESSION_COOKIE, ClaimOnce, LocalAuthenticator
from .oidc import CLERK_SESSION_COOKIE, JwksCache, OidcAuthenticator, OidcOptions
from .share_tokens import ShareGrant, ShareTokens
from .stream_tokens import STREAM_TOKEN_PARAMETER, StreamTokens

__all__ = [
    "CLERK_SESSION_COOKIE",
    "SESSION_COOKIE",
    "STREAM_TOKEN_PARAMETER",
    "ApiKeyAuthenticator",
    "Authenticator",
    "ClaimOnce",
    "Identity",
    "JwksCache",
    "LocalAuthenticator",
    "OidcAuthenticator",
    "OidcOptions",
    "ShareGrant",
    "ShareTokens",
    "StreamTokens",
    "check_same_origin",
    "hash_api_key",
    "new_api_key",
]
