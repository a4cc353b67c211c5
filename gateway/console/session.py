"""Console sessions: a server-side table in the state store, named by a random id in an HttpOnly cookie.

Why the store and not an HMAC-signed cookie keyed by a per-process secret: a gateway runs several
workers (and replicas) behind one operator address; a per-process secret would make a cookie minted
by one worker fail on the next (the analyst signed out at random), and a signed cookie cannot be
revoked before it expires. The store is already what the workers share (operator pins live there),
so a session signed in on one worker is valid on all, sign-out ends it everywhere, and the expiry
is enforced by the store's TTL as well as by the record. The store keeps the SHA-256 of the
session id, not the id, so reading the store does not hand out sessions. If the store is
unreachable, no session can be read or made: the console refuses (fails closed).

A session also records a fingerprint of the admin token it was made with: rotating the token ends
every session made with the old one, and unsetting it turns the console off.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import orjson

from gateway.state.base import StateStore

COOKIE = "dg_console"

# How long the console remembers when an analyst last looked at the board.
SEEN_TTL_SECONDS = 90 * 24 * 3600.0


def token_fingerprint(token: str) -> str:
    """A keyed digest of the admin token (never stored in clear)."""
    return hmac.new(token.encode(), b"distillguard console session", hashlib.sha256).hexdigest()


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(slots=True)
class Session:
    """One signed-in analyst: who, their forms' CSRF token, when it ends."""

    digest: str
    operator: str
    csrf: str
    created: float
    expires: float
    token: str  # token_fingerprint() of the admin token used to sign in

    @property
    def short(self) -> str:
        """A short, non-secret session reference for the audit log."""
        return self.digest[:12]


class Sessions:
    """Create, read, update and end sessions in ``store`` (a callable: the store changes on reload)."""

    def __init__(self, store: Callable[[], StateStore]) -> None:
        self._store = store

    def _key(self, store: StateStore, digest: str) -> str:
        return store.key("console", "session", digest)

    async def create(self, operator: str, token: str, minutes: int) -> tuple[str, Session]:
        """A new session for ``operator``; returns the cookie value (the id) and the record."""
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(
            digest=_digest(session_id),
            operator=operator,
            csrf=secrets.token_urlsafe(32),
            created=now,
            expires=now + minutes * 60,
            token=token_fingerprint(token),
        )
        await self.save(session)
        return session_id, session

    async def load(self, session_id: str | None, token: str) -> Session | None:
        """The live session named by ``session_id``, or None (unknown, expired, or another token's)."""
        if not session_id or len(session_id) > 100:
            return None
        store = self._store()
        raw = await store.get(self._key(store, _digest(session_id)))
        if raw is None:
            return None
        try:
            session = Session(**orjson.loads(raw))
        except (orjson.JSONDecodeError, TypeError):
            return None
        if session.expires <= time.time():
            return None
        if not token or not hmac.compare_digest(session.token, token_fingerprint(token)):
            return None
        return session

    async def save(self, session: Session) -> None:
        store = self._store()
        ttl = max(1.0, session.expires - time.time())
        await store.set(self._key(store, session.digest), orjson.dumps(asdict(session)), ttl_seconds=ttl)

    async def board_seen(self, operator: str) -> float:
        """When the analyst ``operator`` last looked at the risk board, in any session (0: never)."""
        store = self._store()
        raw = await store.get(self._seen_key(store, operator))
        return float(raw) if raw is not None else 0.0

    async def saw_board(self, operator: str, when: float) -> None:
        store = self._store()
        await store.set(self._seen_key(store, operator), repr(when).encode(), ttl_seconds=SEEN_TTL_SECONDS)

    def _seen_key(self, store: StateStore, operator: str) -> str:
        return store.key("console", "seen", _digest(operator))

    async def end(self, session: Session) -> None:
        store = self._store()
        await store.delete(self._key(store, session.digest))
