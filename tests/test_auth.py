"""Engineer PIN: stored salted + hashed in the real database, set once from the environment
or Streamlit secrets, rate-limited with a backoff that survives a new process."""
from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.platform import auth
from core.platform.auth import EngineerAuth
from core.platform.storage import CredentialRow, Database

ROOT = Path(__file__).resolve().parent.parent
PIN = "zebra-PIN-77"          # letters that can never appear inside a hex hash


def test_set_from_env_and_stored_hashed_only(db, data_dir):
    gate = EngineerAuth(db)
    assert not gate.is_configured()
    assert gate.ensure_initial(env={auth.ENV_VAR: PIN}) == "env"
    with db.session() as s:
        row = s.get(CredentialRow, "engineer")
        assert row.scheme.startswith("scrypt$") and len(row.salt) == 32 and len(row.hash) == 64
        assert PIN not in (row.hash + row.salt + row.scheme) and row.source == "env"
    db.dispose()
    raw = b"".join(p.read_bytes() for p in (data_dir / "db").glob("msm.sqlite3*"))
    assert raw and PIN.encode() not in raw  # the plain secret is nowhere in the database files
    assert gate.verify(PIN).ok


def test_salted_hashes_differ_and_check():
    a, b = auth.hash_secret("1234"), auth.hash_secret("1234")
    assert a[1] != b[1] and a[2] != b[2]
    assert auth.check_secret("1234", *a) and not auth.check_secret("1235", *a)
    assert not auth.check_secret("1234", "md5$x", a[1], a[2])
    assert not auth.check_secret("1234", "scrypt$n=oops", a[1], a[2])


def test_secrets_used_when_no_env_and_env_wins(db):
    gate = EngineerAuth(db)
    assert gate.ensure_initial(secret_from_secrets="from-secrets", env={}) == "secrets"
    assert gate.verify("from-secrets").ok
    db2 = Database("sqlite://")
    assert EngineerAuth(db2).ensure_initial(secret_from_secrets="from-secrets", env={auth.ENV_VAR: "from-env"}) == "env"
    assert EngineerAuth(db2).verify("from-env").ok and not EngineerAuth(db2).verify("from-secrets").ok


def test_nothing_configured_and_stored_not_overwritten(db):
    gate = EngineerAuth(db)
    assert gate.ensure_initial(env={}) is None
    r = gate.verify("1234")
    assert not r.ok and auth.ENV_VAR in r.message
    gate.ensure_initial(env={auth.ENV_VAR: "first-pin"})
    # a later, different env value must not silently reset access
    assert gate.ensure_initial(env={auth.ENV_VAR: "second-pin"}) == "stored"
    assert gate.verify("first-pin").ok and not gate.verify("second-pin").ok


@pytest.mark.parametrize("weak", ["", "   ", "12", "x" * 200])
def test_weak_initial_secret_refused(db, weak):
    gate = EngineerAuth(db)
    if weak:  # whitespace-only is a mistake worth a message, not "no PIN"
        with pytest.raises(ValueError):
            gate.ensure_initial(env={auth.ENV_VAR: weak})
    else:
        assert gate.ensure_initial(env={auth.ENV_VAR: weak}) is None
    assert not gate.is_configured()


def test_backoff_after_wrong_attempts_survives_new_process_objects(data_dir):
    db = Database()
    gate = EngineerAuth(db)
    gate.ensure_initial(env={auth.ENV_VAR: PIN})
    t0 = datetime.now(timezone.utc)
    for i in range(auth.FREE_ATTEMPTS - 1):
        r = gate.verify("wrong", now=t0)
        assert not r.ok and r.wait_s == 0 and r.failed_count == i + 1
    r = gate.verify("wrong", now=t0)          # third wrong → backoff starts
    assert not r.ok and "Try again in 5 s" in r.message
    db.dispose()

    # a fresh Database + gate (a page reload, another browser, another process) still waits,
    # and even the right PIN is refused until the wait is over
    gate2 = EngineerAuth(Database())
    r = gate2.verify(PIN, now=t0 + timedelta(seconds=2))
    assert not r.ok and 2.5 <= r.wait_s <= 3.5
    r = gate2.verify("wrong", now=t0 + timedelta(seconds=6))
    assert not r.ok and r.failed_count == 4 and "10 s" in r.message
    assert not gate2.verify(PIN, now=t0 + timedelta(seconds=10)).ok
    assert gate2.verify(PIN, now=t0 + timedelta(seconds=17)).ok
    # success resets the counter
    assert gate2.verify("wrong", now=t0 + timedelta(seconds=18)).wait_s == 0
    assert gate2.verify("wrong", now=t0 + timedelta(seconds=18)).failed_count == 2


def test_backoff_is_capped():
    assert auth.backoff_s(0) == 0 and auth.backoff_s(auth.FREE_ATTEMPTS) == auth.BACKOFF_BASE_S
    assert auth.backoff_s(100) == auth.BACKOFF_MAX_S


@pytest.mark.parametrize("junk", [None, 1234, "", "x" * 10_000, "\x00\x01", "' OR 1=1 --"])
def test_verify_garbage_is_just_wrong(db, junk):
    gate = EngineerAuth(db)
    gate.ensure_initial(env={auth.ENV_VAR: PIN})
    r = gate.verify(junk)
    assert not r.ok and r.failed_count == 1


def test_change_pin(db):
    gate = EngineerAuth(db)
    gate.ensure_initial(env={auth.ENV_VAR: PIN})
    assert not gate.change(PIN, "12").ok                    # too short
    assert not gate.change("wrong", "new-pin-99").ok       # must prove the old one
    assert gate.change(PIN, "new-pin-99").ok
    assert gate.verify("new-pin-99").ok and not gate.verify(PIN).ok
    with db.session() as s:
        assert s.get(CredentialRow, "engineer").source == "ui"


def test_no_secret_in_the_repository():
    """No secrets file is tracked, and nothing in the tracked files sets the engineer PIN."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert not [f for f in tracked if f.endswith(("secrets.toml", ".env")) or f == ".env"]
    gi = (ROOT / ".gitignore").read_text()
    assert ".streamlit/secrets.toml" in gi and ".env" in gi
    import re
    assignment = re.compile(r"""MSM_ENGINEER_PIN\s*[=:]\s*["']?[A-Za-z0-9]{4,}""")
    for f in tracked:
        p = ROOT / f
        if p.suffix in (".py", ".yml", ".yaml", ".toml", ".service", ".md", ".sh", "") and p.is_file() \
                and not f.startswith("tests/") and p.stat().st_size < 1_000_000:
            text = p.read_text(errors="ignore")
            assert not assignment.search(text), f"{f} sets the engineer PIN"


def test_concurrent_attempts_on_sqlite_lose_no_count(data_dir):
    """Several browser tabs guessing at once on the station's SQLite file."""
    import threading
    Database().dispose()
    EngineerAuth(Database()).ensure_initial(env={auth.ENV_VAR: PIN})
    dbs = [Database() for _ in range(6)]
    barrier = threading.Barrier(len(dbs))
    results, errors = [], []

    def guess(d):
        barrier.wait()
        try:
            results.append(EngineerAuth(d).verify("wrong"))
        except Exception as e:  # a "database is locked" would surface here
            errors.append(e)

    ts = [threading.Thread(target=guess, args=(d,)) for d in dbs]
    [t.start() for t in ts]
    [t.join(60) for t in ts]
    assert not errors and len(results) == 6
    assert max(r.failed_count for r in results) == auth.FREE_ATTEMPTS
    assert sum(1 for r in results if r.wait_s > 0) == 6 - auth.FREE_ATTEMPTS
