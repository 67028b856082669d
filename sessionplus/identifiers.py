"""The non-secret names of a session: what pages, the admin and logs show instead of its key."""

from __future__ import annotations

import hashlib

PUBLIC_ID_LENGTH = 32


def public_id(session_key: str) -> str:
    """
    Return a stable identifier for ``session_key`` that cannot be turned back into it.

    A SHA-256 digest: keys are 32 random characters from 36 (about 165 bits), so the
    digest cannot be reversed or guessed, and anyone holding a key can recompute it.
    """
    digest = hashlib.sha256(b"sessionplus.public_id:" + session_key.encode()).hexdigest()
    return digest[:PUBLIC_ID_LENGTH]


def log_id(session_key: str | None) -> str:
    """Return a short digest of a session key (or of no key) that log lines name it by."""
    return hashlib.sha256((session_key or "").encode()).hexdigest()[:12]
