"""The signing key of an installation that configured none, kept in a file.

Sessions, login links and stream tokens are signed with one key. When
``FEATURE_PLANNER_SECRET_KEY`` is not set, that key lives in the data directory, so that a
restart does not log everyone out and every process of one installation (``serve --workers``,
``login-link``) signs with the same key. ``signing_key(settings)`` is the one place that
decides which key signs: the configured one, or the one in ``Settings.secret_key_file``.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from .config import MIN_SECRET_KEY_CHARS, ConfigurationError, Settings

__all__ = ["load_or_create_secret_key", "signing_key"]


def signing_key(settings: Settings) -> str:
    """The key that signs sessions, login links and stream tokens: the configured
    ``secret_key``, or the one kept in ``settings.secret_key_file`` (made there the first
    time), so that restarts and every process of this installation share it."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = settings.secret_key_file
    try:
        return load_or_create_secret_key(path)
    except OSError as exc:
        problem = f"cannot keep the signing key in {path} ({exc.strerror or exc})"
        fix = "make that directory writable"
    except ValueError as exc:
        problem, fix = str(exc), "delete that file to make a new key"
    raise ConfigurationError(f"{problem}: set FEATURE_PLANNER_SECRET_KEY, or {fix}")


def load_or_create_secret_key(path: Path) -> str:
    """The key kept in ``path``, made there (random, readable by this user only) the first
    time.

    Processes that start at the same moment agree on one key: each writes a whole key to a
    private temporary file, and a hard link, which never replaces an existing file, makes
    the first one the key. No process ever sees a half-written key. Raises ``OSError``
    when the file cannot be read or made, ``ValueError`` when it holds no usable key.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(MIN_SECRET_KEY_CHARS)
    # mkstemp creates the file with mode 0600, before anything is written to it.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read(path)  # another process made it first: its key is the key
    finally:
        os.unlink(temporary)
    return key


def _read(path: Path) -> str:
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_SECRET_KEY_CHARS:
        raise ValueError(f"{path} holds no key of at least {MIN_SECRET_KEY_CHARS} characters")
    return key
