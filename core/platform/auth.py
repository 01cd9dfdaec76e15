"""Engineer access: a PIN or password, stored salted and hashed, with rate-limited attempts.

Operators use the Live page freely; Settings and Models ask for the engineer secret.
The secret never lives in the repository: on first run it comes from the environment
variable ``MSM_ENGINEER_PIN`` or from Streamlit secrets (``engineer_pin`` — the page
reads ``st.secrets`` and passes the value in; this module never imports streamlit).
Only a scrypt hash and its salt are stored (table ``credentials``). Wrong attempts
are counted in the database (so a page reload or a second browser does not reset them)
and, after a few, every further attempt must wait: 5 s, 10 s, 20 s … at most 5 min.

Example:
    >>> from core.platform.storage import Database
    >>> gate = EngineerAuth(Database("sqlite://"))
    >>> gate.ensure_initial(env={"MSM_ENGINEER_PIN": "2468"})
    'env'
    >>> gate.verify("2468").ok
    True
    >>> r = gate.verify("0000"); (r.ok, r.wait_s)
    (False, 0.0)
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Optional

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from core.platform.storage import CredentialRow, Database, utcnow

ENV_VAR = "MSM_ENGINEER_PIN"
SECRETS_KEY = "engineer_pin"
ENGINEER = "engineer"
MIN_LEN = 4
MAX_LEN = 128
FREE_ATTEMPTS = 3          # wrong attempts before the backoff starts
BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 300.0

# scrypt cost: ~50 ms and 16 MB per check here — cheap for a person, costly for guessing
_N, _R, _P = 2 ** 14, 8, 1


@dataclass
class AuthResult:
    ok: bool
    message: str = ""           # English; pages translate via their own msgids
    wait_s: float = 0.0         # >0: refused because of the backoff, try again after this
    failed_count: int = 0


def hash_secret(secret: str, salt: bytes | None = None) -> tuple[str, str, str]:
    """``(scheme, salt_hex, hash_hex)`` of a secret with a fresh random salt.

    >>> scheme, salt, h = hash_secret("1234")
    >>> scheme.startswith("scrypt$"), len(salt), len(h)
    (True, 32, 64)
    """
    salt = salt or secrets.token_bytes(16)
    dk = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt$n={_N}$r={_R}$p={_P}", salt.hex(), dk.hex()


def check_secret(secret: str, scheme: str, salt_hex: str, hash_hex: str) -> bool:
    """Constant-time check of ``secret`` against a stored hash (any stored scrypt cost)."""
    try:
        kind, *params = scheme.split("$")
        if kind != "scrypt":
            return False
        p = {k: int(v) for k, v in (x.split("=") for x in params)}
        dk = hashlib.scrypt(secret.encode("utf-8"), salt=bytes.fromhex(salt_hex),
                            n=p["n"], r=p["r"], p=p["p"], dklen=len(hash_hex) // 2)
    except (ValueError, KeyError):
        return False
    return hmac.compare_digest(dk.hex(), hash_hex)


def validate_secret(secret: Any) -> Optional[str]:
    """A problem with a proposed secret, or None when it is acceptable."""
    if not isinstance(secret, str) or not secret.strip():
        return "The PIN or password is empty."
    if len(secret) < MIN_LEN:
        return f"The PIN or password must have at least {MIN_LEN} characters."
    if len(secret) > MAX_LEN:
        return f"The PIN or password must have at most {MAX_LEN} characters."
    return None


def backoff_s(failed_count: int) -> float:
    """Seconds to wait after ``failed_count`` consecutive wrong attempts.

    >>> [backoff_s(n) for n in (1, 3, 4, 5, 20)]
    [0.0, 5.0, 10.0, 20.0, 300.0]
    """
    if failed_count < FREE_ATTEMPTS:
        return 0.0
    return float(min(BACKOFF_BASE_S * 2 ** (failed_count - FREE_ATTEMPTS), BACKOFF_MAX_S))


class EngineerAuth:
    """The engineer gate over one database (shared by every station on PostgreSQL)."""

    def __init__(self, db: Database, name: str = ENGINEER):
        self.db = db
        self.name = name

    # -- set-up -----------------------------------------------------------------------
    def is_configured(self) -> bool:
        with self.db.session() as s:
            return s.get(CredentialRow, self.name) is not None

    def ensure_initial(self, secret_from_secrets: Optional[str] = None,
                       env: Optional[Mapping[str, str]] = None) -> Optional[str]:
        """Store the first secret when none is stored yet: the environment variable
        wins over Streamlit secrets. Returns where it came from (``env``/``secrets``),
        ``"stored"`` when one already exists, None when there is nothing to set from.
        A later change of the variable does not overwrite a stored secret (use
        :meth:`change`), so a leaked env file cannot silently reset access.

        Raises ValueError when the provided secret is too weak.
        """
        if self.is_configured():
            return "stored"
        env = os.environ if env is None else env
        for source, value in (("env", env.get(ENV_VAR)), ("secrets", secret_from_secrets)):
            if value:
                problem = validate_secret(str(value))
                if problem:
                    raise ValueError(f"{problem} (from {ENV_VAR if source == 'env' else 'secrets ' + SECRETS_KEY})")
                return source if self._insert(str(value), source) else "stored"
        return None

    def _insert(self, secret: str, source: str) -> bool:
        """Store the first secret; False when one is there already (another station or tab
        stored it first on a shared database — the first one wins, never overwritten)."""
        scheme, salt, h = hash_secret(secret)
        try:
            with self.db.session() as s:
                if s.get(CredentialRow, self.name) is not None:
                    return False
                s.add(CredentialRow(name=self.name, scheme=scheme, salt=salt, hash=h, source=source))
        except IntegrityError:
            return False
        return True

    def _store(self, secret: str, source: str) -> None:
        scheme, salt, h = hash_secret(secret)
        with self.db.session() as s:
            row = s.get(CredentialRow, self.name)
            if row is None:
                s.add(CredentialRow(name=self.name, scheme=scheme, salt=salt, hash=h, source=source))
            else:
                row.scheme, row.salt, row.hash, row.source = scheme, salt, h, source
                row.failed_count, row.locked_until, row.updated_at = 0, None, utcnow()

    # -- checking ---------------------------------------------------------------------
    def verify(self, secret: Any, now: Optional[datetime] = None) -> AuthResult:
        """Check a PIN; counts failures and enforces the backoff (also on the right PIN,
        so waiting cannot be skipped by guessing faster)."""
        now = now or datetime.now(timezone.utc)
        with self.db.session() as s:
            # take the write lock before reading (SQLite: the database; PostgreSQL: the row),
            # so concurrent attempts from several tabs or stations never lose a count
            s.execute(update(CredentialRow).where(CredentialRow.name == self.name)
                      .values(failed_count=CredentialRow.failed_count))
            row = s.get(CredentialRow, self.name, with_for_update=True, populate_existing=True)
            if row is None:
                return AuthResult(False, f"No engineer PIN is set. Set the environment variable {ENV_VAR} "
                                         f"(or '{SECRETS_KEY}' in Streamlit secrets) and restart the app.")
            if row.locked_until is not None and now < row.locked_until:
                wait = (row.locked_until - now).total_seconds()
                return AuthResult(False, f"Too many wrong attempts. Try again in {wait:.0f} s.", wait_s=wait,
                                  failed_count=row.failed_count)
            if isinstance(secret, str) and 0 < len(secret) <= MAX_LEN and \
                    check_secret(secret, row.scheme, row.salt, row.hash):
                row.failed_count, row.locked_until = 0, None
                return AuthResult(True)
            row.failed_count += 1
            wait = backoff_s(row.failed_count)
            row.locked_until = now + timedelta(seconds=wait) if wait else None
            msg = "Wrong PIN or password."
            if wait:
                msg += f" Try again in {wait:.0f} s."
            return AuthResult(False, msg, wait_s=0.0, failed_count=row.failed_count)

    def change(self, old: str, new: str) -> AuthResult:
        """Change the secret after proving the current one (rate-limited like :meth:`verify`)."""
        problem = validate_secret(new)
        if problem:
            return AuthResult(False, problem)
        res = self.verify(old)
        if not res.ok:
            return res
        self._store(new, "ui")
        return AuthResult(True, "The PIN was changed.")
